"""A generic, type-checked JSON codec for the adapters' per-target state dataclasses.

A kind's state (`KindSpec.new_state`) is dumped after a poll and may be loaded in another process (a
restart, a fleet replica taking the target over). The codec is derived from the dataclass's annotations,
so a new state needs no hand-written (de)serialiser, and a stored state that does not fit the class as it
is now (a field added, renamed or retyped) is refused whole with `StateShapeError`, never half-loaded.
A leaf module: `collector.api` re-exports what adapters need of it.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

# Field metadata for what must never leave the process (refreshed credentials): such a field is not
# dumped, and a loaded state has its default. `field(default=None, metadata=MEMORY_ONLY)`.
MEMORY_ONLY = types.MappingProxyType({"persist": False})

Dump = Callable[[Any], Any]
Load = Callable[[Any, str], Any]  # (stored value, its path in the state for the error) -> value


class StateShapeError(ValueError):
    """A stored state that does not fit the state class; names the first field that does not."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'state'}: {problem}")


class StateCodec:
    """Dump one dataclass type to JSON types and load it back, checking every value's type on load."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self._dump, self._load = _dataclass(cls, cls.__name__)

    def dump(self, state: Any) -> Any:
        return self._dump(state)

    def load(self, data: Any) -> Any:
        return self._load(data, self.cls.__name__)


@cache
def codec_for(cls: type) -> StateCodec:
    """The codec of a state class (built once); TypeError names a field type it cannot store."""
    return StateCodec(cls)


def _identity(value: Any) -> Any:
    return value


def _got(value: Any) -> str:
    return type(value).__name__


def _converter(tp: Any, where: str) -> tuple[Dump, Load]:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return _optional(tp, args, where)
    if tp in (str, int, bool):
        return _identity, _exact(tp)
    if tp is float:
        return _dump_float, _load_float
    if tp is datetime:
        return _dump_datetime, _load_datetime
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, where)
    if origin is dict and args and args[0] is str:
        return _mapping(*_converter(args[1], f"{where}[]"))
    if origin is list:
        return _sequence(*_converter(args[0], f"{where}[]"), list)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(*_converter(args[0], f"{where}[]"), tuple)
    if origin is tuple and args:
        return _fixed_tuple([_converter(a, f"{where}[{i}]") for i, a in enumerate(args)])
    raise TypeError(f"{where}: a state field of type {tp!r} cannot be stored")


def _optional(tp: Any, args: tuple[Any, ...], where: str) -> tuple[Dump, Load]:
    present = [a for a in args if a is not type(None)]
    if len(present) != 1 or len(args) != 2:
        raise TypeError(f"{where}: only `X | None` unions can be stored, not {tp!r}")
    dump, load = _converter(present[0], where)
    return (
        lambda value: None if value is None else dump(value),
        lambda value, path: None if value is None else load(value, path),
    )


def _exact(tp: type) -> Load:
    def load(value: Any, path: str) -> Any:
        if type(value) is not tp:  # bool is an int subclass: `type`, not isinstance
            raise StateShapeError(path, f"expected {tp.__name__}, got {_got(value)}")
        return value

    return load


def _dump_float(value: float) -> Any:
    return value if math.isfinite(value) else repr(value)  # JSON has no nan/inf


def _load_float(value: Any, path: str) -> float:
    if type(value) in (int, float):
        return float(value)
    if value in ("nan", "inf", "-inf"):
        return float(value)
    raise StateShapeError(path, f"expected a number, got {_got(value)}")


def _dump_datetime(value: datetime) -> str:
    return value.isoformat()


def _load_datetime(value: Any, path: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if type(value) is str else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise StateShapeError(path, f"expected an ISO time with its UTC offset, got {str(value)[:40]!r}")
    return parsed


def _enum(tp: type[Enum]) -> tuple[Dump, Load]:
    def load(value: Any, path: str) -> Enum:
        try:
            return tp(value)
        except ValueError:
            raise StateShapeError(path, f"{str(value)[:40]!r} is not a {tp.__name__}") from None

    return (lambda member: member.value), load


def _mapping(dump: Dump, load: Load) -> tuple[Dump, Load]:
    def load_mapping(value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise StateShapeError(path, f"expected an object, got {_got(value)}")
        return {key: load(item, f"{path}[{key!r}]") for key, item in value.items()}

    return (lambda value: {key: dump(item) for key, item in value.items()}), load_mapping


def _sequence(dump: Dump, load: Load, build: type) -> tuple[Dump, Load]:
    def load_sequence(value: Any, path: str) -> Any:
        if type(value) is not list:
            raise StateShapeError(path, f"expected a list, got {_got(value)}")
        return build(load(item, f"{path}[{i}]") for i, item in enumerate(value))

    return (lambda value: [dump(item) for item in value]), load_sequence


def _fixed_tuple(parts: list[tuple[Dump, Load]]) -> tuple[Dump, Load]:
    def load(value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list or len(value) != len(parts):
            raise StateShapeError(path, f"expected a list of {len(parts)}, got {str(value)[:40]!r}")
        return tuple(
            part[1](item, f"{path}[{i}]") for i, (part, item) in enumerate(zip(parts, value, strict=True))
        )

    return (lambda value: [part[0](item) for part, item in zip(parts, value, strict=True)]), load


def _dataclass(cls: type, where: str) -> tuple[Dump, Load]:
    hints = get_type_hints(cls)
    stored: dict[str, tuple[Dump, Load]] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            raise TypeError(f"{where}.{f.name}: a state field must be set by the constructor")
        if f.metadata.get("persist", True):
            stored[f.name] = _converter(hints[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"{where}.{f.name}: a memory-only field needs a default")
    names = frozenset(stored)

    def dump(state: Any) -> dict[str, Any]:
        return {name: conv[0](getattr(state, name)) for name, conv in stored.items()}

    def load(value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise StateShapeError(path, f"expected an object for {cls.__name__}, got {_got(value)}")
        if value.keys() != names:
            missing, unknown = sorted(names - value.keys()), sorted(value.keys() - names)
            raise StateShapeError(
                path, f"{cls.__name__} fields differ (missing {missing}, unknown {unknown})"
            )
        return cls(**{name: conv[1](value[name], f"{path}.{name}") for name, conv in stored.items()})

    return dump, load
