"""Backfill jobs, known gaps and running instances, as rows any collector process can read and claim.

A job row is the whole truth about a backfill: a process claims it (queued, or interrupted by a
process that is gone), advances its cursor as each unit of work is written, and finishes it. A
claim is one conditional UPDATE, so two processes never run the same job.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from collector.store import Store
from schemas.models import BackfillJobRow, GapRow, InstanceRow, TargetRow

# A process that has not said it is alive for this long is gone (its heartbeat runs every few seconds).
STALE_AFTER = timedelta(seconds=15)
FINISHED = ("done", "failed")


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class Job:
    id: int
    kind: str
    args: dict[str, Any]
    status: str
    cursor: int
    total: int | None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    owner: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None


def _job(row: Any) -> Job:
    return Job(**{name: getattr(row, name) for name in Job.__slots__})  # type: ignore[attr-defined]


class JobBook:
    """Jobs, gaps and instances in the collector's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    async def create(self, kind: str, args: dict[str, Any], now: datetime) -> Job:
        async with self.engine.begin() as conn:
            job_id = await conn.scalar(
                BackfillJobRow.__table__.insert()
                .values(kind=kind, args=args, status="queued", cursor=0, counts={}, errors=[], created_at=now)
                .returning(BackfillJobRow.id)
            )
        return await self.get(job_id)  # type: ignore[arg-type]

    async def get(self, job_id: int) -> Job:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(BackfillJobRow).where(BackfillJobRow.id == job_id))
            ).one_or_none()
        if row is None:
            raise LookupError(f"no backfill job {job_id}")
        return _job(row)

    async def list(self, limit: int = 50) -> list[Job]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(BackfillJobRow).order_by(BackfillJobRow.id.desc()).limit(limit))
            return [_job(r) for r in rows]

    async def claim(self, job_id: int, owner: str, now: datetime, *, kinds: Sequence[str] = ()) -> Job | None:
        """Take a job that nobody runs: queued, or running/interrupted under a process that is gone."""
        stale = now - STALE_AFTER
        claimable = or_(
            BackfillJobRow.status.in_(("queued", "interrupted")),
            and_(BackfillJobRow.status == "running", BackfillJobRow.heartbeat_at < stale),
        )
        query = update(BackfillJobRow).where(BackfillJobRow.id == job_id, claimable)
        if kinds:
            query = query.where(BackfillJobRow.kind.in_(kinds))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                query.values(status="running", owner=owner, heartbeat_at=now, started_at=now)
            )
        return await self.get(job_id) if result.rowcount == 1 else None

    async def next_queued(self, kinds: Sequence[str]) -> int | None:
        async with self.engine.connect() as conn:
            return await conn.scalar(
                select(BackfillJobRow.id)
                .where(BackfillJobRow.status == "queued", BackfillJobRow.kind.in_(kinds))
                .order_by(BackfillJobRow.id)
                .limit(1)
            )

    async def interrupted(self, job_id: int) -> None:
        """The job's owner is gone: mark it so that the next claim takes it."""
        await self._set_status(job_id, "interrupted")

    async def requeue(self, job_id: int) -> None:
        """Hand an unfinished job (cursor kept) to whichever running collector claims it next."""
        await self._set_status(job_id, "queued")

    async def _set_status(self, job_id: int, status: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(BackfillJobRow)
                .where(BackfillJobRow.id == job_id, BackfillJobRow.status.not_in(FINISHED))
                .values(status=status)
            )

    async def progress(self, job: Job, now: datetime) -> None:
        """Save the cursor and counts after a unit of work was written (and say the owner lives)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(BackfillJobRow)
                .where(BackfillJobRow.id == job.id)
                .values(
                    cursor=job.cursor,
                    total=job.total,
                    counts=dict(job.counts),
                    errors=list(job.errors[-50:]),
                    heartbeat_at=now,
                )
            )

    async def finish(self, job: Job, status: str, now: datetime) -> None:
        job.status, job.finished_at = status, now
        async with self.engine.begin() as conn:
            await conn.execute(
                update(BackfillJobRow)
                .where(BackfillJobRow.id == job.id)
                .values(
                    status=status,
                    cursor=job.cursor,
                    total=job.total,
                    counts=dict(job.counts),
                    errors=list(job.errors[-50:]),
                    heartbeat_at=now,
                    finished_at=now if status in FINISHED else None,
                )
            )

    # --- instances --------------------------------------------------------------------------------

    async def owner_alive(self, owner: str, now: datetime) -> None:
        """The jobs `owner` runs are still being run (a unit of work may take longer than STALE_AFTER)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(BackfillJobRow)
                .where(BackfillJobRow.owner == owner, BackfillJobRow.status == "running")
                .values(heartbeat_at=now)
            )

    async def instance_alive(self, instance: str, now: datetime, source: str | None = None) -> None:
        await self.owner_alive(instance, now)
        async with self.engine.begin() as conn:
            found = await conn.execute(
                update(InstanceRow).where(InstanceRow.id == instance).values(heartbeat_at=now)
            )
            if found.rowcount == 0:
                await conn.execute(
                    InstanceRow.__table__.insert().values(
                        id=instance, started_at=now, heartbeat_at=now, config_source=source
                    )
                )

    async def instance_gone(self, instance: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(InstanceRow).where(InstanceRow.id == instance))

    async def live_instances(self, now: datetime) -> list[InstanceRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(InstanceRow)
                .where(InstanceRow.heartbeat_at >= now - STALE_AFTER)
                .order_by(InstanceRow.id)
            )
            return list(rows.all())  # type: ignore[arg-type]

    async def reloaded(self, instance: str, now: datetime, outcome: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(InstanceRow)
                .where(InstanceRow.id == instance)
                .values(last_reload_at=now, last_reload=outcome[:2000])
            )

    # --- gaps -------------------------------------------------------------------------------------

    async def record_gap(
        self, target: str, start: datetime, end: datetime, status: str, detail: str, job_id: int | None
    ) -> None:
        """Insert or update the gap of `target` that starts at `start` (a re-run refines, never doubles)."""
        target_id = self.store.target_ids[target]
        values = {"ended_at": end, "status": status, "detail": detail, "job_id": job_id}
        async with self.engine.begin() as conn:
            stmt = self.store._insert(GapRow).values(target_id=target_id, started_at=start, **values)
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["target_id", "started_at"], set_=values)
            )

    async def gaps(
        self, *, since: datetime | None = None, until: datetime | None = None, targets: Sequence[str] = ()
    ) -> list[Gap]:
        """Known gaps, oldest first."""
        query = select(
            GapRow.started_at,
            GapRow.ended_at,
            TargetRow.platform,
            TargetRow.name,
            GapRow.status,
            GapRow.detail,
        ).join(TargetRow, GapRow.target_id == TargetRow.id)
        if since is not None:
            query = query.where(GapRow.ended_at > since)
        if until is not None:
            query = query.where(GapRow.started_at < until)
        if targets:
            query = query.where(TargetRow.name.in_(targets))
        async with self.engine.connect() as conn:
            rows = await conn.execute(query.order_by(GapRow.started_at, TargetRow.name))
            return [Gap(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Gap:
    started_at: datetime
    ended_at: datetime
    platform: str
    target: str
    status: str
    detail: str | None

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


def utcnow() -> datetime:
    return datetime.now(UTC)
