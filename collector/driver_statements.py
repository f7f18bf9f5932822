"""A write batch's statements at the driver level, inside the batch's transaction.

On PostgreSQL each statement runs when given (one round trip each). On SQLite they are queued and run
back to back in aiosqlite's worker thread on its sqlite3 connection, in one hop: through SQLAlchemy
every statement cost several hops between that thread and the event loop (cursor, execute, close, each
woken through the loop's self-pipe) and a result object, which at event scale was a larger share of a
batch's CPU than SQLite's own work. The transaction stays SQLAlchemy's: the statements run between its
BEGIN and COMMIT on the same connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

Params = Sequence[tuple[Any, ...]] | tuple[Any, ...]


class DriverStatements:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._sqlite = conn.dialect.name == "sqlite"
        self._queued: list[tuple[str, Sequence[tuple[Any, ...]]]] = []
        self._rowcounts: list[int] = []

    async def execute(self, sql: str, params: Params) -> int:
        """Run `sql` (queued on SQLite, where `params` is one tuple per row); returns the index of its
        row count, read with `rowcount` once `finish` has run."""
        if self._sqlite:
            self._queued.append((sql, params))  # type: ignore[arg-type]
            return len(self._rowcounts) + len(self._queued) - 1
        result = await self._conn.exec_driver_sql(sql, params)  # type: ignore[arg-type]
        self._rowcounts.append(max(result.rowcount, 0))
        return len(self._rowcounts) - 1

    async def direct(self, step: Callable[[AsyncConnection], Awaitable[int]]) -> int:
        """Run `step` on the connection now (PostgreSQL only: a step that is not one statement, such as
        the samples' COPY); returns the index of the row count it returns, as `execute` does."""
        assert not self._sqlite, "SQLite statements are queued: use execute"
        self._rowcounts.append(await step(self._conn))
        return len(self._rowcounts) - 1

    async def finish(self) -> None:
        """Run what is queued; an error raises here, inside the transaction, which then rolls back."""
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        driver = (await self._conn.get_raw_connection()).driver_connection  # an aiosqlite.Connection

        def run_all() -> list[int]:
            db: sqlite3.Connection = driver._conn
            counts = []
            for sql, rows in queued:
                try:
                    counts.append(max(db.executemany(sql, rows).rowcount, 0))
                except sqlite3.Error as exc:  # raised as SQLAlchemy would, for callers that catch its errors
                    raise DBAPIError.instance(sql, rows, exc, sqlite3.Error, ismulti=True) from exc
            return counts

        # aiosqlite's own way into its thread (SQLAlchemy's adapter reaches in the same way): no public
        # call runs a function there.
        self._rowcounts.extend(await driver._execute(run_all))

    def rowcount(self, index: int) -> int:
        return self._rowcounts[index]
