"""What `collector status` and `collector fleet` read about the fleet: who holds which target, since
when, and which replicas are alive. Read-only; works on SQLite too (where nothing is ever held)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.models import InstanceRow, TargetLeaseRow, TargetRow

# Replicas silent for longer than this are not listed at all (a kill -9 leaves its row behind).
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Holding:
    holder: str
    held_since: datetime | None
    lease_until: datetime | None


@dataclass(frozen=True, slots=True)
class Replica:
    id: str
    started_at: datetime
    heartbeat_at: datetime
    config_source: str | None
    targets: int  # targets whose lease it holds and has not let run out


async def holdings(engine: AsyncEngine, now: datetime) -> dict[str, Holding]:
    """Each target's holder, by target name; a lease that ran out counts as not held."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                TargetRow.name, TargetLeaseRow.holder, TargetLeaseRow.held_since, TargetLeaseRow.lease_until
            )
            .join(TargetLeaseRow, TargetLeaseRow.target_id == TargetRow.id)
            .where(TargetLeaseRow.holder.is_not(None))
        )
        return {
            name: Holding(holder, since, until)
            for name, holder, since, until in rows
            if until is not None and until > now
        }


async def replicas(engine: AsyncEngine, now: datetime) -> list[Replica]:
    held = await holdings(engine, now)
    counts: dict[str, int] = {}
    for holding in held.values():
        counts[holding.holder] = counts.get(holding.holder, 0) + 1
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(InstanceRow)
            .where(InstanceRow.heartbeat_at >= now - FORGET_AFTER)
            .order_by(InstanceRow.started_at, InstanceRow.id)
        )
        instances: Sequence[InstanceRow] = rows.all()  # type: ignore[assignment]
    return [
        Replica(i.id, i.started_at, i.heartbeat_at, i.config_source, counts.get(i.id, 0)) for i in instances
    ]
