"""Storage growth: rows stored per hour with store-on-change against every value, and the insert speed
and size per row of the day-partitioned `samples` table against the plain table it replaced.

Rows per hour: the simulator's event week (tests/event_polls.py: three streamers' daily broadcasts, an
account never live, two event hashtags) polled every 15 s for three days, through the change filter
with each keep-alive, counted, and the time the sink takes per sample (off: the filter's one check, then a
list append, is the baseline). Insert speed: the writer's own PostgreSQL statement (`unnest` arrays,
`ON CONFLICT DO NOTHING`) into a database at revision 0008 (one plain table, a surrogate id and a unique
key) and one at the head (partitioned by day, the key as primary key, the days made by the service's
maintenance), rows spread over three days; the two alternate, each round on fresh databases, and the
medians are printed. Needs Debian's postgresql package for the second part.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text

from bench.postgres import fresh_databases, throwaway_postgres
from collector.api import PollRecord
from collector.change_filter import ChangeFilter
from collector.migrate import alembic_config, upgrade
from collector.partitions import maintain
from collector.store import POSTGRES_SAMPLE_INSERT, create_engine

EVENT_SECONDS = 3 * 86400
INTERVAL = 15.0
KEEP_ALIVES = (0.0, 60.0, 300.0)
ROWS = 150_000
BATCH = 2_500  # the writer's 500 records of five samples
TARGETS = 1_000
ROUNDS = 3
START = datetime(2026, 12, 12, tzinfo=UTC)


def rows_per_hour() -> None:
    from tests.event_polls import event_polls, event_targets

    records = list(event_polls(EVENT_SECONDS, INTERVAL))
    targets, hours = len(event_targets()), EVENT_SECONDS / 3600
    print(
        f"rows stored per hour, event week ({targets} targets at {INTERVAL:g}s for {hours:.0f} h, "
        f"{len(records):,} polls)"
    )
    samples = sum(len(r.samples) for r in records)
    every = None
    for keep in KEEP_ALIVES:
        took, stored = [], 0
        for _ in range(ROUNDS):  # the filter starts afresh each round, as after a restart
            handed_on: list[PollRecord] = []
            sink = ChangeFilter(keep, handed_on.append)
            started = time.perf_counter()
            for record in records:
                sink(record)
            took.append(time.perf_counter() - started)
            stored = sum(len(r.samples) for r in handed_on)
        per_hour = stored / hours
        every = every or per_hour
        label = f"keep_unchanged_every={keep:g}s" if keep else "off (every value)"
        print(
            f"  {label:28s} {per_hour:9,.0f} rows/h  {per_hour / targets:7,.1f} per target-hour  "
            f"{per_hour / every:6.1%}  {statistics.median(took) / samples * 1e6:5.2f} us/sample in the sink"
        )


def sample_columns(round_: int) -> list[tuple[list, ...]]:
    """Batches of the writer's column arrays; times step 15 s per target and cover three days."""
    step = timedelta(seconds=EVENT_SECONDS * 0.999 / (ROWS / TARGETS))
    batches = []
    for first in range(0, ROWS, BATCH):
        n = range(first, first + BATCH)
        batches.append(
            (
                [1 + i % TARGETS for i in n],
                ["viewers"] * BATCH,
                [START + step * (i // TARGETS) for i in n],
                [float(i * 7 % 1000 + round_) for i in n],
                ["observed"] * BATCH,
                [None] * BATCH,
                [None] * BATCH,
            )
        )
    return batches


async def timed_inserts(url: str, partitioned: bool, batches: list[tuple[list, ...]]) -> tuple[float, float]:
    """Rows per second and bytes per row (table and indexes) for `batches` into a fresh database."""
    if partitioned:
        await asyncio.to_thread(upgrade, url)
    else:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0008")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO targets (id, name, platform, kind, params, created_at) "
                f"SELECT i, 't' || i, 'tiktok', 'live', '{{}}', now() FROM generate_series(1, {TARGETS}) i"
            )
        if partitioned:
            for day in range(4):
                await maintain(engine, START + timedelta(days=day), retention=None, days_ahead=0)
        wall = time.perf_counter()
        for columns in batches:
            async with engine.begin() as conn:
                await conn.exec_driver_sql(POSTGRES_SAMPLE_INSERT, columns)
        took = time.perf_counter() - wall
        async with engine.connect() as conn:
            size = await conn.scalar(
                text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relkind = 'r' "
                    "AND (c.relname = 'samples' OR c.oid IN (SELECT inhrelid FROM pg_inherits "
                    "WHERE inhparent = 'samples'::regclass))"
                )
            )
        return ROWS / took, size / ROWS
    finally:
        await engine.dispose()


def insert_speed(fresh_url: Callable[[], str]) -> None:
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for round_ in range(ROUNDS):
        batches = sample_columns(round_)
        for partitioned in (False, True):
            results[partitioned].append(asyncio.run(timed_inserts(fresh_url(), partitioned, batches)))
    print(f"PostgreSQL inserts ({ROWS:,} rows over 3 days, {TARGETS:,} targets, {BATCH:,} rows a statement)")
    for partitioned, title in ((False, "baseline: plain (0008)"), (True, "partitioned by day (0009)")):
        speed = statistics.median(s for s, _ in results[partitioned])
        size = statistics.median(b for _, b in results[partitioned])
        print(f"  {title:28s} {speed:10,.0f} rows/s  {size:6.0f} bytes/row (table and indexes)")


def main() -> None:
    rows_per_hour()
    with throwaway_postgres("PostgreSQL rows") as server:
        if server is not None:
            insert_speed(fresh_databases(server, "bench_storage"))


if __name__ == "__main__":
    main()
