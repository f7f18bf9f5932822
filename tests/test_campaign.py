"""Campaign rollups on a real database: one broadcast counted once whatever reported on it, provenance
kept apart, peaks over minute buckets, hashtag growth, the window."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert

from collector.api import PollRecord, TargetConfig
from collector.board import CampaignDocuments
from collector.campaign import Broadcast, ReportError, Window, load_rollup
from collector.campaign_totals import as_dict, concurrent_viewers
from collector.config import build_config
from collector.outcomes import Outcome
from collector.report_format import Labels
from collector.report_render import render_csv, render_text
from collector.store import Store, create_engine
from schemas.models import GapRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)
CAMPAIGN = "mega"
TARGETS = [
    TargetConfig("sp-live", "shopee", "live", 10.0, {"session_id": "111"}, CAMPAIGN),
    TargetConfig("sp-shop", "shopee", "shop_dashboard", 10.0, {"session_id": "111"}, CAMPAIGN),
    TargetConfig("tt-a", "tiktok", "live", 10.0, {"account": "a"}, CAMPAIGN),
    TargetConfig("tt-b", "tiktok", "live", 10.0, {"account": "b"}, CAMPAIGN),
    TargetConfig("tag-x", "tiktok", "hashtag", 10.0, {"tag": "#LaiChau"}, CAMPAIGN),
    TargetConfig("tag-x-again", "tiktok", "hashtag", 10.0, {"tag": "laichau"}, CAMPAIGN),
    TargetConfig("other", "tiktok", "live", 10.0, {"account": "c"}, "another-campaign"),
]
OBS, REP, EST = Provenance.OBSERVED, Provenance.REPORTED, Provenance.ESTIMATED


def poll(target: str, minutes: float, session: str | None, values: list[tuple[Metric, float, Provenance]],
         status: LiveStatus = LiveStatus.LIVE) -> PollRecord:  # fmt: skip
    config = next(t for t in TARGETS if t.name == target)
    at = T0 + timedelta(minutes=minutes)
    samples = [
        Sample(target, config.platform, config.kind, metric, value, at, provenance, session,
               "VND" if metric is Metric.REVENUE else None)
        for metric, value, provenance in values
    ]  # fmt: skip
    observation = SessionObservation(session, status, f"title {session}") if session else None
    return PollRecord(target, at, Outcome.OK, samples, observation)


def records() -> list[PollRecord]:
    V, VIEWS, LIKES = Metric.VIEWERS, Metric.VIEWS, Metric.LIKES
    ORDERS, ITEMS, REV = Metric.ORDERS, Metric.ITEMS_SOLD, Metric.REVENUE
    return [
        # Shopee session 111 seen through the public page (observed, estimated) and the shop's dashboard
        # (reported): one broadcast.
        poll(
            "sp-live",
            0,
            "111",
            [(V, 100, OBS), (VIEWS, 500, OBS), (LIKES, 40, OBS), (ITEMS, 0, EST), (REV, 0, EST)],
        ),
        poll(
            "sp-shop", 0.1, "111", [(V, 110, REP), (VIEWS, 700, REP), (ORDERS, 3, REP), (REV, 600_000, REP)]
        ),
        poll(
            "sp-live",
            2,
            "111",
            [(V, 300, OBS), (VIEWS, 900, OBS), (LIKES, 90, OBS), (ITEMS, 5, EST), (REV, 900_000, EST)],
        ),
        poll(
            "sp-shop",
            2.1,
            "111",
            [
                (V, 320, REP),
                (VIEWS, 1_300, REP),
                (ORDERS, 8, REP),
                (ITEMS, 9, REP),
                (REV, 1_500_000, REP),
                (Metric.PEAK_VIEWERS, 350, REP),
            ],
        ),
        # TikTok: two broadcasts at once (peaks add up within a minute), then a's second room.
        poll("tt-a", 0, "room-a1", [(V, 1_000, OBS), (VIEWS, 5_000, OBS), (LIKES, 10, OBS)]),
        poll("tt-b", 0.5, "room-b1", [(V, 2_000, OBS), (VIEWS, 8_000, OBS)]),
        poll("tt-a", 1, "room-a1", [(V, 1_500, OBS), (VIEWS, 6_000, OBS)], LiveStatus.ENDED),
        poll("tt-b", 1.5, "room-b1", [(V, 400, OBS), (VIEWS, 9_000, OBS)]),
        poll("tt-a", 3, "room-a2", [(V, 700, OBS), (VIEWS, 1_000, OBS)]),
        # Announced but not started: not a broadcast yet.
        poll("tt-b", 3, "room-b2", [(Metric.LIVE_STATUS, 1, OBS), (VIEWS, 0, OBS)], LiveStatus.SCHEDULED),
        # One tag watched by two targets (case and '#' differ): counted once, from the latest.
        poll("tag-x", 0, None, [(Metric.HASHTAG_VIEWS, 1_000_000, OBS), (Metric.HASHTAG_POSTS, 10, OBS)]),
        poll("tag-x-again", 0.5, None, [(Metric.HASHTAG_VIEWS, 1_100_000, OBS)]),
        poll("tag-x", 3, None, [(Metric.HASHTAG_VIEWS, 4_000_000, OBS), (Metric.HASHTAG_POSTS, 40, OBS)]),
        # Another campaign's broadcast is not ours.
        poll("other", 1, "room-c", [(V, 9_999, OBS), (VIEWS, 99_999, OBS)]),
    ]


GAP = {
    "platform": "tiktok",
    "target": "tt-a",
    "start": "2025-09-09T12:01:30Z",
    "end": "2025-09-09T12:02:30Z",
    "status": "open",
    "detail": "3 polls missed",
}


def report(database_url: str, window: Window | None = None, campaign: str = CAMPAIGN) -> dict:
    async def go() -> dict:
        store = Store(database_url, TARGETS)
        try:
            await store.prepare()
            await store.write(records())
            gap = {"started_at": T0 + timedelta(minutes=1.5), "ended_at": T0 + timedelta(minutes=2.5)}
            async with store.engine.begin() as conn:
                await conn.execute(
                    insert(GapRow),
                    [
                        {
                            "target_id": store.target_ids[name],
                            **gap,
                            "status": "open",
                            "detail": "3 polls missed",
                        }
                        for name in ("tt-a", "other")
                    ],
                )
            return as_dict(
                await load_rollup(store.engine, campaign, window or Window(), now=T0 + timedelta(minutes=4))
            )
        finally:
            await store.close()

    return asyncio.run(go())


def test_a_broadcast_seen_by_two_targets_counts_once(database_url: str) -> None:
    doc = report(database_url)
    totals = doc["totals"]
    assert totals["sessions"] == 4  # Shopee 111, TikTok room-a1, room-b1, room-a2
    shopee = next(s for s in doc["sessions"] if s["session_id"] == "111")
    assert shopee["targets"] == ["sp-live", "sp-shop"]
    # Views and likes from the most authoritative source that has them; sales kept per provenance.
    assert shopee["views"] == 1_300 and shopee["provenance"]["views"] == "reported"
    assert shopee["likes"] == 90 and shopee["provenance"]["likes"] == "observed"
    assert shopee["peak_viewers"] == 350 and shopee["provenance"]["peak_viewers"] == "reported"
    assert shopee["orders"] == {"reported": 8, "estimated": None}
    assert shopee["revenue"] == {"reported": 1_500_000, "estimated": 900_000, "headline": 1_500_000,
                                 "currency": "VND"}  # fmt: skip
    assert totals["live_views"] == 1_300 + 6_000 + 9_000 + 1_000
    assert totals["likes"] == 90 + 10
    assert totals["orders"] == {"reported": 8, "estimated": 0}
    assert totals["items_sold"] == {"reported": 9, "estimated": 5}
    revenue = totals["revenue"]
    assert (revenue["reported"], revenue["estimated"], revenue["headline"]) == (1_500_000, 900_000, 1_500_000)
    assert revenue["headline_sessions"] == {"reported": 1, "estimated": 0}
    # Minute 0: Shopee 110 (reported) + a 1,000 + b 2,000; minute 1: a 1,500 + b 400; minute 2: 320.
    assert totals["peak_concurrent_viewers"] == 3_110
    assert doc["by_platform"]["shopee"]["live_views"] == 1_300
    assert doc["by_platform"]["tiktok"]["sessions"] == 3
    assert doc["hashtags"] == [
        {"platform": "tiktok", "target": "tag-x", "tag": "LaiChau", "views_start": 1_000_000,
         "views_end": 4_000_000, "views_growth": 3_000_000, "posts_start": 10, "posts_end": 40},
    ]  # fmt: skip
    assert (totals["hashtag_views"], totals["hashtag_posts"]) == (4_000_000, 40)
    # room-a1 ended; room-a2, room-b1 and the Shopee session were last seen live within minutes.
    assert sorted(doc["live_now"]) == ["111", "room-a2", "room-b1"]
    # Gaps recorded for the campaign's targets are listed; another campaign's are not.
    assert doc["gaps"] == [GAP]


def test_the_window_narrows_every_number(database_url: str) -> None:
    window = Window(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2.05))
    doc = report(database_url, window)
    totals = doc["totals"]
    # Only a1's ended poll, b1's second poll and the Shopee public poll at minute 2 fall inside.
    assert totals["sessions"] == 3
    assert totals["live_views"] == 6_000 + 9_000 + 900
    assert totals["revenue"]["reported"] == 0 and totals["revenue"]["headline"] == 900_000
    assert doc["window"] == {"start": "2025-09-09T12:01:00Z", "end": "2025-09-09T12:02:03Z"}
    assert doc["hashtags"] == []
    assert doc["gaps"] == [GAP]  # it overlaps the window


def test_an_unknown_campaign_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no targets of campaign 'nope' .*known: another-campaign, mega"):
        report(f"sqlite+aiosqlite:///{tmp_path}/c.db", campaign="nope")


def test_numbers_read_as_organisers_write_them() -> None:
    vi, en = Labels("vi"), Labels("en")
    assert (vi.compact(1_234_567), vi.money(300_000_000, "VND"), vi.number(798_532)) == (
        "1,2 Tr",
        "300.000.000 ₫",
        "798.532",
    )
    assert (en.compact(1_234_567), en.money(300_000_000, "VND"), en.number(798_532)) == (
        "1.2M",
        "300,000,000 VND",
        "798,532",
    )
    assert (vi.compact(2_000_000), vi.compact(65_548_497), vi.compact(1_500_000_000), vi.compact(950)) == (
        "2 Tr",
        "65,5 Tr",
        "1,5 Tỷ",
        "950",
    )


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_text_report_fits_80_columns_and_csv_has_a_row_per_session(tmp_path: Path, lang: str) -> None:
    doc = report(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    text = render_text(doc, Labels(lang))
    # Every line fits as written: none needed the cut-off that guards the width.
    assert max(len(line) for line in text.splitlines()) <= 80
    assert not [line for line in text.splitlines() if line.endswith("…")]
    assert ("17.300" if lang == "vi" else "17,300") in text  # live views
    rows = list(csv.DictReader(io.StringIO(render_csv(doc))))
    assert [r["session_id"] for r in rows] == [s["session_id"] for s in doc["sessions"]] + [""]
    shopee = next(r for r in rows if r["session_id"] == "111")
    assert (shopee["revenue_reported"], shopee["revenue_estimated"], shopee["targets"]) == (
        "1500000",
        "900000",
        "sp-live sp-shop",
    )
    assert rows[-1]["platform"] == "total" and rows[-1]["views"] == "17300"


def test_the_board_cache_reads_the_database_once_per_interval(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    report(url)  # fills the database
    config = build_config({"collector": {"database_url": url}}, source="test", adapters={}, env={})

    async def go() -> tuple[int, int, int]:
        engine = create_engine(url)
        statements = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        now = [0.0]
        documents = CampaignDocuments(engine, config, ttl=3.0, clock=lambda: now[0])
        try:
            first = await asyncio.gather(*(documents.document(CAMPAIGN) for _ in range(20)))
            assert all(doc == first[0] for doc in first) and first[0]["totals"]["sessions"] == 4
            cold = len(statements)
            now[0] = 2.9
            await documents.document(CAMPAIGN)
            warm = len(statements) - cold
            now[0] = 3.0
            await documents.document(CAMPAIGN)
            assert await documents.document("not-a-campaign") is None
            return cold, warm, len(statements) - cold - warm
        finally:
            await engine.dispose()

    cold, warm, expired = asyncio.run(go())
    # Twenty screens at once cost one rollup; within the interval nothing; after it, one more.
    assert cold > 0 and warm == 0 and expired == cold


def test_a_broadcast_polled_less_than_once_a_minute_still_adds_to_each_minute() -> None:
    def broadcast(key: str, readings: dict[int, float], ended_minute: int | None = None) -> Broadcast:
        b = Broadcast("tiktok", key, minutes={"viewers": {"observed": readings}})
        if ended_minute is not None:
            b.ended_at = datetime.fromtimestamp(ended_minute * 60, UTC)
        return b

    every_other_minute = broadcast("a", {0: 100, 2: 100, 10: 100})
    every_minute = broadcast("b", {1: 50, 2: 60, 3: 70}, ended_minute=3)
    per_minute = concurrent_viewers([every_other_minute, every_minute])
    # a's readings hold for two empty minutes at most (4, 5 after minute 2; 11, 12 after its last one);
    # b's last reading does not outlive its end.
    assert per_minute == {0: 100, 1: 150, 2: 160, 3: 170, 4: 100, 10: 100, 11: 100, 12: 100}
