"""The shapes the real captures showed (tests/test_real_captures.py), rebuilt minimally in
`tests/fixtures/real_shapes/`, so their handling stays covered where `../shared/` is absent.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api import RawResponse, check_status
from collector.outcomes import Blocked, LoginWall, ParseFailure, PollError
from schemas.types import LiveStatus, Metric, ParseResult, SessionObservation
from scrapers import facebook, shopee
from scrapers.extract import MetricSpec, readings_from
from scrapers.tiktok.live import RoomLookup, parse_room_info, parse_user_room
from tests.fuzzing import DELETE, json_values, mutate, paths

SHAPES = Path(__file__).parent / "fixtures" / "real_shapes"
ROOM = "7440000000000000123"
VID = "1380000000000001"


def shape(name: str) -> bytes:
    return (SHAPES / name).read_bytes()


def values(result: ParseResult) -> dict[str, float]:
    return {r.metric.value: r.value for r in result.readings}


def raises(cls: type[PollError], call: object, says: str = "") -> PollError:
    with pytest.raises(PollError) as info:
        call()  # type: ignore[operator]
    assert type(info.value) is cls, repr(info.value)
    assert says in info.value.detail
    return info.value


# --- TikTok ------------------------------------------------------------------------------------


def test_unsigned_room_info_zeros_are_unknown_not_readings() -> None:
    result = parse_room_info(shape("tiktok/room_info_unsigned.json"), ROOM)
    # like_count 0 and stats.share_count 0 are "not told"; follow_count and total_user are told.
    assert values(result) == {"viewers": 792, "views": 18295, "new_followers": 231, "live_status": 2}
    assert result.session is not None and (result.session.key, result.session.status) == (
        ROOM,
        LiveStatus.LIVE,
    )


def test_room_enter_float_rounded_id_and_finish_time_while_live() -> None:
    result = parse_room_info(shape("tiktok/room_enter_float_id.json"))
    assert values(result) == {"viewers": 541, "views": 1661, "likes": 8, "live_status": 2}
    assert result.session is not None
    assert result.session.key == "7503448765740976902"  # id_str, not the rounded int id
    assert result.session.status is LiveStatus.LIVE and result.session.ended_at is None


def test_webcast_envelopes_by_meaning() -> None:
    raises(LoginWall, lambda: parse_room_info(shape("tiktok/webcast_not_logged_in.json"), ROOM), "20003")
    finished = parse_room_info(shape("tiktok/webcast_room_finished.json"), ROOM)
    assert values(finished) == {"live_status": 4}  # no zero counters: the last ones stand
    assert finished.session == SessionObservation(ROOM, LiveStatus.ENDED)
    assert parse_room_info(shape("tiktok/webcast_room_finished.json")).session is None  # room unknown
    for code in (10013, 10011, 4003182, 99):  # refused (signature) or unknown: never "not found"
        body = b'{"status_code":%d,"data":{"message":"x"}}' % code
        raises(Blocked, lambda body=body: parse_room_info(body, ROOM), f"status_code {code}")


def test_user_room_no_such_account_or_never_live_code() -> None:
    body = b'{"statusCode":19881007,"message":"","data":{}}'
    assert parse_user_room(body) == RoomLookup(None, LiveStatus.UNKNOWN)


def test_zero_is_unknown_tries_the_next_path_and_keeps_non_zero() -> None:
    spec = MetricSpec(Metric.LIKES, (("a",), ("b",), ("c",)), zero_is_unknown=True)
    assert readings_from({"a": 0, "b": "", "c": 5}, [spec])[0].value == 5
    assert readings_from({"a": 0, "b": "0", "c": None}, [spec]) == []
    assert readings_from({"a": 7, "c": 5}, [spec])[0].value == 7
    plain = MetricSpec(Metric.VIEWERS, (("a",),))
    assert readings_from({"a": 0}, [plain])[0].value == 0  # a counter that tells its zeros keeps them
    with pytest.raises(ParseFailure):
        readings_from({"a": 0, "b": "lots"}, [spec])


# --- Facebook ----------------------------------------------------------------------------------


def _page(name: str, url: str = "https://www.facebook.com/watch/?v=" + VID) -> bytes:
    """The body after the core's marker scan, as a poll would hand it to the parser."""
    body = shape(f"facebook/{name}")
    check_status(RawResponse(url, 200, "text/html", body, datetime.now(UTC)), facebook.MARKERS)
    return body


NOT_A_BROADCAST = {"views": 9876, "likes": 1234, "comments": 56, "live_status": 0}


@pytest.mark.parametrize("video_id", [VID, None])
def test_signed_out_watch_page_of_a_video_that_never_was_live(video_id: str | None) -> None:
    body = _page("signed_out_watch.html")
    assert b"useCometLogInFormQuery" in body and b'id="login_form"' in body
    result = facebook.parse_video_page(body, video_id=video_id)
    # No viewers from liveViewerCount 0, no play_count, no live session.
    assert values(result) == NOT_A_BROADCAST and result.session is None
    assert facebook.find_live_video(body) is None


def test_reel_split_feedback_gives_the_watch_page_counts() -> None:
    reel = values(facebook.parse_video_page(_page("reel_split_feedback.html"), video_id=VID))
    assert reel == {"likes": 1234, "comments": 56, "shares": 78, "live_status": 0}
    watch = values(facebook.parse_video_page(_page("signed_out_watch.html")))
    assert {k: reel[k] for k in ("likes", "comments")} == {k: watch[k] for k in ("likes", "comments")}


def test_photo_post_with_null_video_key_is_no_video() -> None:
    body = _page("photo_post.html")
    assert b'"video_view_count": null' in body
    with pytest.raises(ParseFailure) as info:
        facebook.parse_video_page(body)
    assert info.value.reason == "no_video_node"
    assert facebook.find_live_video(body) is None


def test_security_interstitial_with_login_form_is_blocked() -> None:
    body = shape("facebook/security_interstitial.html")
    raises(Blocked, lambda: _page("security_interstitial.html"), "security systems")
    raises(Blocked, lambda: facebook.parse_video_page(body))
    raises(Blocked, lambda: facebook.find_live_video(body))


@pytest.mark.parametrize(
    "title",
    [
        "Log in to Facebook",
        "Log into Facebook",
        "Facebook – log in or sign up",
        "Facebook - Đăng nhập hoặc đăng ký",
    ],
)
def test_the_log_in_page_itself_is_a_login_wall(title: str) -> None:
    body = f"<!DOCTYPE html><html><head><title>{title}</title></head><body></body></html>".encode()
    raises(LoginWall, lambda: facebook.parse_video_page(body))
    with pytest.raises(LoginWall):
        check_status(
            RawResponse("https://www.facebook.com/x", 200, "text/html", body, datetime.now(UTC)),
            facebook.MARKERS,
        )


SJS = re.compile(rb"(<script[^>]*data-sjs>)(.*?)(</script>)", re.S)
FB_KEYS = st.sampled_from(
    ["id", "feedback", "video", "associated_video", "likers", "unified_reactors", "count", "live_status",
     "is_video_broadcast", "is_live_streaming", "liveViewerCount", "video_view_count", "share_count_reduced"]
) | st.text(max_size=6)  # fmt: skip
FB_VALUES = json_values(FB_KEYS, [VID, "NEVER_LIVE", "LIVE", "ZmVlZGJhY2s6MTU4NDAwMDAwMDAwMDAwMQ==", "1,2K"])


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(data=st.data())
def test_mutated_real_facebook_shapes_only_raise_poll_errors(data: st.DataObject) -> None:
    """The real shapes with one node anywhere replaced or removed: a result or a PollError, nothing else."""
    body = shape(
        f"facebook/{data.draw(st.sampled_from(['signed_out_watch.html', 'reel_split_feedback.html']))}"
    )
    scripts = SJS.findall(body)
    index = data.draw(st.integers(0, len(scripts) - 1))
    doc = json.loads(scripts[index][1])
    path = data.draw(st.sampled_from(list(paths(doc))))
    value: Any = data.draw(FB_VALUES | st.just(DELETE)) if path else data.draw(FB_VALUES)
    mutated = json.dumps(mutate(doc, path, value), ensure_ascii=False).replace("</", "<\\/").encode()
    start = body.index(scripts[index][1])
    body = body[:start] + mutated + body[start + len(scripts[index][1]) :]
    for call in (lambda: facebook.parse_video_page(body, video_id=VID), lambda: facebook.parse_video_page(body),
                 lambda: facebook.find_live_video(body)):  # fmt: skip
        with contextlib.suppress(PollError):  # anything else fails the test
            call()


# --- Shopee ------------------------------------------------------------------------------------

SHOPEE_PARSERS = [
    shopee.parse_joinv2,
    shopee.parse_more_items,
    shopee.parse_session_list,
    lambda body: shopee.parse_overview(body, shopee.DashboardSession("1")),
]


@pytest.mark.parametrize("name", ["antibot_challenge.json", "antibot_numkeys.json"])
@pytest.mark.parametrize("parse", SHOPEE_PARSERS)
def test_shopee_verification_challenge_is_a_block(name: str, parse: object) -> None:
    raises(Blocked, lambda: parse(shape(f"shopee/{name}")), "90309999")  # type: ignore[operator]
