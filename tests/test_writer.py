"""The batched writer against a real PostgreSQL that goes away: memory cap, spool read-back, restarts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collector.api import PollRecord
from collector.config import TargetConfig
from collector.metrics import LiveState, SelfMetrics
from collector.outcomes import Outcome
from collector.spool import Spool
from collector.store import Store
from collector.writer import BatchWriter
from schemas.models import SampleRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

# Starts PostgreSQL, stopped and started under the writer.
pytestmark = pytest.mark.integration

TARGET = TargetConfig("shop", "tiktok", "live", 10.0, {"account": "shop_vn"})
T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)


def record(i: int) -> PollRecord:
    at = T0 + timedelta(seconds=i)
    samples = [Sample("shop", "tiktok", "live", Metric.VIEWERS, float(i), at, Provenance.OBSERVED, "room-1")]
    return PollRecord("shop", at, Outcome.OK, samples, SessionObservation("room-1", LiveStatus.LIVE))


def writer_for(store: Store, spool: Spool | None, metrics: SelfMetrics, limit: int) -> BatchWriter:
    return BatchWriter(
        store, metrics, flush_interval=0.1, batch_size=2, pending_limit=limit, raw_retention=3600, spool=spool
    )


async def stored_values(store: Store) -> list[float]:
    async with store.engine.connect() as conn:
        return list(await conn.scalars(select(SampleRow.value).order_by(SampleRow.observed_at)))


def test_a_full_memory_buffer_loses_nothing_that_reached_the_spool(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> tuple[list[float], float, float]:
        metrics = SelfMetrics(LiveState([TARGET]))
        store = Store(postgres_url, [TARGET])
        await store.prepare()
        spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
        writer = writer_for(store, spool, metrics, limit=3)
        postgres_server.stop()
        for i in range(10):
            writer.submit(record(i))
        assert len(writer.pending) == 3 and spool.depth == 10
        assert not await writer.flush_once()
        postgres_server.start()
        await writer.flush(time.monotonic() + 30)
        values = await stored_values(store)
        dropped = metrics.registry.get_sample_value(
            "collector_dropped_records_total", {"reason": "memory_cap"}
        )
        await store.close()
        spool.close()
        return values, spool.depth, dropped or 0.0

    values, depth, dropped = asyncio.run(scenario())
    assert values == [float(i) for i in range(10)]
    assert depth == 0 and dropped == 0


def test_records_left_in_the_spool_are_written_by_the_next_process(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    async def first_run() -> None:
        store = Store(postgres_url, [TARGET])
        await store.prepare()
        spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
        writer = writer_for(store, spool, SelfMetrics(LiveState([TARGET])), limit=4)
        postgres_server.stop()
        for i in range(7):
            writer.submit(record(i))
        await writer.flush(time.monotonic() + 1)  # gives up: the database is down
        await store.close()
        spool.close()

    async def second_run() -> list[float]:
        store = Store(postgres_url, [TARGET])
        spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
        writer = writer_for(store, spool, SelfMetrics(LiveState([TARGET])), limit=4)
        assert len(writer.pending) == 4  # the rest waits in the spool
        writer.submit(record(7))
        await writer.flush(time.monotonic() + 30)
        values = await stored_values(store)
        assert spool.depth == 0
        await store.close()
        spool.close()
        return values

    asyncio.run(first_run())
    postgres_server.start()
    assert asyncio.run(second_run()) == [float(i) for i in range(8)]


def test_a_database_unreachable_at_start_is_prepared_when_it_returns(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> int:
        postgres_server.stop()
        store = Store(postgres_url, [TARGET])  # never prepared: the service starts anyway
        writer = writer_for(
            store, Spool(tmp_path / "spool", max_bytes=10_000_000), SelfMetrics(LiveState([])), 10
        )
        writer.submit(record(1))
        assert not await writer.flush_once()
        postgres_server.start()
        assert await writer.flush_once()
        async with store.engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(SampleRow))
        await store.close()
        return count

    assert asyncio.run(scenario()) == 1
