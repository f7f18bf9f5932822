"""Tests for the Facebook parse functions (fixtures, shapes: shared/platforms.md 4.1, 6) and the adapter's
`poll` end to end against the simulator over real HTTP.

Each fixture has one exact expected outcome: readings, status and session, or the exact PollError
subclass (and ParseFailure reason). Property tests check that no input escapes as anything but a
PollError.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api import PollResult
from collector.config import HttpSettings, TargetConfig
from collector.http import HttpClient, HttpFetcher
from collector.outcomes import Blocked, LoginWall, NotFound, Outcome, ParseFailure, PollError
from collector.secrets import Secret
from schemas.types import LiveStatus, Metric, ParseResult, Provenance, SessionObservation
from scrapers.facebook import (
    LiveVideoState,
    adapter,
    find_live_video,
    parse_video_page,
    video_id_from,
    video_status,
)
from simulator import facebook as fb_sim
from simulator.app import PLATFORMS, build_app
from simulator.clock import SimClock
from simulator.scenario import demo
from tests.polling import poll_kind

FIXTURES = Path(__file__).parent / "fixtures" / "facebook"
VID = "1234567890123456"
TITLE = "Chè Shan Tuyết cổ thụ - live"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Raises:
    """An expected failure: the exact PollError subclass and, for ParseFailure, its reason."""

    def __init__(self, cls: type[PollError], reason: str | None = None) -> None:
        self.cls, self.reason = cls, reason

    def __repr__(self) -> str:
        return f"Raises({self.cls.__name__}, {self.reason!r})"

    def check(self, call: Callable[[], object]) -> None:
        with pytest.raises(PollError) as info:
            call()
        assert type(info.value) is self.cls, f"expected {self.cls.__name__}, got {info.value!r}"
        if self.reason is not None:
            assert isinstance(info.value, ParseFailure) and info.value.reason == self.reason


def values(result: ParseResult) -> dict[str, float]:
    metrics = [r.metric for r in result.readings]
    assert len(metrics) == len(set(metrics)), "a metric was read twice"
    assert all(r.provenance is Provenance.OBSERVED for r in result.readings)
    return {r.metric.value: r.value for r in result.readings}


# --- video pages ------------------------------------------------------------------------------

VIDEO_CASES = [
    ("video_live.html", dict(viewers=812, views=15000, likes=2300, comments=410, shares=37, live_status=2),
     LiveStatus.LIVE),
    ("video_paused.html", dict(viewers=305, views=15950, likes=2410, comments=410, shares=37, live_status=3),
     LiveStatus.PAUSED),
    # LIVE_STOPPED reads as still live (platforms.md 4.1).
    ("video_live_stopped.html", dict(viewers=97, views=16420, likes=2300, comments=433, shares=37, live_status=2),
     LiveStatus.LIVE),
    ("video_ended.html", dict(views=16880, likes=2512, comments=440, shares=41, live_status=4),
     LiveStatus.ENDED),
    # Only display strings: "2,3K" reactions, "1.4K" shares, comments via comment_rendering_instance, no views.
    ("video_i18n_counts.html", dict(viewers=1530, likes=2300, comments=96, shares=1400, live_status=2),
     LiveStatus.LIVE),
    # viewCount "1,234" and likers.count.
    ("video_view_count_text.html", dict(viewers=45, views=1234, likes=88, comments=12, shares=3, live_status=2),
     LiveStatus.LIVE),
]  # fmt: skip


@pytest.mark.parametrize(("name", "expected", "status"), VIDEO_CASES, ids=[c[0] for c in VIDEO_CASES])
def test_video_page_fixtures(name: str, expected: dict[str, float], status: LiveStatus) -> None:
    result = parse_video_page(fixture(name))
    assert values(result) == expected
    assert result.session == SessionObservation(VID, status, TITLE)
    # Knowing the id gives the same answer.
    assert parse_video_page(fixture(name), video_id=VID) == result


def test_old_json_ld_page_gives_views_and_likes() -> None:
    result = parse_video_page(fixture("old_jsonld.html"))
    assert values(result) == {"views": 98765, "likes": 1200, "live_status": 0}
    assert result.session == SessionObservation(
        "1122334455667788", LiveStatus.UNKNOWN, "Chè Shan Tuyết - phiên chợ cuối tuần"
    )


ERROR_CASES = [
    ("login_wall.html", "", Raises(LoginWall)),
    ("security_check.html", "", Raises(Blocked)),
    # A redirect to /checkpoint is a login wall whatever the page says [U].
    ("security_check.html", "https://www.facebook.com/checkpoint/?next=x", Raises(LoginWall)),
    ("temporarily_blocked.html", "", Raises(Blocked)),
    ("no_video_node.html", "", Raises(ParseFailure, "no_video_node")),
    ("page_profile_not_live.html", "", Raises(ParseFailure, "no_video_node")),
    (
        "video_live.html",
        "https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com",
        Raises(LoginWall),
    ),
    ("video_live.html", "https://www.facebook.com/login.php?next=x", Raises(LoginWall)),
]


@pytest.mark.parametrize(
    ("name", "url", "expected"), ERROR_CASES, ids=[f"{c[0]}-{c[1][:30]}" for c in ERROR_CASES]
)
def test_unusable_pages(name: str, url: str, expected: Raises) -> None:
    body = fixture(name)
    expected.check(lambda: parse_video_page(body, final_url=url))


def test_fixtures_are_realistic_pages() -> None:
    for path in FIXTURES.iterdir():
        body = path.read_bytes()
        assert body.lower().startswith(b"<!doctype html>"), path.name
        assert len(body) > 4096, path.name
    for name, *_ in VIDEO_CASES:
        body = fixture(name)
        assert body.count(b"data-sjs>") == 4, name
        assert body.count(b"liveViewerCount") == 1, name  # only one block holds the video
        assert b"ScheduledServerJS" in body and b"RelayPrefetchedStreamCache" in body
    assert b"i18n_reaction_count" not in fixture("login_wall.html")


def _sjs(payload: Any) -> bytes:
    return b'<script type="application/json" data-sjs>' + json.dumps(payload).encode() + b"</script>"


NODE = {"id": VID, "broadcast_status": "LIVE", "liveViewerCount": 5}

INLINE = [
    # A logged-out shell: no data-sjs, no login markers.
    (b"<!DOCTYPE html><html><body><div id='root'></div></body></html>", Raises(ParseFailure, "no_relay_json")),
    (b'<script type="application/json" data-sjs>{"require":', Raises(ParseFailure, "bad_json")),
    (b'<script type="application/json" data-sjs>{"a":1}', Raises(ParseFailure, "bad_json")),
    (b"<h2>This content isn't available right now</h2>" + _sjs({"require": []}), Raises(NotFound)),
    (_sjs({**NODE, "liveViewerCount": {"n": 1}}), Raises(ParseFailure, "bad_number")),
    (_sjs({**NODE, "liveViewerCount": "lots"}), Raises(ParseFailure, "bad_number")),
    (_sjs({**NODE, "liveViewerCount": 12.5}), Raises(ParseFailure, "bad_number")),
    (_sjs({**NODE, "liveViewerCount": True}), Raises(ParseFailure, "bad_number")),
    # A junk block next to a good one is skipped.
    (b'<script data-sjs type="application/json">{oops</script>' + _sjs(NODE), {"viewers": 5, "live_status": 2}),
    # The node split over two blocks: same id merged; feedback from elsewhere in the node's block.
    (
        _sjs([{"id": VID, "live_status": "LIVE"}, {"feedback": {"i18n_reaction_count": "1,2 N"}}])
        + _sjs({"x": {"videoId": VID, "liveViewerCount": 7, "video_view_count": "12.345"}}),
        {"viewers": 7, "views": 12345, "likes": 1200, "live_status": 2},
    ),
    # Another video's node (a different id) is never merged in.
    (
        _sjs([NODE, {"id": "999", "video_view_count": 1, "feedback": {"total_comment_count": 1}}]),
        {"viewers": 5, "live_status": 2},
    ),
    # yt-dlp's unquoted `viewCount:"1,234"` outside the JSON.
    (_sjs(NODE) + b'<script>__d("x",{viewCount:"9,876"})</script>', {"viewers": 5, "views": 9876, "live_status": 2}),
    # Vietnamese compact text.
    (_sjs({**NODE, "feedback": {"share_count_reduced": "1,2 Tr"}}), {"viewers": 5, "shares": 1200000, "live_status": 2}),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), INLINE)
def test_inline_variants(body: bytes, expected: Raises | dict[str, float]) -> None:
    if isinstance(expected, Raises):
        expected.check(lambda: parse_video_page(body))
    else:
        assert values(parse_video_page(body)) == expected


def test_known_video_id_skips_other_videos_nodes() -> None:
    other = {"id": "777", "broadcast_status": "VOD_READY", "video_view_count": 3}
    body = _sjs([other, {**NODE, "video_view_count": 40}])
    assert parse_video_page(body).session == SessionObservation("777", LiveStatus.ENDED)
    result = parse_video_page(body, video_id=VID)
    assert values(result) == {"viewers": 5, "views": 40, "live_status": 2}
    assert result.session == SessionObservation(VID, LiveStatus.LIVE)
    # A node without an id is taken, keyed by the id asked for.
    anonymous = parse_video_page(_sjs({"live_status": "PAUSED"}), video_id=VID)
    assert anonymous.session == SessionObservation(VID, LiveStatus.PAUSED)
    Raises(ParseFailure, "no_video_node").check(lambda: parse_video_page(_sjs(other), video_id=VID))


def test_a_page_slug_containing_login_is_not_a_login_redirect() -> None:
    result = parse_video_page(
        fixture("video_live.html"), final_url=f"https://www.facebook.com/loginshop/videos/{VID}"
    )
    assert values(result)["viewers"] == 812


STATUS_CASES = [
    ({"broadcast_status": "LIVE", "live_status": "LIVE"}, LiveStatus.LIVE),
    ({"broadcast_status": "LIVE", "live_status": "PAUSED"}, LiveStatus.PAUSED),
    ({"broadcast_status": "LIVE_STOPPED"}, LiveStatus.LIVE),
    ({"broadcast_status": "VOD_READY", "live_status": "WAS_LIVE"}, LiveStatus.ENDED),
    ({"broadcast_status": "VOD_READY"}, LiveStatus.ENDED),
    ({"live_status": "WAS_LIVE", "is_live_streaming": True}, LiveStatus.ENDED),
    ({"live_status": "live"}, LiveStatus.LIVE),
    ({"broadcast_status": "SCHEDULED_LIVE"}, LiveStatus.SCHEDULED),
    ({"is_live_streaming": True}, LiveStatus.LIVE),
    ({"is_live_streaming": False, "is_video_broadcast": True}, LiveStatus.ENDED),
    ({"is_live_streaming": False}, LiveStatus.UNKNOWN),
    ({"broadcast_status": 3}, LiveStatus.UNKNOWN),
]


@pytest.mark.parametrize(("node", "status"), STATUS_CASES)
def test_video_status(node: dict[str, Any], status: LiveStatus) -> None:
    assert video_status(node) is status


VIDEO_IDS = [
    ("1029384756102938", "1029384756102938"),
    (" 1029384756102938 ", "1029384756102938"),
    ("https://www.facebook.com/laichau.ocop/videos/1029384756102938", "1029384756102938"),
    ("https://www.facebook.com/laichau.ocop/videos/1029384756102938/?ref=share", "1029384756102938"),
    ("https://www.facebook.com/laichau.ocop/videos/vb.100064/1029384756102938/", "1029384756102938"),
    ("https://www.facebook.com/laichau.ocop/videos/che-shan-tuyet/1029384756102938/", "1029384756102938"),
    ("https://www.facebook.com/watch/live/?v=1029384756102938&ref=watch_permalink", "1029384756102938"),
    ("https://www.facebook.com/watch/?v=1029384756102938", "1029384756102938"),
    ("https://www.facebook.com/video.php?v=1029384756102938", "1029384756102938"),
    ("https://www.facebook.com/reel/1029384756102938", "1029384756102938"),
    ("https://m.facebook.com/watch/live/?v=1029384756102938", "1029384756102938"),
    ("m.facebook.com/laichau.ocop/videos/1029384756102938/", "1029384756102938"),
    ("facebook.com/reel/1029384756102938/?s=fb_shorts", "1029384756102938"),
    (
        "https://www.facebook.com/plugins/video.php?href=https%3A%2F%2Fwww.facebook.com%2Fp%2Fvideos%2F42%2F",
        "42",
    ),
    ("https://fb.watch/abcDEF/", None),
    ("https://example.com/laichau.ocop/videos/1029384756102938", None),
    ("https://www.facebook.com/laichau.ocop", None),
    ("https://www.facebook.com/watch/live/", None),
    ("https://www.facebook.com/watch/?v=abc", None),
    ("0000", None),
    ("٧٤٣٨", None),
    ("", None),
    ("http://[::1", None),
]


@pytest.mark.parametrize(("text", "expected"), VIDEO_IDS)
def test_video_id_from(text: str, expected: str | None) -> None:
    assert video_id_from(text) == expected


LIVE_DISCOVERY = [
    ("page_profile_not_live.html", "https://www.facebook.com/nongsan.laichau/live/", None),
    ("page_profile_live.html", "https://www.facebook.com/nongsan.laichau/live/", VID),
    ("video_live.html", f"https://www.facebook.com/nongsan.laichau/videos/{VID}/", VID),
    ("video_paused.html", "", VID),
    ("video_ended.html", "", None),
    ("login_wall.html", "", Raises(LoginWall)),
    ("page_profile_not_live.html", "https://www.facebook.com/login/?next=x", Raises(LoginWall)),
    ("temporarily_blocked.html", "", Raises(Blocked)),
]


@pytest.mark.parametrize(("name", "url", "expected"), LIVE_DISCOVERY)
def test_find_live_video(name: str, url: str, expected: str | Raises | None) -> None:
    body = fixture(name)
    if isinstance(expected, Raises):
        expected.check(lambda: find_live_video(body, url))
    else:
        assert find_live_video(body, url) == expected


def test_find_live_video_regex_fallback() -> None:
    # Live markers outside any data-sjs JSON: the broadcast_id wins over an older video_id.
    body = b'<script>x={"video_id":"111","is_live_streaming":true,"broadcast_id":"222"}</script>'
    assert find_live_video(body) == "222"
    assert find_live_video(b'<script>x={"video_id":"111"}</script>') is None


# --- robustness: only PollError may escape ----------------------------------------------------


def only_poll_errors(body: bytes, url: str = "") -> None:
    for call in (lambda: parse_video_page(body, final_url=url), lambda: find_live_video(body, url)):
        try:
            result = call()
        except PollError:
            continue
        if isinstance(result, ParseResult):
            assert all(isinstance(r.value, float) and isinstance(r.metric, Metric) for r in result.readings)
            assert result.session is None or result.session.key.isdigit()
        else:
            assert result is None or result.isdigit()


KEYS = st.sampled_from(
    [
        "id", "videoId", "liveViewerCount", "broadcast_status", "live_status", "is_live_streaming",
        "is_video_broadcast", "video_view_count", "viewCount", "feedback", "reaction_count", "count",
        "i18n_reaction_count", "likers", "total_comment_count", "comment_rendering_instance", "comments",
        "total_count", "share_count", "i18n_share_count", "share_count_reduced", "title", "text", "__bbox",
        "require", "result", "data", "video", "associated_video", "unified_reactors", "fb_reel_react_button",
        "story",
    ]
) | st.text(max_size=6)  # fmt: skip
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["LIVE", "PAUSED", "LIVE_STOPPED", "VOD_READY", "WAS_LIVE", "2,3K", "1.4K", "1,234", VID,
                       "</script>", "login_form", "1,2 Tr", "²", 2**63, -1, "NEVER_LIVE",
                       "ZmVlZGJhY2s6MQ=="])
)  # fmt: skip
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


@given(body=st.binary(max_size=512), url=st.sampled_from(["", "https://www.facebook.com/login/", "::", "x"]))
def test_arbitrary_bytes_only_raise_poll_errors(body: bytes, url: str) -> None:
    only_poll_errors(body, url)
    only_poll_errors(b'<script type="application/json" data-sjs>' + body + b"</script>", url)
    only_poll_errors(b'<script type="application/ld+json">' + body, url)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES)
def test_arbitrary_json_in_data_sjs_only_raises_poll_errors(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False).replace("</", "<\\/").encode()
    only_poll_errors(b'<html><script type="application/json" data-sjs>' + text + b"</script></html>")
    page = fixture("video_live.html")
    start = page.index(b">", page.index(b"data-sjs")) + 1  # replace the first block, keep the others
    only_poll_errors(page[:start] + text + page[page.index(b"</script>", start) :])
    ld = {"@type": "VideoObject", "interactionStatistic": value, "url": value}
    only_poll_errors(b'<script type="application/ld+json">' + json.dumps(ld).encode() + b"</script>")


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(data=st.data())
def test_mutated_video_node_only_raises_poll_errors(data: st.DataObject) -> None:
    node = {
        **NODE,
        "video_view_count": 10,
        "feedback": {"reaction_count": {"count": 3}, "i18n_share_count": "1"},
    }
    key = data.draw(st.sampled_from([*node, "feedback"]))
    node[key] = data.draw(JSON_VALUES)
    only_poll_errors(
        _sjs({"require": [["ScheduledServerJS", "handle", None, [{"__bbox": {"result": node}}]]]})
    )


# --- poll end to end against the simulator ----------------------------------------------------

START = 1_725_850_000.0
OCOP_LIVE = "1029384756102938"
OCOP_END = -900 + 5400
HTX_REPLAY = "1122334455667788"
PRIVATE_LIVE = "1357924680135792"


class Sim:
    def __init__(self, server: TestServer, clock: SimClock, headers: list[dict[str, str]]) -> None:
        self.web = str(server.make_url("/www.facebook.com"))
        self.clock, self.headers = clock, headers

    def at(self, elapsed: float) -> Sim:
        self.clock.freeze_at = elapsed
        return self

    def truth(self, video_id: str, scenario_name: str = "demo") -> dict[str, Any]:
        scenario = replace(demo(1), name=scenario_name)
        return fb_sim.truth(scenario, self.clock.elapsed(), START)[video_id]

    async def poll(
        self, state: LiveVideoState | None = None, secrets: dict[str, Secret] | None = None, **params: str
    ) -> PollResult:
        target = TargetConfig("fb-target", "facebook", "live", 30.0, params, secrets=secrets or {})
        async with HttpClient(HttpSettings()) as client:
            fetcher = HttpFetcher(client, markers=adapter.markers)  # the page markers, as the poller passes
            return await poll_kind(adapter, target, {"web": self.web}, fetcher, state=state)


async def _sim(scenario_name: str) -> AsyncIterator[Sim]:
    clock = SimClock(freeze_at=60.0, start=START)
    app = build_app(replace(demo(1), name=scenario_name), clock)
    if fb_sim not in PLATFORMS:  # until simulator/app.py lists it
        fb_sim.register(app)
    headers: list[dict[str, str]] = []

    @web.middleware
    async def capture(request: web.Request, handler: Any) -> web.StreamResponse:
        headers.append({"path": request.path, **request.headers})
        return await handler(request)

    app.middlewares.append(capture)
    async with TestServer(app) as server:
        yield Sim(server, clock, headers)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async for value in _sim("demo"):
        yield value


def exact(truth: dict[str, Any], status: int) -> dict[str, float]:
    running = status in (2, 3)  # only a running broadcast has concurrent viewers
    return {
        **({"viewers": truth["viewers"]} if running else {}), "views": truth["views"],
        "likes": truth["reactions"], "comments": truth["comments"], "shares": truth["shares"],
        "live_status": status,
    }  # fmt: skip


async def test_poll_page_follows_the_live_redirect_with_browser_headers(sim: Sim) -> None:
    result = await sim.at(600).poll(page="laichau.ocop")
    assert result.outcome is Outcome.OK
    assert values(result.parsed) == exact(sim.truth(OCOP_LIVE), 2)
    assert result.parsed.session == SessionObservation(
        OCOP_LIVE, LiveStatus.LIVE, "Phiên chợ OCOP Lai Châu trực tiếp"
    )
    # One navigation: /live/ and its redirect target, parsed without a third request.
    assert [h["path"] for h in sim.headers] == [
        "/www.facebook.com/laichau.ocop/live/",
        f"/www.facebook.com/laichau.ocop/videos/{OCOP_LIVE}/",
    ]
    first = sim.headers[0]
    assert first["Sec-Fetch-Mode"] == "navigate" and first["DNT"] == "1" and "Cookie" not in first


async def test_poll_page_paused_then_ended_replay_then_not_live(sim: Sim) -> None:
    state = LiveVideoState()
    paused = await sim.at(-900 + 2700 + 30).poll(state, page="laichau.ocop")
    assert paused.parsed.session is not None and paused.parsed.session.status is LiveStatus.PAUSED
    live = await sim.at(OCOP_END - 100).poll(state, page="laichau.ocop")
    assert values(live.parsed)["live_status"] == 2
    # First poll after the end: the replay's final counts, once.
    ended = await sim.at(OCOP_END + 50).poll(state, page="laichau.ocop")
    assert ended.outcome is Outcome.OK
    assert values(ended.parsed) == exact(sim.truth(OCOP_LIVE), 4)
    again = await sim.at(OCOP_END + 120).poll(state, page="laichau.ocop")
    assert again.outcome is Outcome.NOT_LIVE
    assert values(again.parsed) == {"live_status": 4}
    assert again.parsed.session == SessionObservation(OCOP_LIVE, LiveStatus.ENDED)


async def test_poll_page_not_live(sim: Sim) -> None:
    result = await sim.poll(page="https://www.facebook.com/htx.chelaichau/")
    assert result.outcome is Outcome.NOT_LIVE
    assert values(result.parsed) == {"live_status": 0} and result.parsed.session is None


async def test_poll_video_url_of_an_ended_replay_with_i18n_counts(sim: Sim) -> None:
    result = await sim.poll(video_id=f"https://m.facebook.com/watch/live/?v={HTX_REPLAY}")
    assert result.outcome is Outcome.OK
    got, truth = values(result.parsed), sim.truth(HTX_REPLAY)
    assert result.parsed.session is not None and result.parsed.session.status is LiveStatus.ENDED
    assert "viewers" not in got  # a finished broadcast has no concurrent viewers
    assert (got["views"], got["comments"], got["live_status"]) == (
        truth["views"],
        truth["comments"],
        4,
    )
    for metric, name in (("likes", "reactions"), ("shares", "shares")):  # "2.9K": truncated display text
        assert 0 <= truth[name] - got[metric] < max(1, truth[name] / 100), metric
    assert [h["path"] for h in sim.headers] == ["/www.facebook.com/watch/live/"]


async def test_poll_reel_reads_its_split_counts_and_is_not_live(sim: Sim) -> None:
    result = await sim.poll(video_id=f"https://www.facebook.com/reel/{fb_sim.REEL_ID}/")
    assert result.outcome is Outcome.NOT_LIVE and result.parsed.session is None
    got, truth = values(result.parsed), sim.truth(fb_sim.REEL_ID)
    assert (got["likes"], got["comments"], got["live_status"]) == (truth["reactions"], truth["comments"], 0)
    assert 0 <= truth["shares"] - got["shares"] < max(1, truth["shares"] / 100)  # "1,2K": display text
    assert "views" not in got and "viewers" not in got  # a reel shows no view count and is no broadcast
    assert [h["path"] for h in sim.headers] == [
        "/www.facebook.com/watch/live/",
        f"/www.facebook.com/reel/{fb_sim.REEL_ID}/",
    ]


async def test_poll_security_interstitial_is_blocked(sim: Sim) -> None:
    with pytest.raises(Blocked):
        await sim.poll(video_id=fb_sim.INTERSTITIAL_ID)


async def test_poll_login_wall_without_cookies_and_data_with_them(sim: Sim) -> None:
    with pytest.raises(LoginWall):
        await sim.poll(page="sanvat.taybac")
    with pytest.raises(LoginWall):
        await sim.poll(video_id=PRIVATE_LIVE, page="sanvat.taybac")
    cookies = {"cookies": Secret("Cookie: c_user=100012345678901;\n xs=12%3Aabc", "test")}
    result = await sim.poll(secrets=cookies, page="sanvat.taybac")
    assert values(result.parsed) == exact(sim.truth(PRIVATE_LIVE), 2)
    assert sim.headers[-1]["Cookie"] == "c_user=100012345678901; xs=12%3Aabc"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"video_id": fb_sim.SECURITY_CHECK_ID}, Blocked),
        ({}, NotFound),
        ({"video_id": "https://fb.watch/abc/"}, NotFound),
        ({"page": "no.such.page"}, NotFound),
        ({"video_id": "1000000000000009"}, NotFound),  # not a video: "content isn't available"
    ],
)
async def test_poll_errors(sim: Sim, params: dict[str, str], error: type[PollError]) -> None:
    with pytest.raises(PollError) as info:
        await sim.poll(**params)
    assert type(info.value) is error


async def test_poll_event_week_simulcast() -> None:
    async for sim in _sim("event-week"):
        before = await sim.at(fb_sim.EVENT_SIMULCAST_START - 60).poll(page="laichau.ocop")
        assert before.outcome is Outcome.NOT_LIVE
        during = await sim.at(fb_sim.EVENT_SIMULCAST_START + 3600).poll(page="laichau.ocop")
        truth = sim.truth("1048576000000001", "event-week")
        assert values(during.parsed) == exact(truth, 2)
        assert 1000 < truth["viewers"] < 1800
