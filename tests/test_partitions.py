"""Sample storage growth: the 0009 migration keeps every row; daily partitions are made ahead and on
demand, and retention drops whole days only (PostgreSQL); SQLite keeps one table."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from collector.migrate import alembic_config, upgrade
from collector.partitions import maintain, partition_name
from collector.store import create_engine

NOW = datetime(2026, 12, 12, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)


async def _run(database_url: str, *statements: tuple[str, dict | list | None]) -> list:
    """Execute statements in one transaction; returns the rows of the last one (if it has any)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            result = None
            for sql, params in statements:
                result = await conn.execute(text(sql), params)
            return list(result) if result is not None and result.returns_rows else []
    finally:
        await engine.dispose()


def run(database_url: str, sql: str, params: dict | list | None = None) -> list:
    return asyncio.run(_run(database_url, (sql, params)))


def sample_rows(database_url: str, table: str = "samples") -> set[tuple]:
    rows = run(
        database_url,
        f"SELECT target_id, metric, observed_at, value, provenance, session_id, currency FROM {table}",
    )
    return {(t, m, _utc(at), v, p, s, c) for t, m, at, v, p, s, c in rows}


def _utc(at: datetime | str) -> datetime:
    """SQLite hands back its stored text, PostgreSQL an aware datetime."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def partitions(database_url: str) -> dict[str, int]:
    """Partition name -> rows in it."""
    names = run(
        database_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'samples'::regclass",
    )
    return {name: run(database_url, f'SELECT count(*) FROM "{name}"')[0][0] for (name,) in names}


def seed(database_url: str, times: list[datetime]) -> None:
    """Two targets, a broadcast, and samples of several metrics at `times` (with and without a
    session and a currency), written as a collector at revision 0008 wrote them."""
    stamp = (
        (lambda at: at.replace(tzinfo=None).isoformat(" ")) if "sqlite" in database_url else (lambda at: at)
    )
    targets = [{"id": i, "name": f"t{i}", "at": stamp(NOW - 10 * DAY)} for i in (1, 2)]
    samples = [
        {
            "t": 1 + n % 2,
            "m": metric,
            "at": stamp(at),
            "v": float(n * 10 + k) + 0.5,
            "p": "observed" if metric != "revenue" else "estimated",
            "s": 1 if n % 2 == 0 else None,
            "c": "VND" if metric == "revenue" else None,
        }
        for n, at in enumerate(times)
        for k, metric in enumerate(("viewers", "likes", "revenue"))
    ]
    statements = [
        (
            "INSERT INTO targets (id, name, platform, kind, params, created_at) "
            "VALUES (:id, :name, 'tiktok', 'live', '{}', :at)",
            targets,
        ),
        (
            "INSERT INTO live_sessions (id, target_id, platform, session_key, first_seen_at, last_seen_at, "
            "last_status) VALUES (1, 1, 'tiktok', 'room-1', :at, :at, 'live')",
            {"at": stamp(NOW - 9 * DAY)},
        ),
        (
            "INSERT INTO samples (target_id, metric, observed_at, value, provenance, session_id, currency) "
            "VALUES (:t, :m, :at, :v, :p, :s, :c)",
            samples,
        ),
    ]
    asyncio.run(_run(database_url, *statements[: 3 if samples else 2]))


def test_the_migration_keeps_every_row_of_a_populated_samples_table(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.upgrade(cfg, "0008")
    times = [NOW - 3 * DAY + n * timedelta(hours=7, minutes=13) for n in range(12)]  # four days
    seed(database_url, times)
    before = sample_rows(database_url)
    assert len(before) == 36

    upgrade(database_url)

    assert sample_rows(database_url) == before
    if "postgresql" in database_url:
        assert run(database_url, "SELECT partstrat::text FROM pg_partitioned_table")[0][0] == "r"
        days = sorted({at.date() for at in times})
        found = partitions(database_url)
        # Every row sits in its day's partition; the default partition is left empty.
        assert found == {"samples_default": 0} | {
            partition_name(day): 3 * sum(at.date() == day for at in times) for day in days
        }
    # The key is what makes a replayed write a no-op, on both backends.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        run(
            database_url,
            "INSERT INTO samples (target_id, metric, observed_at, value, provenance) "
            "SELECT target_id, metric, observed_at, 0, 'observed' FROM samples LIMIT 1",
        )

    command.downgrade(cfg, "0008")
    assert sample_rows(database_url) == before


@pytest.mark.integration
def test_days_ahead_are_made_and_a_day_without_its_partition_still_takes_writes(postgres_url: str) -> None:
    upgrade(postgres_url)
    seed(postgres_url, [])
    done = asyncio.run(_maintain(postgres_url, NOW, retention=None))
    ahead = [partition_name(NOW.date() + n * DAY) for n in range(3)]
    assert done.created == ahead
    assert set(partitions(postgres_url)) == {"samples_default", *ahead}
    assert asyncio.run(_maintain(postgres_url, NOW, retention=None)).created == []

    # Ten days ahead and a year back have no partition: the writes land in the default partition ...
    stray = [NOW + 10 * DAY, NOW + 10 * DAY + timedelta(hours=5), NOW - 365 * DAY]
    for at in stray:
        run(
            postgres_url,
            "INSERT INTO samples (target_id, metric, observed_at, value, provenance) "
            "VALUES (1, 'viewers', :at, 1, 'observed')",
            {"at": at},
        )
    before = sample_rows(postgres_url)
    assert partitions(postgres_url)["samples_default"] == 3
    # ... and the next maintenance moves them into partitions of their own days.
    done = asyncio.run(_maintain(postgres_url, NOW, retention=None))
    assert sorted(done.created) == sorted(partition_name(d) for d in {at.date() for at in stray})
    assert done.moved_rows == 3
    after = partitions(postgres_url)
    assert after["samples_default"] == 0
    assert after[partition_name(stray[0].date())] == 2
    assert sample_rows(postgres_url) == before


@pytest.mark.integration
def test_retention_drops_whole_days_past_the_setting_and_nothing_younger(postgres_url: str) -> None:
    upgrade(postgres_url)
    # One sample an hour over ten days up to NOW.
    times = [NOW - timedelta(hours=h) for h in range(240)]
    seed(postgres_url, times)
    asyncio.run(_maintain(postgres_url, NOW, retention=None))
    everything = sample_rows(postgres_url)

    done = asyncio.run(_maintain(postgres_url, NOW, retention=3 * 86400.0))

    first_kept: date = (NOW - 3 * DAY).date()
    assert done.dropped == [partition_name(d) for d in sorted({t.date() for t in times}) if d < first_kept]
    kept = sample_rows(postgres_url)
    assert kept == {row for row in everything if row[2].date() >= first_kept}
    # Whole days only: the kept first day still holds rows older than three days.
    assert min(row[2] for row in kept) == min(t for t in times if t.date() == first_kept)
    assert min(row[2] for row in kept) < NOW - 3 * DAY
    assert asyncio.run(_maintain(postgres_url, NOW, retention=3 * 86400.0)).dropped == []


def test_sqlite_retention_deletes_the_same_whole_days(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    upgrade(url)
    times = [NOW - timedelta(hours=h) for h in range(240)]
    seed(url, times)
    everything = sample_rows(url)
    assert asyncio.run(_maintain(url, NOW, retention=None)).deleted_rows == 0
    done = asyncio.run(_maintain(url, NOW, retention=3 * 86400.0))
    first_kept = (NOW - 3 * DAY).date()
    kept = sample_rows(url)
    assert kept == {row for row in everything if row[2].date() >= first_kept}
    assert done.deleted_rows == len(everything) - len(kept) > 0


async def _maintain(database_url: str, now: datetime, *, retention: float | None):  # type: ignore[no-untyped-def]
    engine = create_engine(database_url)
    try:
        return await maintain(engine, now, retention=retention)
    finally:
        await engine.dispose()


@pytest.mark.integration
def test_replicas_maintaining_at_once_make_each_day_once(postgres_url: str) -> None:
    upgrade(postgres_url)

    async def together() -> list:
        engines = [create_engine(postgres_url) for _ in range(3)]
        try:
            return await asyncio.gather(*(maintain(e, NOW, retention=None) for e in engines))
        finally:
            for engine in engines:
                await engine.dispose()

    done = asyncio.run(together())
    # The advisory lock lets one make the days; the others find them made.
    assert sorted(name for d in done for name in d.created) == [
        partition_name(NOW.date() + n * DAY) for n in range(3)
    ]
