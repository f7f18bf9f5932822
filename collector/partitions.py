"""Growth of the `samples` table: daily partitions on PostgreSQL, made ahead and dropped past retention.

On PostgreSQL `samples` is range-partitioned on `observed_at`, one partition per UTC day
(`samples_pYYYYMMDD`), plus `samples_default` for any time without its day yet, so a write never fails.
`maintain` creates the coming days, moves rows that landed in the default partition into their day,
and drops whole days that ended before the retention cutoff. SQLite keeps one plain table; there the
same retention deletes the same whole days.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.models import SAMPLE_DEFAULT_PARTITION as DEFAULT_PARTITION
from schemas.models import SAMPLE_PARTITION_PREFIX as PREFIX
from schemas.models import SampleRow

log = logging.getLogger(__name__)

DAYS_AHEAD = 2  # today and the next two days exist before any row arrives for them
MAINTAIN_EVERY = 3600.0
RETRY_AFTER = 60.0
# Every replica runs the maintenance; one at a time does the work (any constant key would do).
ADVISORY_LOCK = 0x73616D70  # "samp"
# DDL on the partitioned table queues behind long readers and every insert queues behind it: give
# up quickly and try again later rather than stall the writers.
LOCK_TIMEOUT = "2s"


@dataclass(slots=True)
class Maintenance:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_rows: int = 0  # rows moved out of the default partition into their new day
    deleted_rows: int = 0  # SQLite: rows of whole days past the retention


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(name: str) -> date | None:
    """The day a partition of ours holds, or None for any other table (the default partition)."""
    if not name.startswith(PREFIX):
        return None
    try:
        return datetime.strptime(name[len(PREFIX) :], "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def retention_cutoff(now: datetime, retention: float) -> date:
    """The first day kept: days that ended at or before `now - retention` go, whole."""
    oldest_kept = now.astimezone(UTC) - timedelta(seconds=retention)
    return oldest_kept.date()


async def maintain(
    engine: AsyncEngine, now: datetime, *, retention: float | None, days_ahead: int = DAYS_AHEAD
) -> Maintenance:
    """Bring the sample partitions up to `now`: days ahead made, the default partition emptied into
    its days, days past `retention` (seconds; None keeps everything) dropped."""
    if engine.dialect.name != "postgresql":
        return await _sqlite_retention(engine, now, retention)
    done = Maintenance()
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        existing = {day: name for name in await _partitions(conn) if (day := day_of(name)) is not None}
        today = now.astimezone(UTC).date()
        wanted = {today + timedelta(days=n) for n in range(days_ahead + 1)}
        stray = await _days_in_default(conn)
        for day in sorted((wanted | stray) - existing.keys()):
            done.moved_rows += await _create(conn, day, has_rows=day in stray)
            existing[day] = partition_name(day)
            done.created.append(existing[day])
        if retention is not None:
            cutoff = retention_cutoff(now, retention)
            for day in sorted(d for d in existing if d < cutoff):
                await conn.execute(text(f'DROP TABLE "{existing[day]}"'))
                done.dropped.append(existing[day])
    return done


async def _partitions(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('samples')"
        )
    )
    return [name for (name,) in rows]


async def _days_in_default(conn: AsyncConnection) -> set[date]:
    """Days that rows in the default partition belong to: written before their day was made."""
    rows = await conn.execute(
        text(f"SELECT DISTINCT (observed_at AT TIME ZONE 'UTC')::date FROM {DEFAULT_PARTITION}")
    )
    return {day for (day,) in rows}


async def _create(conn: AsyncConnection, day: date, *, has_rows: bool) -> int:
    """Make `day`'s partition; returns the rows moved into it from the default partition.

    Built apart and attached, not `CREATE TABLE … PARTITION OF`: attaching takes a lock that lets
    inserts into the other partitions go on, where creating one in place locks the whole table."""
    name, low = partition_name(day), _start_of(day)
    bounds = {"low": low, "high": low + timedelta(days=1)}
    await conn.execute(text(f'CREATE TABLE "{name}" (LIKE samples INCLUDING DEFAULTS)'))
    moved = 0
    if has_rows:  # the default partition may not keep rows of a range that gets its own partition
        result = await conn.execute(
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE observed_at >= :low AND "
                f'observed_at < :high RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'
            ),
            bounds,
        )
        moved = max(result.rowcount, 0)
    # Bounds as literals: ATTACH takes no parameters. Both are our own UTC midnights.
    await conn.execute(
        text(
            f"ALTER TABLE samples ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{low.isoformat()}') "
            f"TO ('{bounds['high'].isoformat()}')"
        )
    )
    return moved


async def _sqlite_retention(engine: AsyncEngine, now: datetime, retention: float | None) -> Maintenance:
    done = Maintenance()
    if retention is None:
        return done
    cutoff = _start_of(retention_cutoff(now, retention))
    async with engine.begin() as conn:
        result = await conn.execute(SampleRow.__table__.delete().where(SampleRow.observed_at < cutoff))
        done.deleted_rows = max(result.rowcount, 0)
    return done


async def keep_maintained(engine: AsyncEngine, retention: float | None) -> None:
    """The service's maintenance task: `maintain` now and every hour (a minute after a failure)."""
    while True:
        try:
            done = await maintain(engine, datetime.now(UTC), retention=retention)
        except Exception as exc:  # the database away or a lock not granted: rows wait in the default
            log.warning("sample partition maintenance failed, retrying: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(RETRY_AFTER)
            continue
        if done.created or done.dropped or done.deleted_rows:
            log.info(
                "sample partitions: created %s, dropped %s (past the retention), %d rows moved out of the "
                "default partition, %d rows deleted",
                ", ".join(done.created) or "none",
                ", ".join(done.dropped) or "none",
                done.moved_rows,
                done.deleted_rows,
            )
        await asyncio.sleep(MAINTAIN_EVERY)
