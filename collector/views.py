"""What `status`, `targets list` and `once` show: a text listing for people and JSON for scripts.

The JSON documents keep their keys whatever the values (null when unknown) and give times in ISO 8601 UTC,
so a script can rely on them; the text shows times relative to now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from collector.config import Config, TargetConfig, format_duration
from collector.listing import Listing

if TYPE_CHECKING:
    from collector.api import PollRecord
    from collector.fleet_view import Holding, Replica
    from schemas.models import InstanceRow, TargetRow


def iso_utc(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def span(seconds: int) -> str:
    """A duration as a person reads it at a glance: its two largest units (`6m44s`, `2h05m`, `3d4h`)."""
    for big, big_size, small, small_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
        ("m", 60, "s", 1),
    ):
        if seconds >= big_size:
            rest = (seconds % big_size) // small_size
            return f"{seconds // big_size}{big}{rest:02d}{small}" if rest else f"{seconds // big_size}{big}"
    return f"{seconds}s"


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = (when - now).total_seconds()
    text = span(max(1, round(abs(seconds))))
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _fields(target: TargetConfig) -> str:
    return "  ".join(
        [
            *(f"{k}={v}" for k, v in target.params.items()),
            *(f"{k} from {s.source}" for k, s in target.secrets.items()),
            *([f"campaign={target.campaign}"] if target.campaign else []),
        ]
    )


def targets_json(targets: Iterable[TargetConfig]) -> dict[str, Any]:
    return {
        "targets": [
            {
                "name": t.name,
                "platform": t.platform,
                "kind": t.kind,
                "fields": dict(t.params),
                "secrets": {k: s.source for k, s in t.secrets.items()},
                "interval_seconds": t.interval,
                "campaign": t.campaign,
                "enabled": t.enabled,
            }
            for t in targets
        ]
    }


def targets_listing(targets: Iterable[TargetConfig]) -> Listing:
    listing = Listing(("name", "platform", "kind", "interval", "enabled"))
    for t in targets:
        listing.add(
            t.name,
            t.platform,
            t.kind,
            format_duration(t.interval),
            "yes" if t.enabled else "no",
            details=[_fields(t)],
        )
    return listing


def _status_pairs(config: Config, rows: Sequence[TargetRow]) -> list[tuple[TargetConfig, TargetRow | None]]:
    """Every configured target, with what the database recorded for it (None: never registered)."""
    by_name = {row.name: row for row in rows}
    return [(t, by_name.get(t.name)) for t in sorted(config.targets, key=lambda t: t.name)]


def _never_polled(target: TargetConfig) -> str:
    return "never polled" if target.enabled else "disabled"


def status_json(
    config: Config, rows: Sequence[TargetRow], held: Mapping[str, Holding] | None = None
) -> dict[str, Any]:
    out = []
    for t, row in _status_pairs(config, rows):
        holding = (held or {}).get(t.name)
        out.append(
            {
                "name": t.name,
                "platform": t.platform,
                "kind": t.kind,
                "enabled": t.enabled,
                "last_outcome": row.last_outcome if row else None,
                "last_outcome_at": iso_utc(row.last_outcome_at) if row else None,
                "last_success_at": iso_utc(row.last_success_at) if row else None,
                "next_due_at": iso_utc(row.next_due_at) if row else None,
                "detail": row.last_detail if row else None,
                "credentials_expire_at": iso_utc(row.credentials_expire_at) if row else None,
                "held_by": holding.holder if holding else None,
                "held_since": iso_utc(holding.held_since) if holding else None,
            }
        )
    return {"targets": out}


def status_listing(
    config: Config, rows: Sequence[TargetRow], now: datetime, held: Mapping[str, Holding] | None = None
) -> Listing:
    """One row per target; with `held` (fleet mode) also the replica polling it and since when."""
    headers = ("target", "platform", "kind", "last outcome", "at", "last success", "next due")
    listing = Listing(headers + (("replica", "held") if held is not None else ()))
    for t, row in _status_pairs(config, rows):
        cells = [t.name, t.platform, t.kind, _never_polled(t), "-", "-", "-"]
        if row is not None:
            cells[3:] = [
                row.last_outcome or _never_polled(t),
                ago(row.last_outcome_at, now),
                ago(row.last_success_at, now),
                ago(row.next_due_at, now),
            ]
        if held is not None:
            holding = held.get(t.name)
            cells += [holding.holder, ago(holding.held_since, now)] if holding else ["none", "-"]
        listing.add(*cells, details=[row.last_detail or ""] if row is not None else [])
    return listing


def fleet_json(
    config: Config, replicas: Sequence[Replica], held: Mapping[str, Holding], now: datetime
) -> dict[str, Any]:
    enabled = [t.name for t in config.active_targets()]
    return {
        "lease_seconds": config.fleet.lease,
        "replicas": [
            {
                "id": r.id,
                "alive": _alive(r, config, now),
                "started_at": iso_utc(r.started_at),
                "heartbeat_at": iso_utc(r.heartbeat_at),
                "targets_held": r.targets,
                "config": r.config_source,
            }
            for r in replicas
        ],
        "targets_enabled": len(enabled),
        "targets_held": sum(1 for name in enabled if name in held),
        "unheld": sorted(name for name in enabled if name not in held),
    }


def fleet_listing(config: Config, replicas: Sequence[Replica], now: datetime) -> Listing:
    listing = Listing(("replica", "state", "started", "heartbeat", "targets"))
    for r in replicas:
        state = "alive" if _alive(r, config, now) else "silent"
        listing.add(r.id, state, ago(r.started_at, now), ago(r.heartbeat_at, now), str(r.targets))
    return listing


def fleet_summary(
    config: Config, replicas: Sequence[Replica], held: Mapping[str, Holding], now: datetime
) -> list[str]:
    """The line an operator looks for first: is every enabled target held by a live replica?"""
    enabled = [t.name for t in config.active_targets()]
    unheld = sorted(name for name in enabled if name not in held)
    alive = sum(1 for r in replicas if _alive(r, config, now))
    lines = [
        "",
        f"{len(enabled) - len(unheld)} of {len(enabled)} enabled targets held by {alive} live "
        f"replica{'s' if alive != 1 else ''} (lease {format_duration(config.fleet.lease)})",
    ]
    if unheld:
        shown = ", ".join(unheld[:10]) + (f" and {len(unheld) - 10} more" if len(unheld) > 10 else "")
        lines.append(f"not held by any replica: {shown}")
    if not config.fleet.enabled:
        lines.append(
            "fleet mode is off in this configuration ([fleet] enabled = false): one process polls all"
        )
    return lines


def _alive(replica: Replica, config: Config, now: datetime) -> bool:
    return (now - replica.heartbeat_at).total_seconds() <= config.fleet.lease


def _values(record: PollRecord) -> str:
    return "  ".join(f"{s.metric.value}={number(s.value)}" for s in record.samples)


def once_json(config: Config, records: Sequence[PollRecord]) -> dict[str, Any]:
    by_name = {t.name: t for t in config.targets}
    return {
        "records": [
            {
                "target": r.target,
                "platform": by_name[r.target].platform,
                "kind": by_name[r.target].kind,
                "outcome": r.outcome.value,
                "observed_at": iso_utc(r.observed_at),
                "detail": r.detail,
                "session_key": r.session.key if r.session else None,
                "samples": [
                    {
                        "metric": s.metric.value,
                        "value": s.value,
                        "provenance": s.provenance.value,
                        "currency": s.currency,
                        "observed_at": iso_utc(s.observed_at),
                    }
                    for s in r.samples
                ],
            }
            for r in records
        ]
    }


def once_listing(config: Config, records: Sequence[PollRecord]) -> Listing:
    by_name = {t.name: t for t in config.targets}
    listing = Listing(("target", "platform", "kind", "outcome"))
    for r in records:
        target = by_name[r.target]
        listing.add(
            r.target, target.platform, target.kind, r.outcome.value, details=[_values(r), r.detail or ""]
        )
    return listing


def instances_json(instances: Sequence[InstanceRow]) -> list[dict[str, Any]]:
    return [
        {
            "id": i.id,
            "started_at": iso_utc(i.started_at),
            "heartbeat_at": iso_utc(i.heartbeat_at),
            "config": i.config_source,
            "last_reload_at": iso_utc(i.last_reload_at),
            "last_reload": i.last_reload,
        }
        for i in instances
    ]


def instances_lines(instances: Sequence[InstanceRow], now: datetime) -> list[str]:
    """Which `collector run` processes are alive, and what their last reload did."""
    if not instances:
        return ["", "no collector service is running (no heartbeat in the last 15s)"]
    lines = [""]
    for i in instances:
        lines.append(
            f"service {i.id}: running since {ago(i.started_at, now)}, heartbeat {ago(i.heartbeat_at, now)}"
        )
        if i.last_reload_at is not None:
            lines.append(f"    last reload {ago(i.last_reload_at, now)}: {i.last_reload}")
    return lines
