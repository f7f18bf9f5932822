"""Campaign rollup time on a day of stored samples, against reading every sample of the campaign.

The database is a temporary SQLite file filled through the real store: six live targets polled every
20 s for a day (a session of two hours, twice a day each, two of them a Shopee page and its shop's
dashboard on the same broadcast) and two hashtags every 10 min. The rollup is what the scoreboard
recomputes at most once per cache interval (the HTML report also reads per-minute chart series); the
baseline is what a report built on `collector export` would have to read.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from collector.api import PollRecord, TargetConfig
from collector.campaign import Window, load_rollup
from collector.campaign_totals import as_dict
from collector.outcomes import Outcome
from collector.store import Store
from schemas.models import SampleRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

START = datetime(2025, 9, 9, tzinfo=UTC)
POLL = timedelta(seconds=20)
DAY_POLLS = 4320
CAMPAIGN = "bench"
LIVE = [TargetConfig(f"live-{i}", "tiktok", "live", 20.0, {}, CAMPAIGN) for i in range(4)]
SHOP = [
    TargetConfig("shop-live", "shopee", "live", 20.0, {}, CAMPAIGN),
    TargetConfig("shop-dash", "shopee", "shop_dashboard", 20.0, {}, CAMPAIGN),
]
TAGS = [TargetConfig(f"tag-{i}", "tiktok", "hashtag", 600.0, {"tag": f"t{i}"}, CAMPAIGN) for i in range(2)]
METRICS = (Metric.VIEWERS, Metric.VIEWS, Metric.LIKES, Metric.SHARES, Metric.LIVE_STATUS)


def _records(poll: int) -> list[PollRecord]:
    at = START + poll * POLL
    records = []
    for index, target in enumerate([*LIVE, *SHOP]):
        # Two broadcasts a day per target, two hours each; the two Shopee targets share theirs.
        slot = poll // (DAY_POLLS // 2)
        into = poll % (DAY_POLLS // 2)
        if into >= 360:
            continue
        key = f"s-{slot}" if target in SHOP else f"{target.name}-{slot}"
        provenance = Provenance.REPORTED if target.name == "shop-dash" else Provenance.OBSERVED
        values = [(m, float(into * (index + 1))) for m in METRICS]
        if target in SHOP:
            values.append((Metric.REVENUE, float(into * 10_000)))
        samples = [
            Sample(target.name, target.platform, target.kind, metric, value, at, provenance, key,
                   "VND" if metric is Metric.REVENUE else None)
            for metric, value in values
        ]  # fmt: skip
        records.append(
            PollRecord(target.name, at, Outcome.OK, samples, SessionObservation(key, LiveStatus.LIVE))
        )
    if poll % 30 == 0:
        for target in TAGS:
            sample = Sample(target.name, "tiktok", "hashtag", Metric.HASHTAG_VIEWS, float(poll * 1000), at,
                            Provenance.OBSERVED)  # fmt: skip
            records.append(PollRecord(target.name, at, Outcome.OK, [sample]))
    return records


async def _fill(store: Store) -> None:
    await store.prepare()
    batch: list[PollRecord] = []
    for poll in range(DAY_POLLS):
        batch += _records(poll)
        if len(batch) >= 500:
            await store.write(batch)
            batch = []
    await store.write(batch)


async def _timed(runs: int, step) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = await step()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


async def _bench(path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{path}", [*LIVE, *SHOP, *TAGS])
    began = time.perf_counter()
    await _fill(store)
    filled = time.perf_counter() - began

    async def rollup() -> dict:
        return as_dict(await load_rollup(store.engine, CAMPAIGN, Window()))

    async def rollup_with_series() -> dict:
        return as_dict(await load_rollup(store.engine, CAMPAIGN, Window(), series=True))

    async def read_all() -> int:
        async with store.engine.connect() as conn:
            result = await conn.stream(select(SampleRow.target_id, SampleRow.metric, SampleRow.value,
                                              SampleRow.observed_at, SampleRow.session_id))  # fmt: skip
            return sum([1 async for _ in result])

    rollup_time, doc = await _timed(5, rollup)
    series_time, _ = await _timed(5, rollup_with_series)
    scan_time, rows = await _timed(5, read_all)
    await store.close()
    print(f"campaign rollup over one day: {rows:,} samples stored (filled in {filled:.1f} s)")
    print(f"  rollup (scoreboard/report JSON)   {rollup_time * 1000:8.1f} ms  (median of 5)")
    print(f"  rollup with chart series (HTML)   {series_time * 1000:8.1f} ms  (median of 5)")
    print(f"  baseline: read every sample       {scan_time * 1000:8.1f} ms  (median of 5)")
    print(f"  sessions {doc['totals']['sessions']}, live views {doc['totals']['live_views']:,}")  # type: ignore[index]


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_bench(Path(directory) / "bench.db"))


if __name__ == "__main__":
    main()
