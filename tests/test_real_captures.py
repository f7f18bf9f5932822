"""Every real capture in `../shared/real-captures/` (answers the real TikTok, Facebook and Shopee sites
served, saved by other public projects; see its SOURCES.md) through the poll path that would meet it:
the core's `check_status` with the adapter's page markers, then the adapter's parser. Each capture has
one exact expected outcome and every value it yields, so a capture can only produce a sample its page
shows. Then a few captures through a whole poll (`poll_kind`, real HTTP on 127.0.0.1).

The folder sits beside the repository (`<repo>/../shared`). Outside CI its absence skips this module
with a reason; with CI=true it is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from collector.api import Adapter, PageMarkers, PollResult, RawResponse, TargetConfig, check_status
from collector.config import HttpSettings
from collector.http import HttpClient, HttpFetcher
from collector.outcomes import Blocked, LoginWall, PollError
from schemas.types import LiveStatus, Metric, ParseResult, SessionObservation
from scrapers import facebook, shopee
from scrapers.tiktok import adapter as tiktok
from scrapers.tiktok.hashtag import parse_challenge_detail
from scrapers.tiktok.live import RoomLookup, RoomState, parse_room_info, parse_user_room
from tests.polling import poll_kind

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "real-captures"
JSON, HTML = "application/json", "text/html; charset=utf-8"
FB_VIDEO = "1380134307388381"
ENTER_ROOM = "7503448765740976902"  # room/enter of 2025-05-12 (id_str; its int `id` is float-rounded)
INFO_ROOM = "7692023419818265357"  # room/info and user/room of 2026-10-05


@pytest.fixture(scope="module")
def captures() -> Path:
    if CAPTURES.is_dir():
        return CAPTURES
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CAPTURES} is missing: CI must clone the repository with shared/ beside it")
    pytest.skip(f"{CAPTURES} is absent (real captures live beside the repository, in ../shared)")


@dataclass(frozen=True)
class Read:
    """A capture that parses: exactly these values, and this session (key, status) or none."""

    values: Mapping[str, float]
    session: tuple[str, LiveStatus] | None


@dataclass(frozen=True)
class Fails:
    """A capture that stands for an error: its exact class and a text of its detail."""

    cls: type[PollError]
    says: str


@dataclass(frozen=True)
class Case:
    path: str
    url: str  # where the real site served it (SOURCES.md)
    content_type: str
    markers: PageMarkers
    parse: Callable[[bytes], object]
    expected: Read | Fails | RoomLookup | str | None


def _room_info(room_id: str) -> Callable[[bytes], ParseResult]:
    return lambda body: parse_room_info(body, room_id)


TK, FB, SP = tiktok.markers, facebook.MARKERS, shopee.adapter.markers
ROOM_INFO_URL = "https://webcast.tiktok.com/webcast/room/info/?aid=1988&room_id="
ROOM_ENTER_URL = "https://webcast.tiktok.com/webcast/room/enter/"
WATCH, REEL = f"https://www.facebook.com/watch/?v={FB_VIDEO}", f"https://www.facebook.com/reel/{FB_VIDEO}/"
DIRECTORY = "https://www.facebook.com/directory/pages/A"
ANTI_BOT = Fails(Blocked, "error 90309999, action_type 2")
NOT_A_BROADCAST = Read({"views": 98255, "likes": 5978, "comments": 173, "live_status": 0}, None)
REEL_COUNTS = Read({"likes": 5978, "comments": 173, "shares": 262, "live_status": 0}, None)
SECURITY = Fails(Blocked, "blocked by our security systems")

CASES = [
    # statsV2 (exact strings) over the zero `stats.videoCount` and the rounded `viewCount`.
    Case("tiktok/challenge_detail_nasa_2026-10-05.json", "https://www.tiktok.com/api/challenge/detail/?challengeName=nasa",
         JSON, TK, parse_challenge_detail, Read({"hashtag_views": 56995089280, "hashtag_posts": 1930991}, None)),
    Case("tiktok/user_room_live_2026-10-05.json", "https://www.tiktok.com/api-live/user/room/?uniqueId=mrlustfn",
         JSON, TK, parse_user_room, RoomLookup(INFO_ROOM, LiveStatus.LIVE, 2174771)),
    # Unsigned room/info: like_count 0 (the room has 946,807 likes) and zero stats.share_count are not
    # told, so they are no readings; total_user and follow_count are non-zero and stand.
    Case("tiktok/room_info_trimmed_2026-10-05.json", ROOM_INFO_URL + INFO_ROOM, JSON, TK, _room_info(INFO_ROOM),
         Read({"viewers": 792, "views": 1829590, "new_followers": 2312, "live_status": 2}, (INFO_ROOM, LiveStatus.LIVE))),
    # Logged-in room/enter, same Room object: id_str over the float-rounded id; finish_time while live
    # ends nothing; stats zeros (like_count 0 beside the top-level 8, share/follow 0) are no readings.
    Case("tiktok/room_enter_live_2025-05-12.json", ROOM_ENTER_URL, JSON, TK, _room_info(ENTER_ROOM),
         Read({"viewers": 541, "views": 1661, "likes": 8, "live_status": 2}, (ENTER_ROOM, LiveStatus.LIVE))),
    Case("tiktok/room_enter_err_20003_not_logged_in.json", ROOM_ENTER_URL, JSON, TK, _room_info(ENTER_ROOM),
         Fails(LoginWall, "20003")),
    # The room ended: its session ends, no counter is written (the last ones stand).
    Case("tiktok/room_enter_err_30003_room_finished.json", ROOM_ENTER_URL, JSON, TK, _room_info(ENTER_ROOM),
         Read({"live_status": 4}, (ENTER_ROOM, LiveStatus.ENDED))),
    # Signed out, the login form query is on every page: a VOD that never was live reads its counts,
    # with no viewers, no live session, and as a page's /live/ answer it is simply not live.
    Case("facebook/watch_real.html", WATCH, HTML, FB,
         lambda body: facebook.parse_video_page(body, final_url=WATCH, video_id=FB_VIDEO), NOT_A_BROADCAST),
    Case("facebook/watch_real.html", WATCH, HTML, FB, lambda body: facebook.parse_video_page(body), NOT_A_BROADCAST),
    Case("facebook/watch_real.html", WATCH, HTML, FB, facebook.find_live_video, None),
    # The same video as a reel: counts split over two feedback objects of one id.
    Case("facebook/reel.html", REEL, HTML, FB,
         lambda body: facebook.parse_video_page(body, final_url=REEL, video_id=FB_VIDEO), REEL_COUNTS),
    Case("facebook/reel.html", REEL, HTML, FB, lambda body: facebook.parse_video_page(body), REEL_COUNTS),
    Case("facebook/reel.html", REEL, HTML, FB, facebook.find_live_video, None),
    Case("facebook/dir_blocked.html", DIRECTORY, HTML, FB, lambda body: facebook.parse_video_page(body), SECURITY),
    Case("facebook/dir_blocked.html", DIRECTORY, HTML, FB, facebook.find_live_video, SECURITY),
    *(
        Case(f"shopee/{name}", "https://live.shopee.vn/api/v1/session/1/joinv2", JSON, SP, parse, ANTI_BOT)
        for name in ("antibot_90309999_2024-02.json", "antibot_90309999_2022-08_pyrepr.json",
                     "antibot_90309999_numkeys_2024-08.json")
        for parse in (shopee.parse_joinv2, shopee.parse_more_items, shopee.parse_session_list,
                      lambda body: shopee.parse_overview(body, shopee.DashboardSession("1")))
    ),
]  # fmt: skip


def _through_poll_path(case: Case, body: bytes) -> object:
    check_status(RawResponse(case.url, 200, case.content_type, body, datetime.now(UTC)), case.markers)
    return case.parse(body)


def _values(result: ParseResult) -> dict[str, float]:
    metrics = [r.metric for r in result.readings]
    assert len(metrics) == len(set(metrics)), "a metric was read twice"
    return {r.metric.value: r.value for r in result.readings}


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.path}" for i, c in enumerate(CASES)])
def test_capture_gives_its_outcome_and_values(case: Case, captures: Path) -> None:
    body = (captures / case.path).read_bytes()
    expected = case.expected
    if isinstance(expected, Fails):
        with pytest.raises(PollError) as info:
            _through_poll_path(case, body)
        assert type(info.value) is expected.cls, repr(info.value)
        assert expected.says in info.value.detail
        return
    result = _through_poll_path(case, body)
    if not isinstance(expected, Read):
        assert result == expected
        return
    assert isinstance(result, ParseResult)
    assert _values(result) == expected.values
    session = result.session
    assert (session.key, session.status) == expected.session if session else expected.session is None


def test_every_capture_is_checked(captures: Path) -> None:
    files = {str(p.relative_to(captures)) for p in captures.rglob("*") if p.is_file()} - {"SOURCES.md"}
    assert files == {case.path for case in CASES}


def test_watch_page_and_reel_of_one_video_give_the_same_counts(captures: Path) -> None:
    watch = _values(facebook.parse_video_page((captures / "facebook/watch_real.html").read_bytes()))
    reel = _values(facebook.parse_video_page((captures / "facebook/reel.html").read_bytes()))
    shared = watch.keys() & reel.keys()
    assert shared == {"likes", "comments", "live_status"}  # views on the watch page, shares on the reel
    assert {k: watch[k] for k in shared} == {k: reel[k] for k in shared}


# --- whole polls over real HTTP ------------------------------------------------------------------


Route = tuple[str, bytes, str]  # (path, body, content type); a body starting "302 " redirects


async def _serve(routes: list[Route]) -> AsyncIterator[str]:
    app = web.Application()
    for path, body, content_type in routes:

        async def answer(_request: web.Request, body: bytes = body, content_type: str = content_type) -> Any:
            if body.startswith(b"302 "):
                raise web.HTTPFound(body[4:].decode())
            return web.Response(body=body, content_type=content_type.split(";")[0])

        app.router.add_route("*", path, answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


async def _poll(
    routes: list[Route], adapter: Adapter, target: TargetConfig, bases: list[str], state: Any = None
) -> tuple[PollResult | PollError, list[str]]:
    async for base in _serve(routes):
        async with HttpClient(HttpSettings()) as client:
            fetcher = HttpFetcher(client, markers=adapter.markers)
            try:
                result: PollResult | PollError = await poll_kind(
                    adapter, target, dict.fromkeys(bases, base), fetcher, state=state
                )
            except PollError as exc:
                result = exc
            return result, [r.url.removeprefix(base) for r in fetcher.responses]
    raise AssertionError("unreachable")


def _tiktok_target() -> TargetConfig:
    return TargetConfig("mrlust", "tiktok", "live", 30.0, {"account": "@mrlustfn"})


async def test_unsigned_room_info_poll_stores_no_zero_likes(captures: Path) -> None:
    routes = [
        ("/api-live/user/room/", (captures / "tiktok/user_room_live_2026-10-05.json").read_bytes(), JSON),
        ("/webcast/room/info/", (captures / "tiktok/room_info_trimmed_2026-10-05.json").read_bytes(), JSON),
    ]
    result, _ = await _poll(routes, tiktok, _tiktok_target(), ["web", "webcast"])
    assert isinstance(result, PollResult)
    got = _values(result.parsed)
    assert got == {
        "viewers": 792,
        "views": 1829590,
        "new_followers": 2312,
        "live_status": 2,
        "followers": 2174771,
    }


async def test_room_finished_poll_ends_the_session_and_leaves_the_room(captures: Path) -> None:
    routes = [
        ("/api-live/user/room/", (captures / "tiktok/user_room_live_2026-10-05.json").read_bytes(), JSON),
        (
            "/webcast/room/info/",
            (captures / "tiktok/room_enter_err_30003_room_finished.json").read_bytes(),
            JSON,
        ),
    ]
    state = RoomState()
    result, _ = await _poll(routes, tiktok, _tiktok_target(), ["web", "webcast"], state)
    assert isinstance(result, PollResult) and result.outcome.value == "not_live"
    assert result.parsed.session == SessionObservation(INFO_ROOM, LiveStatus.ENDED)
    assert {r.metric for r in result.parsed.readings} == {Metric.LIVE_STATUS, Metric.FOLLOWERS}
    assert (state.room_id, state.ended_room_id) == (None, INFO_ROOM)
    # user/room still names the finished room: not live, and room/info is not asked again.
    again, urls = await _poll(routes, tiktok, _tiktok_target(), ["web", "webcast"], state)
    assert isinstance(again, PollResult) and again.outcome.value == "not_live"
    assert [u.split("?")[0] for u in urls] == ["/api-live/user/room/"]


@pytest.mark.parametrize(
    ("page", "expected_outcome", "values"),
    [
        ("facebook/watch_real.html", "not_live", NOT_A_BROADCAST.values),
        ("facebook/reel.html", "not_live", REEL_COUNTS.values),
        ("facebook/dir_blocked.html", "blocked", None),
    ],
)
async def test_facebook_video_poll(page: str, expected_outcome: str, values: Any, captures: Path) -> None:
    body = (captures / page).read_bytes()
    routes = [("/watch/live/", f"302 /reel/{FB_VIDEO}/".encode(), HTML), (f"/reel/{FB_VIDEO}/", body, HTML)]
    target = TargetConfig("nasa", "facebook", "live", 30.0, {"video_id": FB_VIDEO})
    result, urls = await _poll(routes, facebook.adapter, target, ["web"])
    assert result.outcome.value == expected_outcome
    assert urls == [f"/reel/{FB_VIDEO}/"]  # /watch/live/?v= redirected to the reel
    if values is not None:
        assert isinstance(result, PollResult) and _values(result.parsed) == values


async def test_facebook_signed_out_page_that_is_not_live(captures: Path) -> None:
    routes = [("/nasa/live/", (captures / "facebook/watch_real.html").read_bytes(), HTML)]
    target = TargetConfig("nasa", "facebook", "live", 30.0, {"page": "nasa"})
    result, _ = await _poll(routes, facebook.adapter, target, ["web"])
    assert isinstance(result, PollResult) and result.outcome.value == "not_live"
    assert _values(result.parsed) == {"live_status": 0} and result.parsed.session is None


async def test_shopee_anti_bot_answer_blocks_a_live_poll(captures: Path) -> None:
    body = (captures / "shopee/antibot_90309999_2024-02.json").read_bytes()
    routes = [("/api/v1/session/{id}/joinv2", body, JSON)]
    target = TargetConfig("shop", "shopee", "live", 30.0, {"session_id": "123", "fetch": "http"})
    result, _ = await _poll(routes, shopee.adapter, target, ["live", "creator", "short"])
    assert isinstance(result, Blocked) and "90309999" in result.detail
