"""Small pieces every parser uses: embedded-JSON location by byte search, and declarative metric tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from collector.api import ParseFailure
from schemas.types import Metric, Provenance, Reading
from scrapers.normalise import NumberFormatError, parse_count

_MISSING = object()


def dig(obj: Any, path: tuple[str | int, ...]) -> Any:
    """`obj[path[0]][path[1]]...`, or _MISSING where the path breaks."""
    for key in path:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return obj


def first(obj: Any, *paths: tuple[str | int, ...]) -> Any:
    """The value at the first path present (and not null), or None."""
    for path in paths:
        value = dig(obj, path)
        if value is not _MISSING and value is not None:
            return value
    return None


def load_json(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseFailure("bad_json", str(exc)[:200]) from None


def script_json(body: bytes, marker: bytes) -> Any | None:
    """Decode the JSON inside the `<script ...marker...>` tag, or None when no such tag exists.

    A byte search instead of an HTML parser: these pages are hundreds of KiB and the script tag is
    the only part we need.
    """
    at = body.find(marker)
    if at < 0:
        return None
    open_end = body.find(b">", at)
    close = body.find(b"</script>", open_end)
    if open_end < 0 or close < 0:
        raise ParseFailure("truncated_script", marker.decode(errors="replace"))
    return load_json(body[open_end + 1 : close])


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Where one metric lives in a JSON object: the first present path wins."""

    metric: Metric
    paths: tuple[tuple[str | int, ...], ...]
    provenance: Provenance = Provenance.OBSERVED
    # The platform writes 0 (or "") here when it does not tell (seen in real captures): such a value
    # is no reading, and the next path is tried.
    zero_is_unknown: bool = False


def _count(spec: MetricSpec, raw: object) -> int:
    if type(raw) is int:  # what JSON counters mostly are: parse_count's answer, without its checks
        return raw
    if not isinstance(raw, str | int | float):
        # Not handed to parse_count: its error message reprs the value, which fails for deep nesting.
        raise ParseFailure("bad_number", f"{spec.metric}: a {type(raw).__name__}, not a number")
    try:
        return parse_count(raw)
    except NumberFormatError as exc:
        raise ParseFailure("bad_number", f"{spec.metric}: {exc}") from None


def _told(obj: Mapping[str, Any], spec: MetricSpec) -> int | None:
    if not spec.zero_is_unknown:
        raw = first(obj, *spec.paths)
        return None if raw is None else _count(spec, raw)
    for path in spec.paths:
        raw = dig(obj, path)
        if raw is _MISSING or raw is None or raw == "":
            continue
        if value := _count(spec, raw):
            return value
    return None


def readings_from(obj: Mapping[str, Any], specs: Iterable[MetricSpec]) -> list[Reading]:
    """One generic loop over a platform's metric table; absent metrics are skipped, junk is a failure."""
    return [
        Reading(spec.metric, float(value), spec.provenance)
        for spec in specs
        if (value := _told(obj, spec)) is not None
    ]
