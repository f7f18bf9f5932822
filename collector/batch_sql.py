"""The writer's per-batch statements, compiled once and run at the driver level.

SQLAlchemy's `executemany` runs every bound value of every row through its type processing in Python
(the UTC type decorator, the SQLite datetime formatter): at event scale that cost more CPU than the
database's own work. A `BatchStatement` is a Core statement compiled once for the engine's dialect; a
batch converts only its datetimes, itself, and hands the driver plain tuples (SQLite: one executemany)
or one array per column (PostgreSQL: one statement over `unnest`, one round trip and one plan for the
whole batch). The statements stay Core expressions, so their rules (the session merge, the outcome's
no-going-back guard) are written once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable, Subquery
from sqlalchemy.types import TypeEngine

from schemas.models import UtcDateTime


def utc(value: datetime) -> datetime:
    """The check UtcDateTime makes on every bound datetime: naive ones are refused, not guessed."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


@functools.lru_cache(maxsize=8192)
def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime writes (naive UTC), so keys compare equal to it. Cached:
    a batch repeats its times (a record's samples share one, a broadcast's start recurs), and equal
    instants format alike whatever their offset."""
    return utc(value).astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def unnest_rows(columns: Mapping[str, TypeEngine[Any]], name: str) -> Subquery:
    """A PostgreSQL row source `name` with one column per entry, read from one array parameter each
    (bound under the column's own name): several `unnest` calls in one select list zip their arrays."""
    return select(
        *(
            func.unnest(bindparam(column, type_=ARRAY(_array_type(type_)))).label(column)
            for column, type_ in columns.items()
        )
    ).subquery(name)


def _array_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    return DateTime(timezone=True) if isinstance(type_, UtcDateTime) else type_


def batch_statement(
    build: Callable[[Mapping[str, Any]], Executable], params: Mapping[str, TypeEngine[Any]], dialect: Dialect
) -> BatchStatement:
    """The statement `build` makes from one column expression per parameter: bound parameters run once
    per row on SQLite, columns of an `unnest` row source (named "new") on PostgreSQL."""
    if dialect.name == "sqlite":
        return BatchStatement(build({name: bindparam(name, type_=t) for name, t in params.items()}), dialect)
    return BatchStatement(build(unnest_rows(params, "new").c), dialect)


class BatchStatement:
    """`statement` for `dialect`; its required parameters are the keys of a batch's rows."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._sqlite = dialect.name == "sqlite"
        # Per position: the row key and its converter, or a literal the statement carries (nullif's '').
        self._positions: list[tuple[str, Callable[[Any], Any] | None] | _Literal] = []
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            if not bind.required:
                self._positions.append(_Literal(bind.value))
                continue
            times = isinstance(bind.type, UtcDateTime) or isinstance(
                getattr(bind.type, "item_type", None), DateTime
            )
            self._positions.append((name, (sqlite_time if self._sqlite else utc) if times else None))

    def driver_params(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]] | tuple[Any, ...]:
        """What the driver takes for `rows`: one tuple per row (SQLite's executemany) or one array per
        parameter (PostgreSQL)."""
        if self._sqlite:
            # A parameter used at several positions (the session merge reads last_seen_at three times)
            # is gathered and converted once.
            columns = {p: self._column(rows, p) for p in set(self._positions)}
            return list(zip(*(columns[p] for p in self._positions), strict=True))
        return tuple(p.value if isinstance(p, _Literal) else self._column(rows, p) for p in self._positions)

    @staticmethod
    def _column(rows: Sequence[Mapping[str, Any]], position: tuple[str, Any] | _Literal) -> list[Any]:
        if isinstance(position, _Literal):
            return [position.value] * len(rows)
        name, convert = position
        values = [row[name] for row in rows]
        return values if convert is None else [None if v is None else convert(v) for v in values]


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any
