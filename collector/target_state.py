"""A target's state as the `target_state` table keeps it: its kind's typed state and its backoff.

It is stored with the record of a poll that changed it (through the spool, like the samples) and loaded
before the target's first poll in a process, so a restarted collector, or a fleet replica that takes the
target over, carries on with the same live room and the same estimate baselines. A stored state is only
loaded into the target definition it was saved from (a changed target starts fresh, as a reload makes
it), with the kind's state version it was saved with; anything else starts fresh with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import orjson

from collector.api import KindSpec, StateShapeError, TargetConfig

log = logging.getLogger(__name__)

FORMAT = 1  # of the envelope below; the kind's own state has the kind's `state_version`


@dataclass(frozen=True, slots=True)
class Restored:
    adapter_state: Any
    failures: int  # failed polls in a row when it was stored
    hold_until: datetime | None  # no poll before this (backoff, Retry-After)


def definition_key(target: TargetConfig) -> str:
    """A digest of the target's definition: every field a reload compares (secrets by their source)."""
    definition = {f.name: getattr(target, f.name) for f in fields(target)}
    definition["params"] = dict(target.params)
    definition["secrets"] = {name: secret.source for name, secret in target.secrets.items()}
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def envelope(
    definition: str, spec: KindSpec, adapter_state: Any, failures: int, hold_until: datetime | None
) -> dict[str, Any]:
    """What is stored for a target now; `definition` is its `definition_key`."""
    return {
        "format": FORMAT,
        "definition": definition,
        "version": spec.state_version,
        "state": spec.dump_state(adapter_state),
        "failures": failures,
        "hold_until": hold_until.isoformat() if hold_until else None,
    }


def canonical(data: dict[str, Any]) -> bytes:
    """The bytes two equal states share, to tell a changed state from an unchanged one."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def restore(target: TargetConfig, spec: KindSpec, data: Any) -> Restored | None:
    """The stored state of `target` if it still applies; None (logged) when the target must start fresh."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        log.warning("%s: stored state has an unknown format, starting fresh", target.name)
        return None
    if data.get("definition") != definition_key(target):
        log.info("%s: target changed since its state was stored, starting fresh", target.name)
        return None
    if data.get("version") != spec.state_version:
        log.warning(
            "%s: stored state is version %r, this %s/%s keeps version %d: starting fresh",
            target.name,
            data.get("version"),
            target.platform,
            target.kind,
            spec.state_version,
        )
        return None
    try:
        adapter_state = spec.load_state(data.get("state"))
        failures, hold = data.get("failures"), data.get("hold_until")
        if type(failures) is not int or failures < 0:
            raise StateShapeError("failures", f"expected a count, got {failures!r}")
        hold_until = datetime.fromisoformat(hold) if isinstance(hold, str) else None
        if hold is not None and (hold_until is None or hold_until.tzinfo is None):
            raise StateShapeError("hold_until", f"expected an ISO time with its offset, got {hold!r}")
    except (StateShapeError, ValueError) as exc:
        log.warning("%s: stored state cannot be loaded (%s), starting fresh", target.name, exc)
        return None
    return Restored(adapter_state, failures, hold_until)


def hold_until(observed_at: datetime, delay: float) -> datetime | None:
    return observed_at + timedelta(seconds=delay) if delay > 0 else None
