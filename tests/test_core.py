"""Core pieces on their own: status classification, idempotent storage, exposition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collector.adapters import registered_adapters
from collector.api import PollRecord, RawResponse, check_status
from collector.config import TargetConfig
from collector.http import retry_after_seconds
from collector.metrics import LiveState, SelfMetrics
from collector.migrate import upgrade
from collector.outcomes import Blocked, HttpError, LoginWall, Outcome, RateLimited, Transient
from collector.store import Store
from schemas.models import LiveSessionRow, SampleRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation
from tests.harness import metric_value

ADAPTERS = registered_adapters()

T0 = datetime(2025, 9, 9, 13, 0, tzinfo=UTC)


def target(name: str, interval: float = 0.1) -> TargetConfig:
    return TargetConfig(name, "tiktok", "live", interval, {"account": name}, "camp")


def raw(status: int, body: bytes = b"{}", retry_after: float | None = None) -> RawResponse:
    return RawResponse("http://x/y", status, "application/json", body, T0, retry_after)


@pytest.mark.parametrize(
    ("response", "error", "outcome"),
    [
        (raw(429, retry_after=7), RateLimited, Outcome.RATE_LIMITED),
        (raw(503, retry_after=3), RateLimited, Outcome.RATE_LIMITED),
        (raw(503), Transient, Outcome.HTTP_ERROR),
        (raw(500), Transient, Outcome.HTTP_ERROR),
        (raw(403), Blocked, Outcome.BLOCKED),
        (raw(404), HttpError, Outcome.HTTP_ERROR),
        (raw(200, b"  \n"), Blocked, Outcome.BLOCKED),
    ],
)
def test_unusable_responses_are_classified_before_any_parser_sees_them(
    response: RawResponse, error: type[Exception], outcome: Outcome
) -> None:
    with pytest.raises(error) as caught:
        check_status(response)
    assert caught.value.outcome is outcome
    if response.retry_after is not None:
        assert caught.value.retry_after == response.retry_after


def test_a_good_response_passes() -> None:
    check_status(raw(200, b'{"ok":1}'))


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = T0.timestamp()
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(format_datetime(T0 + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(format_datetime(T0 - timedelta(seconds=90), usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (
        f"sqlite+aiosqlite:///{tmp_path}/c.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    upgrade(url)
    return url


def record(at: datetime, viewers: float, room: str = "7400000000000000001") -> PollRecord:
    samples = [
        Sample("shop", "tiktok", "live", Metric.VIEWERS, viewers, at, Provenance.OBSERVED, room),
        Sample("shop", "tiktok", "live", Metric.VIEWS, viewers * 10, at, Provenance.OBSERVED, room),
    ]
    return PollRecord("shop", at, Outcome.OK, samples, SessionObservation(room, LiveStatus.LIVE, "Sale 9.9"))


async def test_a_batch_overlapping_stored_samples_or_itself_stores_and_counts_only_new_ones(
    database_url: str,
) -> None:
    """On PostgreSQL the samples go in by COPY, which a stored key makes fail: the batch then goes in
    by the insert that skips stored keys, in the same transaction, and counts only what it added."""
    store = Store(database_url)
    try:
        await store.sync_targets([target("shop")], T0)
        first, second, third = (record(T0 + timedelta(seconds=20 * i), 100 + i) for i in range(3))
        assert await store.write([first]) == 2
        assert await store.write([first, second]) == 2  # first is stored already
        assert await store.write([third, third]) == 2  # a batch repeating a record
        async with store.engine.connect() as conn:
            stored = (await conn.execute(select(SampleRow.observed_at, SampleRow.value))).all()
        assert sorted(stored) == sorted(
            (r.observed_at, s.value) for r in (first, second, third) for s in r.samples
        )
    finally:
        await store.close()


async def test_rewriting_a_batch_never_duplicates_and_sessions_keep_their_peak(database_url: str) -> None:
    store = Store(database_url)
    try:
        await store.sync_targets([target("shop")], T0)
        batch = [
            record(T0, 100),
            record(T0 + timedelta(seconds=20), 250),
            record(T0 + timedelta(seconds=40), 180),
        ]
        assert await store.write(batch) == 6
        # A retry after an ambiguous failure, from a fresh process with empty caches.
        second = Store(database_url)
        await second.sync_targets([target("shop")], T0)
        assert await second.write(batch) == 0
        await second.close()
        async with store.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(SampleRow)) == 6
            session = (await conn.execute(select(LiveSessionRow))).one()
        assert session.peak_viewers == 250
        assert session.session_key == "7400000000000000001"
        rows = [r async for r in store.export_rows(metrics=["viewers"])]
        assert [(r.observed_at, r.value, r.session_id) for r in rows] == [
            (T0, 100, "7400000000000000001"),
            (T0 + timedelta(seconds=20), 250, "7400000000000000001"),
            (T0 + timedelta(seconds=40), 180, "7400000000000000001"),
        ]
    finally:
        await store.close()


def test_exposition_names_follow_prometheus_conventions() -> None:
    state = LiveState([target("shop")])
    metrics = SelfMetrics(state)
    now = datetime.now(UTC).replace(microsecond=0)
    room = "7400000000000000001"
    state.update([Sample("shop", "tiktok", "live", Metric.VIEWERS, 1234, now, Provenance.OBSERVED, room)])
    state.update(
        [Sample("shop", "shopee", "live", Metric.REVENUE, 5e6, now, Provenance.ESTIMATED, room, "VND")]
    )
    text = metrics.exposition().decode()
    assert (
        'livestream_viewers{campaign="camp",kind="live",platform="tiktok",provenance="observed",target="shop"} 1234.0'
        in text
    )
    assert metric_value(text, "livestream_revenue", currency="VND", provenance="estimated") == 5e6
    observed = metric_value(text, "livestream_observed_timestamp_seconds", metric="viewers", target="shop")
    assert observed == now.timestamp()
    assert "# TYPE collector_polls_total counter" in text
    # Gauges never carry _total; label values never carry room ids or URLs.
    for line in text.splitlines():
        if line.startswith("livestream_"):
            assert "_total" not in line.split("{")[0]
            assert room not in line and "http" not in line


def test_values_nobody_confirmed_for_several_polls_are_withdrawn() -> None:
    state = LiveState([target("shop", interval=20)])
    metrics = SelfMetrics(state)
    now = datetime.now(UTC)
    fresh, old = now - timedelta(seconds=290), now - timedelta(seconds=310)
    state.update([Sample("shop", "tiktok", "live", Metric.VIEWERS, 10, fresh, Provenance.OBSERVED)])
    state.update([Sample("shop", "tiktok", "live", Metric.LIKES, 20, old, Provenance.OBSERVED)])
    text = metrics.exposition().decode()
    assert metric_value(text, "livestream_viewers", target="shop") == 10
    assert metric_value(text, "livestream_likes", target="shop") is None


@pytest.mark.parametrize(
    ("platform", "body", "url", "error"),
    [
        (
            "tiktok",
            b"<html><div id='cs'></div><script>_wafchallengeid</script></html>",
            "http://x/webcast/room/info/",
            Blocked,
        ),
        ("facebook", b"<title>Security Check Required</title>", "http://x/watch/", Blocked),
        # The security interstitial carries the login form too (real capture): a block first.
        ("facebook", b'<form id="login_form"></form>blocked by our security systems', "http://x/", Blocked),
        # The log-in page itself, by its title, however the tag is written; a login form beside content
        # is not a login wall (every signed-out page has one: shared/real-captures/facebook).
        ("facebook", b"<title>Log in to Facebook</title>", "http://x/videos/1", LoginWall),
        (
            "facebook",
            b'<TITLE id="pageTitle">Facebook \xe2\x80\x93 log in or sign up</TITLE>',
            "http://x/videos/1",
            LoginWall,
        ),
        (
            "facebook",
            "<title>Facebook - Đăng nhập hoặc đăng ký</title>".encode(),
            "http://x/videos/1",
            LoginWall,
        ),
        ("shopee", b"<html>sign in</html>", "http://x/login/?next=/videos/1", LoginWall),
        ("tiktok", b"<html>verify</html>", "http://x/checkpoint/1501092823525282/", LoginWall),
    ],
)
def test_ban_and_login_pages_never_reach_a_parser(
    platform: str, body: bytes, url: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        check_status(RawResponse(url, 200, "text/html", body, T0), ADAPTERS[platform].markers)
    assert caught.value.url == url and caught.value.status == 200  # type: ignore[attr-defined]


def test_markers_are_the_platforms_own() -> None:
    """Facebook's log-in page on a TikTok URL is not TikTok's login wall: each adapter owns its markers."""
    page = RawResponse("http://x/@shop/live", 200, "text/html", b"<title>Log in to Facebook</title>", T0)
    check_status(page, ADAPTERS["tiktok"].markers)
    with pytest.raises(LoginWall):
        check_status(page, ADAPTERS["facebook"].markers)
    # A signed-out content page has the login form and its query beside the content: no login wall.
    signed_out = b'<title>Live | Facebook</title><form id="login_form"></form>"adp_useCometLogInFormQuery"'
    check_status(RawResponse("http://x/v", 200, "text/html", signed_out, T0), ADAPTERS["facebook"].markers)


async def test_an_adapter_bug_is_its_own_outcome_with_its_body_kept() -> None:
    """A crash in adapter code is `adapter_error`, never a `parse_failure` that pages the wrong person."""
    from collector.api import NO_MARKERS, KindSpec
    from collector.config import build_config
    from collector.http import HttpClient
    from collector.poller import Poller

    config = build_config(
        {"targets": [{"name": "shop", "platform": "tiktok", "kind": "live", "account": "shop_vn"}]},
        adapters=ADAPTERS,
        source="t",
        env={},
    )

    async def crashing_poll(ctx):  # type: ignore[no-untyped-def]
        ctx.http.responses.append(RawResponse("http://x/page", 200, "text/html", b"<html>new</html>", T0))
        raise KeyError("userCount")

    class CrashingAdapter:
        name, kinds, default_base_urls, markers = "tiktok", {"live": KindSpec(crashing_poll)}, {}, NO_MARKERS

    records: list = []
    live = LiveState(config.targets)
    metrics = SelfMetrics(live)
    async with HttpClient(config.http) as http:
        poller = Poller(config, http, live, metrics, records.append)
        poller.adapters = {"tiktok": CrashingAdapter()}  # type: ignore[dict-item]
        record = await poller.poll(config.targets[0])
    assert record.outcome is Outcome.ADAPTER_ERROR and records == [record]
    assert record.detail == "KeyError: 'userCount'"
    assert record.snapshots == [
        (RawResponse("http://x/page", 200, "text/html", b"<html>new</html>", T0), None)
    ]
    polls = metrics.registry.get_sample_value(
        "collector_polls_total", {"platform": "tiktok", "kind": "live", "outcome": "adapter_error"}
    )
    assert polls == 1
    assert metrics.registry.get_sample_value("collector_parse_failures_total", {"platform": "tiktok", "kind": "live", "reason": "adapter_error:KeyError"}) is None  # fmt: skip
    # The platform's circuit breaker is not told: our bug is not the platform's trouble.
    assert poller.breaker._circuit("tiktok").consecutive == 0


def test_every_outcome_has_a_reaction() -> None:
    from collector.reactions import REACTIONS

    assert set(REACTIONS) == set(Outcome)
    assert [o for o, r in REACTIONS.items() if r.healthy] == [Outcome.OK, Outcome.NOT_LIVE]


def test_an_ended_sessions_counters_leave_the_exposition_at_once() -> None:
    state = LiveState([target("shop", interval=20)])
    metrics = SelfMetrics(state)
    live, ended = datetime.now(UTC) - timedelta(seconds=30), datetime.now(UTC)

    def sample(metric: Metric, value: float, at: datetime) -> Sample:
        return Sample("shop", "tiktok", "live", metric, value, at, Provenance.OBSERVED, "room-1")

    state.update([sample(Metric.VIEWERS, 900, live), sample(Metric.LIVE_STATUS, 2, live)])
    state.update([sample(Metric.FOLLOWERS, 10, live), sample(Metric.LIKES, 50, live)])
    state.update([sample(Metric.LIVE_STATUS, 4, ended), sample(Metric.LIKES, 55, ended)])
    text = metrics.exposition().decode()
    assert metric_value(text, "livestream_viewers", target="shop") is None
    assert metric_value(text, "livestream_live_status", target="shop") == 4
    assert metric_value(text, "livestream_followers", target="shop") == 10
    assert metric_value(text, "livestream_likes", target="shop") == 55  # the ended page still says so
