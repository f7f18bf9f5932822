"""Samples written per second through the real writer (spool, batches, store), against a plain insert.

The records are what an event produces: live targets polled with five metrics each and the live session
the page shows, every batch updating the targets' poll status. The writer runs as the service runs it
(a spool in a temporary folder, fsynced and acknowledged per batch); the baseline inserts the same
sample rows with one SQLAlchemy Core `executemany` per batch and nothing else. Both are timed (wall and
CPU) from a prepared database: the schema migration and target registration are left out. Variant and baseline
alternate, each round on a fresh database, and the medians are printed. PostgreSQL rows need Debian's
postgresql package (a throwaway server on 127.0.0.1 is started and removed).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.postgres import fresh_databases, throwaway_postgres
from collector.api import PollRecord, TargetConfig
from collector.metrics import LiveState, SelfMetrics
from collector.outcomes import Outcome
from collector.spool import Spool
from collector.store import Store
from collector.writer import BatchWriter
from schemas.models import SampleRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

SAMPLES = 100_000
TARGETS = 1_000
BATCH = 500
ROUNDS = 3
START = datetime(2025, 9, 9, tzinfo=UTC)
METRICS = (Metric.VIEWERS, Metric.VIEWS, Metric.LIKES, Metric.SHARES, Metric.LIVE_STATUS)
TARGET_CONFIGS = [TargetConfig(f"live-{i}", "tiktok", "live", 15.0, {}, "bench") for i in range(TARGETS)]


def event_records() -> list[PollRecord]:
    records = []
    for n in range(SAMPLES // len(METRICS)):
        target, at = TARGET_CONFIGS[n % TARGETS].name, START + timedelta(seconds=15 * (n // TARGETS))
        key = f"room-{n % TARGETS}"
        samples = [
            Sample(target, "tiktok", "live", m, float(n + i), at, Provenance.OBSERVED, key)
            for i, m in enumerate(METRICS)
        ]
        session = SessionObservation(key, LiveStatus.LIVE, "Sale 9.9", START)
        records.append(PollRecord(target, at, Outcome.OK, samples, session, [], at + timedelta(seconds=15)))
    return records


async def through_writer(url: str, records: list[PollRecord]) -> tuple[float, float]:
    store = Store(url, TARGET_CONFIGS)
    await store.prepare()
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as spool_dir:
        spool = Spool(Path(spool_dir), max_bytes=1 << 30)
        writer = BatchWriter(
            store,
            SelfMetrics(LiveState(TARGET_CONFIGS)),
            flush_interval=1.0,
            batch_size=BATCH,
            pending_limit=200_000,
            raw_retention=86400.0,
            spool=spool,
        )
        for r in records:
            writer.submit(r)
            if len(writer.pending) >= BATCH:
                await writer.flush_once()
        await writer.flush_once()
        spool.close()
    took = time.perf_counter() - wall, time.process_time() - cpu
    async with store.engine.connect() as conn:
        written = await conn.scalar(select(func.count()).select_from(SampleRow))
    await store.close()
    if written != SAMPLES:
        raise SystemExit(f"the writer stored {written} samples of {SAMPLES}")
    return took


async def plain_insert(url: str, records: list[PollRecord]) -> tuple[float, float]:
    store = Store(url, TARGET_CONFIGS)
    await store.prepare()
    wall, cpu = time.perf_counter(), time.process_time()
    ids = store.target_ids
    rows = [
        {
            "target_id": ids[s.target],
            "metric": s.metric.value,
            "observed_at": s.observed_at,
            "value": s.value,
            "provenance": s.provenance.value,
            "session_id": None,
            "currency": None,
        }
        for r in records
        for s in r.samples
    ]
    per_batch = BATCH * len(METRICS)
    for i in range(0, len(rows), per_batch):
        async with store.engine.begin() as conn:
            await conn.execute(insert(SampleRow), rows[i : i + per_batch])
    took = time.perf_counter() - wall, time.process_time() - cpu
    await store.close()
    return took


def measure(label: str, fresh_url: Callable[[], str]) -> None:
    records = event_records()
    results: dict[str, list[tuple[float, float]]] = {"writer": [], "plain": []}
    for _ in range(ROUNDS):
        for name, fn in (("writer", through_writer), ("plain", plain_insert)):
            url = fresh_url()
            results[name].append(asyncio.run(fn(url, records)))
    for name, title in (("writer", "writer (spool+store)"), ("plain", "baseline: plain insert")):
        wall = statistics.median(w for w, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"{label:10s} {title:24s} {SAMPLES / wall:10,.0f}/s {cpu:6.1f} CPU-s/100k")


def sqlite_urls(folder: Path) -> Callable[[], str]:
    count = iter(range(1_000_000))
    return lambda: f"sqlite+aiosqlite:///{folder}/bench-{next(count)}.db"


def main() -> None:
    print(f"samples written per second ({SAMPLES:,} samples, {TARGETS:,} targets, batches of {BATCH})")
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", sqlite_urls(Path(folder)))
    with throwaway_postgres("PostgreSQL rows") as server:
        if server is not None:
            measure("PostgreSQL", fresh_databases(server, "bench"))


if __name__ == "__main__":
    main()
