"""Store on change: what the filter keeps, and that reports, charts and gap detection read the same
numbers from the fewer rows as from every row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from collector.adapters import kind_spec, registered_adapters
from collector.api import PollRecord, TargetConfig
from collector.backfill import Backfill
from collector.campaign import Window, load_rollup
from collector.campaign_totals import as_dict
from collector.change_filter import ChangeFilter
from collector.config import build_config
from collector.jobs import JobBook
from collector.outcomes import Outcome
from collector.store import Store
from schemas.models import SampleRow
from schemas.types import Metric, Provenance, Sample
from tests.event_polls import CAMPAIGN, START, event_polls, event_targets

T0 = datetime(2026, 12, 12, 20, 0, tzinfo=UTC)  # on a whole minute: a keep-alive period starts here


def poll(
    seconds: float, *values: tuple[Metric, float], session: str | None = "room-1", **extra: Any
) -> PollRecord:
    at = T0 + timedelta(seconds=seconds)
    samples = [
        Sample("tt", "tiktok", "live", metric, value, at, extra.get("provenance", Provenance.OBSERVED), session,
               extra.get("currency"))
        for metric, value in values
    ]  # fmt: skip
    return PollRecord("tt", at, Outcome.OK, samples)


def kept(changes: ChangeFilter, record: PollRecord) -> list[tuple[str, float]]:
    return [(s.metric.value, s.value) for s in changes.admit(record).samples]


V, L = Metric.VIEWERS, Metric.LIKES


def test_an_unchanged_value_waits_for_the_next_keep_alive_period_and_a_change_is_stored_at_once() -> None:
    changes = ChangeFilter(60.0, lambda _r: None)
    assert kept(changes, poll(0, (V, 10), (L, 5))) == [("viewers", 10), ("likes", 5)]
    assert kept(changes, poll(15, (V, 11), (L, 5))) == [("viewers", 11)]  # likes unchanged: dropped
    assert kept(changes, poll(30, (V, 12), (L, 5))) == [("viewers", 12)]
    assert kept(changes, poll(45, (V, 12), (L, 6))) == [("likes", 6)]
    # 20:01:00 starts the next minute: both are stored again though neither changed.
    assert kept(changes, poll(60, (V, 12), (L, 6))) == [("viewers", 12), ("likes", 6)]
    assert kept(changes, poll(75, (V, 13), (L, 6))) == [("viewers", 13)]


def test_a_poll_stores_nothing_only_when_the_previous_poll_of_its_target_stored_something() -> None:
    changes = ChangeFilter(300.0, lambda _r: None)
    assert kept(changes, poll(0, (V, 10), (L, 5))) == [("viewers", 10), ("likes", 5)]
    assert kept(changes, poll(15, (V, 10), (L, 5))) == []
    # Three intervals without a sample would be a gap to `backfill gaps`: the quiet poll keeps one.
    assert kept(changes, poll(30, (V, 10), (L, 5))) == [("viewers", 10)]
    assert kept(changes, poll(45, (V, 10), (L, 5))) == []
    # A failed poll stores nothing, so the next poll stores even though nothing changed.
    assert changes.admit(PollRecord("tt", T0 + timedelta(seconds=60), Outcome.TIMEOUT)).samples == []
    assert kept(changes, poll(75, (V, 10), (L, 5))) == [("viewers", 10)]


def test_a_new_broadcast_provenance_or_currency_is_a_change() -> None:
    changes = ChangeFilter(3600.0, lambda _r: None)
    kept(changes, poll(0, (V, 10), (L, 5)))
    assert kept(changes, poll(15, (V, 10), (L, 5), session="room-2")) == [("viewers", 10), ("likes", 5)]
    assert kept(changes, poll(30, (V, 10), (L, 5), session="room-2", provenance=Provenance.REPORTED)) == [
        ("viewers", 10),
        ("likes", 5),
    ]
    changes.admit(poll(45, (Metric.REVENUE, 100), session="room-2", currency="VND"))
    assert kept(changes, poll(60, (Metric.REVENUE, 100), session="room-2", currency="USD")) == [
        ("revenue", 100)
    ]


def test_the_record_handed_on_is_a_copy_and_the_setting_off_hands_on_every_record_itself() -> None:
    seen: list[PollRecord] = []
    left_out: list[int] = []
    changes = ChangeFilter(60.0, seen.append, left_out.append)
    first, second = poll(0, (V, 10), (L, 5)), poll(15, (V, 10), (L, 6))
    changes(first)
    changes(second)
    assert left_out == [1]  # counted for collector_samples_unchanged_total
    # The caller's record (which the live /metrics state and `collector once` read) keeps every sample.
    assert len(second.samples) == 2 and seen[0] is first
    assert [s.metric for s in seen[1].samples] == [L]
    off = ChangeFilter(0.0, seen.append)
    assert all(off.admit(r) is r for r in (first, second, poll(30, (V, 10), (L, 6))))


def test_a_forgotten_target_starts_its_series_afresh() -> None:
    # Another replica (or a reload) had the target meanwhile: what it stored is unknown here.
    changes = ChangeFilter(60.0, lambda _r: None)
    kept(changes, poll(0, (V, 10), (L, 5)))
    changes.forget(["tt"])
    assert kept(changes, poll(15, (V, 10), (L, 5))) == [("viewers", 10), ("likes", 5)]


async def _store_event(url: str, records: list[PollRecord], keep: float) -> dict[str, Any]:
    """Write the records as the service would (through the filter when `keep`), then read back what
    the readers of samples make of them: the report, its charts' minutes, the gaps, the row count."""
    targets = event_targets()
    store = Store(url, targets)
    await store.prepare()
    try:
        batch: list[PollRecord] = []
        sink = ChangeFilter(keep, batch.append)
        for record in records:
            sink(record)
        for i in range(0, len(batch), 500):
            await store.write(batch[i : i + 500])
        end = records[-1].observed_at + timedelta(seconds=1)
        documents = {}
        # Windows on whole minutes: the whole run, and a stretch that starts and ends mid-broadcast.
        for window in (Window(), Window(START + timedelta(minutes=47), START + timedelta(minutes=133))):
            rollup = await load_rollup(store.engine, CAMPAIGN, window, now=end, series=True)
            documents[(window.start, window.end)] = {
                "report": as_dict(rollup),
                "minutes": {b.key: b.minutes for b in rollup.broadcasts},
                "hashtag_minutes": {t.target: t.minutes for t in rollup.hashtags},
            }
        config = build_config(
            {"targets": [{"name": t.name, "platform": t.platform, "kind": t.kind, "interval": "15s",
                          "campaign": CAMPAIGN, **t.params} for t in targets]},
            adapters=registered_adapters(), source="t", env={},
        )  # fmt: skip
        backfill = Backfill(config, store, JobBook(store), None, kind_spec)
        gaps = {t.name: await backfill.find_gaps(t, START, None) for t in config.targets}
        async with store.engine.connect() as conn:
            rows = await conn.scalar(select(func.count()).select_from(SampleRow))
        return {"documents": documents, "gaps": gaps, "rows": rows}
    finally:
        await store.close()


def test_reports_charts_and_gaps_are_the_same_with_the_filter_on_and_off(database_url: str, tmp_path) -> None:
    # The first broadcast (scenario 00:30-02:30) with the hour before it and the half hour after.
    records = list(event_polls(3 * 3600))
    every = asyncio.run(_store_event(database_url, records, 0.0))
    if database_url.startswith("sqlite"):
        database_url = f"sqlite+aiosqlite:///{tmp_path}/on_change.db"
    else:  # one PostgreSQL database per test: emptied for the second run
        asyncio.run(_empty(database_url))
    on_change = asyncio.run(_store_event(database_url, records, 60.0))

    assert on_change["documents"] == every["documents"]
    whole = next(iter(every["documents"].values()))["report"]
    assert whole["totals"]["sessions"] == 1 and whole["totals"]["live_views"] > 0
    assert whole["hashtags"] and all(t["views_growth"] for t in whole["hashtags"])
    assert on_change["gaps"] == every["gaps"] == {t.name: [] for t in event_targets()}
    assert on_change["rows"] < 0.75 * every["rows"]


async def _empty(url: str) -> None:
    store = Store(url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(SampleRow.__table__.delete())
            for table in ("live_session_keys", "live_sessions", "targets"):
                await conn.exec_driver_sql(f"DELETE FROM {table}")
    finally:
        await store.close()


def test_reprocessing_a_filtered_poll_writes_back_what_it_left_out_and_the_series_reads_the_same(
    tmp_path,
) -> None:
    async def go() -> tuple[dict[str, int], list[tuple[str, float, float]]]:
        store = Store(
            f"sqlite+aiosqlite:///{tmp_path}/t.db", [TargetConfig("tt", "tiktok", "live", 15.0, {}, None)]
        )
        try:
            polls = [poll(0, (V, 10), (L, 5)), poll(15, (V, 11), (L, 5))]
            changes = ChangeFilter(60.0, lambda _r: None)
            await store.write([changes.admit(p) for p in polls])  # the second poll's likes left out
            # `backfill reprocess` re-derives the whole second poll from its kept body.
            counts = await store.replace_samples([polls[1]])
            rows = [
                (r.metric, (r.observed_at - T0).total_seconds(), r.value) async for r in store.export_rows()
            ]
            return counts, rows
        finally:
            await store.close()

    counts, rows = asyncio.run(go())
    assert counts == {"added": 1, "changed": 0, "unchanged": 1}
    # Likes read 5 from 0 s on before and after: the row written back repeats the step, it adds no value.
    assert sorted(rows) == [("likes", 0, 5), ("likes", 15, 5), ("viewers", 0, 10), ("viewers", 15, 11)]
