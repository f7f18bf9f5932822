"""Tests for the pure TikTok parse functions against fixture bodies (shapes: shared/platforms.md 2.1, 6).

Each fixture has one exact expected outcome: a RoomLookup, the readings and session of a ParseResult,
or the exact PollError subclass (and ParseFailure reason). Property tests then check that no input,
however malformed, escapes as anything but a PollError. The adapter's `poll` needs HTTP and is covered
by the integration tests against the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.outcomes import Blocked, LoginWall, NotFound, Outcome, ParseFailure, PollError
from schemas.types import LiveStatus, Metric, ParseResult, Provenance, SessionObservation
from scrapers.tiktok import RoomLookup, account_handle, parse_live_page, parse_room_info, parse_user_room
from tests.fuzzing import DELETE, json_values, mutate, paths

FIXTURES = Path(__file__).parent / "fixtures" / "tiktok"

LIVE_ROOM = "7438120944576801541"
STALE_ROOM = "7437754108236057349"
FOLLOWERS = 182340


def fixture(name: str) -> bytes:
    """The raw body of one fixture file, exactly as the HTTP layer would hand it over."""
    return (FIXTURES / name).read_bytes()


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Raises:
    """An expected failure: the exact PollError subclass, its outcome and, for ParseFailure, its reason
    (for other errors, a text their detail must contain)."""

    def __init__(self, cls: type[PollError], outcome: Outcome, reason: str | None = None) -> None:
        self.cls, self.outcome, self.reason = cls, outcome, reason

    def __repr__(self) -> str:
        return f"Raises({self.cls.__name__}, {self.reason!r})"

    def check(self, call: Callable[[], object]) -> None:
        with pytest.raises(PollError) as info:
            call()
        assert type(info.value) is self.cls, f"expected {self.cls.__name__}, got {info.value!r}"
        assert info.value.outcome is self.outcome
        if self.reason is not None and isinstance(info.value, ParseFailure):
            assert info.value.reason == self.reason
        elif self.reason is not None:
            assert self.reason in info.value.detail


# --- api-live/user/room -----------------------------------------------------------------------

USER_ROOM_CASES = [
    ("user_room_live.json", RoomLookup(LIVE_ROOM, LiveStatus.LIVE, FOLLOWERS)),
    # A stale room id with status 4: the adapter must not poll it (platforms.md 2.1 "Stale signals").
    ("user_room_ended.json", RoomLookup(STALE_ROOM, LiveStatus.ENDED, FOLLOWERS)),
    # Never live: empty roomId, no liveRoom; the user's own status is 4.
    ("user_room_never_live.json", RoomLookup(None, LiveStatus.ENDED, 1520)),
    ("user_room_not_found.json", Raises(NotFound, Outcome.NOT_FOUND)),
    ("user_room_missing_user.json", Raises(ParseFailure, Outcome.PARSE_FAILURE, "missing_keys")),
]


@pytest.mark.parametrize(("name", "expected"), USER_ROOM_CASES, ids=[c[0] for c in USER_ROOM_CASES])
def test_parse_user_room_fixtures(name: str, expected: RoomLookup | Raises) -> None:
    body = fixture(name)
    if isinstance(expected, Raises):
        expected.check(lambda: parse_user_room(body))
    else:
        assert parse_user_room(body) == expected


USER_ROOM_INLINE = [
    # params_error (documented message) carries no data.user: a layout the parser cannot use.
    (
        b'{"statusCode":40002,"message":"params_error","data":{}}',
        Raises(ParseFailure, Outcome.PARSE_FAILURE, "missing_keys"),
    ),
    (b"", Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_json")),
    # An HTML page where the JSON API answers is TikTok refusing, classified like its pages.
    (b"<html>blocked</html>", Raises(Blocked, Outcome.BLOCKED)),
    (b'\n<html><a href="/login?redirect_url=x">Log in</a></html>', Raises(LoginWall, Outcome.LOGIN_WALL)),
    (b"[]", Raises(ParseFailure, Outcome.PARSE_FAILURE, "unexpected_shape")),
    # The user's status stands in when there is no liveRoom; an int room id is accepted.
    (b'{"data":{"user":{"roomId":7438120944576801541,"status":2}}}', RoomLookup(LIVE_ROOM, LiveStatus.LIVE)),
    # Status 5 is "not live" per OmniDL [U]; "0" and junk room ids are no room at all.
    (b'{"data":{"user":{"roomId":"0","status":5}}}', RoomLookup(None, LiveStatus.ENDED)),
    (b'{"data":{"user":{"roomId":"abc","status":"2"}}}', RoomLookup(None, LiveStatus.UNKNOWN)),
    ('{"data":{"user":{"roomId":"٧٤٣٨","status":2}}}'.encode(), RoomLookup(None, LiveStatus.LIVE)),
    (
        b'{"data":{"user":{"roomId":["7438120944576801541"]},"stats":{"followerCount":"12K"}}}',
        RoomLookup(None, LiveStatus.UNKNOWN),
    ),
]


@pytest.mark.parametrize(("body", "expected"), USER_ROOM_INLINE)
def test_parse_user_room_inline_variants(body: bytes, expected: RoomLookup | Raises) -> None:
    if isinstance(expected, Raises):
        expected.check(lambda: parse_user_room(body))
    else:
        assert parse_user_room(body) == expected


# --- /@user/live HTML (SIGI_STATE) ------------------------------------------------------------

LIVE_PAGE_CASES = [
    ("live_page_live.html", RoomLookup(LIVE_ROOM, LiveStatus.LIVE, FOLLOWERS)),
    ("live_page_paused.html", RoomLookup(LIVE_ROOM, LiveStatus.PAUSED, FOLLOWERS)),
    ("live_page_ended.html", RoomLookup(STALE_ROOM, LiveStatus.ENDED, FOLLOWERS)),
    # No LiveRoom key: never live, or no such user; not an error.
    ("live_page_never_live.html", RoomLookup(None, LiveStatus.UNKNOWN, None)),
    ("live_page_blocked.html", Raises(Blocked, Outcome.BLOCKED)),
    ("live_page_waf.html", Raises(Blocked, Outcome.BLOCKED)),
    ("live_page_login.html", Raises(LoginWall, Outcome.LOGIN_WALL)),
    ("live_page_bad_json.html", Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_json")),
    ("live_page_truncated.html", Raises(ParseFailure, Outcome.PARSE_FAILURE, "truncated_script")),
]


@pytest.mark.parametrize(("name", "expected"), LIVE_PAGE_CASES, ids=[c[0] for c in LIVE_PAGE_CASES])
def test_parse_live_page_fixtures(name: str, expected: RoomLookup | Raises) -> None:
    body = fixture(name)
    if isinstance(expected, Raises):
        expected.check(lambda: parse_live_page(body))
    else:
        assert parse_live_page(body) == expected


def test_live_page_fixtures_are_realistic_pages() -> None:
    for name, _ in LIVE_PAGE_CASES:
        body = fixture(name)
        assert body.lstrip().lower().startswith(b"<!doctype html>"), name
    for name in (
        "live_page_live.html",
        "live_page_paused.html",
        "live_page_ended.html",
        "live_page_never_live.html",
    ):
        assert len(fixture(name)) > 4096, name
        assert fixture(name).count(b'id="SIGI_STATE"') == 1


LIVE_PAGE_INLINE = [
    # An empty body is one of TikTok's block symptoms (isaackogan/TikTokLive#210).
    (b"", Raises(Blocked, Outcome.BLOCKED)),
    (
        b'<html><script id="SIGI_STATE" type="application/json">[1,2]</script></html>',
        Raises(ParseFailure, Outcome.PARSE_FAILURE, "unexpected_shape"),
    ),
    (
        b'<html><script id="SIGI_STATE" type="application/json">{"LiveRoom":{"liveRoomUserInfo":"x"}}</script>',
        Raises(ParseFailure, Outcome.PARSE_FAILURE, "unexpected_shape"),
    ),
    (
        b'<script id="SIGI_STATE" type="application/json">{"LiveRoom":{}}</script>',
        RoomLookup(None, LiveStatus.UNKNOWN),
    ),
    (
        b'<script id="SIGI_STATE" type="application/json">\xff\xfe</script>',
        Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_json"),
    ),
    # liveRoom.status wins over user.status, as in the API response.
    (
        b'<script id="SIGI_STATE" type="application/json">{"LiveRoom":{"liveRoomUserInfo":'
        b'{"user":{"roomId":"7438120944576801541","status":2},"liveRoom":{"status":4}}}}</script>',
        RoomLookup(LIVE_ROOM, LiveStatus.ENDED),
    ),
]


@pytest.mark.parametrize(("body", "expected"), LIVE_PAGE_INLINE)
def test_parse_live_page_inline_variants(body: bytes, expected: RoomLookup | Raises) -> None:
    if isinstance(expected, Raises):
        expected.check(lambda: parse_live_page(body))
    else:
        assert parse_live_page(body) == expected


# --- webcast/room/info ------------------------------------------------------------------------


def _readings(**values: float) -> dict[Metric, float]:
    return {Metric(name): value for name, value in values.items()}


OWNER = "bepnhaminh.official"  # owner.display_id: links the room to the shop API's view of it
ROOM_INFO_CASES = [
    (
        "room_info_live.json",
        _readings(viewers=2417, views=68933, likes=154208, shares=512, new_followers=377, live_status=2),
        # No start_time in this shape: create_time stands in.
        SessionObservation(
            LIVE_ROOM,
            LiveStatus.LIVE,
            "Xả kho nồi chiên 11.11 🔥",
            _utc(2024, 11, 18, 6, 49, 57),
            account=OWNER,
        ),
    ),
    (
        "room_info_paused.json",
        _readings(viewers=1980, views=70211, likes=160012, shares=530, new_followers=391, live_status=3),
        SessionObservation(
            LIVE_ROOM,
            LiveStatus.PAUSED,
            "Xả kho nồi chiên 11.11 🔥",
            _utc(2024, 11, 18, 6, 50),
            account=OWNER,
        ),
    ),
    (
        "room_info_ended.json",
        _readings(views=61204, likes=402551, shares=1288, new_followers=904, live_status=4),
        SessionObservation(
            STALE_ROOM,
            LiveStatus.ENDED,
            "Sale cuối tuần - freeship",
            _utc(2024, 11, 17, 6, 50),
            _utc(2024, 11, 17, 11, 10, 45),
            account=OWNER,
        ),
    ),
    (
        # Counters as strings, total_user missing: total_user_desp "56.7K" is the views fallback.
        "room_info_strings.json",
        _readings(viewers=1234, views=56700, likes=98765, shares=321, new_followers=45, live_status=2),
        SessionObservation(
            LIVE_ROOM,
            LiveStatus.LIVE,
            "Xả kho nồi chiên 11.11 🔥",
            _utc(2024, 11, 18, 6, 49, 57),
            account=OWNER,
        ),
    ),
]


@pytest.mark.parametrize(
    ("name", "readings", "session"), ROOM_INFO_CASES, ids=[c[0] for c in ROOM_INFO_CASES]
)
def test_parse_room_info_fixtures(
    name: str, readings: dict[Metric, float], session: SessionObservation
) -> None:
    result = parse_room_info(fixture(name))
    assert isinstance(result, ParseResult)
    metrics = [r.metric for r in result.readings]
    assert len(metrics) == len(set(metrics)), "a metric was read twice"
    assert {r.metric: r.value for r in result.readings} == readings
    assert all(r.provenance is Provenance.OBSERVED for r in result.readings)
    assert result.session == session


ROOM_INFO_ERRORS = [
    ("room_info_age_restricted.json", Raises(LoginWall, Outcome.LOGIN_WALL)),
    ("room_info_missing_keys.json", Raises(ParseFailure, Outcome.PARSE_FAILURE, "missing_keys")),
    # No webcast code is known to mean "no such room": an unknown code is a refusal, never not_found.
    ("room_info_unknown_code.json", Raises(Blocked, Outcome.BLOCKED, "10011")),
]


@pytest.mark.parametrize(("name", "expected"), ROOM_INFO_ERRORS, ids=[c[0] for c in ROOM_INFO_ERRORS])
def test_parse_room_info_fixture_errors(name: str, expected: Raises) -> None:
    body = fixture(name)
    expected.check(lambda: parse_room_info(body))


def _room_info(**data: Any) -> bytes:
    return json.dumps({"status_code": 0, "data": {"status": 2, "user_count": 10, **data}}).encode()


ROOM_INFO_INLINE = [
    (b"", Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_json")),
    (b"null", Raises(ParseFailure, Outcome.PARSE_FAILURE, "unexpected_shape")),
    (b'{"status_code":0,"data":[]}', Raises(ParseFailure, Outcome.PARSE_FAILURE, "missing_keys")),
    (
        b'{"status_code":10013,"data":{"message":"Url does not match"}}',
        Raises(Blocked, Outcome.BLOCKED, "10013"),
    ),
    (b'{"status_code":[1],"data":[]}', Raises(Blocked, Outcome.BLOCKED, "list")),
    (_room_info(user_count="lots"), Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_number")),
    (_room_info(like_count={"n": 1}), Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_number")),
    (_room_info(user_count=12.5), Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_number")),
]


@pytest.mark.parametrize(("body", "expected"), ROOM_INFO_INLINE)
def test_parse_room_info_inline_errors(body: bytes, expected: Raises) -> None:
    expected.check(lambda: parse_room_info(body))


def test_room_info_without_usable_id_has_no_session_and_bad_times_are_dropped() -> None:
    result = parse_room_info(_room_info(id_str="", id=None, create_time="yesterday", finish_time=-1))
    assert {r.metric: r.value for r in result.readings} == _readings(viewers=10, live_status=2)
    assert result.session is None
    # The int `id` is the fallback key; an unknown status is UNKNOWN, and a junk start time is None.
    result = parse_room_info(_room_info(status=9, id=int(LIVE_ROOM), start_time=-5, title=42))
    assert result.session == SessionObservation(LIVE_ROOM, LiveStatus.UNKNOWN)
    # finish_time counts only for an ended room.
    result = parse_room_info(_room_info(id_str=LIVE_ROOM, start_time=1731912600, finish_time=1731941845))
    assert result.session is not None and result.session.ended_at is None


# --- robustness: only PollError may escape -----------------------------------------------------

PARSERS = {"user_room": parse_user_room, "live_page": parse_live_page, "room_info": parse_room_info}
RESULT_TYPES = {"user_room": RoomLookup, "live_page": RoomLookup, "room_info": ParseResult}


def only_poll_errors(kind: str, body: bytes) -> None:
    """Run one parser: it returns its result type or raises a PollError; anything else fails the test."""
    try:
        result = PARSERS[kind](body)
    except PollError:
        return
    assert isinstance(result, RESULT_TYPES[kind])
    if isinstance(result, RoomLookup):
        assert result.room_id is None or (result.room_id.isascii() and result.room_id.isdigit())
        assert isinstance(result.status, LiveStatus)
    else:
        assert all(isinstance(r.value, float) for r in result.readings)
        assert result.session is None or result.session.key.isdigit()


def _sigi_page(state_json: str) -> bytes:
    """live_page_live.html with its SIGI_STATE content replaced (escaped like TikTok does)."""
    page = fixture("live_page_live.html")
    start = page.index(b">", page.index(b'id="SIGI_STATE"')) + 1
    end = page.index(b"</script>", start)
    return page[:start] + state_json.replace("</", "<\\/").encode() + page[end:]


KEYS = st.sampled_from(
    [
        "data", "user", "roomId", "status", "liveRoom", "stats", "followerCount", "message", "statusCode",
        "status_code", "user_count", "like_count", "total_user", "total_user_desp", "share_count",
        "follow_count", "id", "id_str", "title", "start_time", "create_time", "finish_time", "LiveRoom",
        "liveRoomUserInfo", "prompts",
    ]
) | st.text(max_size=6)  # fmt: skip
JSON_VALUES = json_values(
    KEYS,
    [0, 2, 3, 4, 5, 4003110, 10011, 1731912600, 1731912600000, -1, 2**64],
    ["user_not_found", "56.7K", "1,2 N", "0", "", LIVE_ROOM, "1731912600", "²"],
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize("kind", PARSERS)
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_poll_errors(kind: str, body: bytes) -> None:
    only_poll_errors(kind, body)


@given(body=st.binary(max_size=256))
def test_arbitrary_bytes_inside_sigi_state_only_raise_poll_errors(body: bytes) -> None:
    only_poll_errors(
        "live_page", b'<html><script id="SIGI_STATE" type="application/json">' + body + b"</script>"
    )
    only_poll_errors("live_page", b'<script id="SIGI_STATE" ' + body)


@pytest.mark.parametrize("kind", PARSERS)
@given(value=JSON_VALUES)
def test_arbitrary_json_only_raises_poll_errors(kind: str, value: Any) -> None:
    text = _dumps(value)
    only_poll_errors(kind, _sigi_page(text) if kind == "live_page" else text.encode())


def _documents() -> list[tuple[str, Any]]:
    docs: list[tuple[str, Any]] = []
    for path in sorted(FIXTURES.iterdir()):
        body = path.read_bytes()
        if path.suffix == ".json":
            docs.append(("user_room" if path.name.startswith("user_room") else "room_info", json.loads(body)))
        elif path.name in ("live_page_live.html", "live_page_ended.html", "live_page_never_live.html"):
            start = body.index(b">", body.index(b'id="SIGI_STATE"')) + 1
            docs.append(("live_page", json.loads(body[start : body.index(b"</script>", start)])))
    return docs


DOCUMENTS = _documents()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures_only_raise_poll_errors(data: st.DataObject) -> None:
    """Replace or delete one node of a real fixture document: the parsers must reach deep and stay sane."""
    kind, doc = data.draw(st.sampled_from(DOCUMENTS), label="fixture")
    path = data.draw(st.sampled_from(list(paths(doc))), label="path")
    value = data.draw(st.just(DELETE) | JSON_VALUES, label="value")
    text = _dumps(mutate(doc, path, value))
    only_poll_errors(kind, _sigi_page(text) if kind == "live_page" else text.encode())


def _nested(template: str, depth: int = 1000) -> str:
    """`template` with NESTED replaced by a list nested `depth` deep (orjson accepts up to 1024 levels)."""
    return template.replace("NESTED", "[" * depth + "]" * depth)


ADVERSARIAL = [
    # str()/repr() of a list nested ~1000 deep raises RecursionError: room ids, session keys, error
    # messages and NumberFormatError (which reprs its input) must never render such a value.
    ("user_room", _nested('{"data":{"user":{"roomId":NESTED,"status":2}}}')),
    ("user_room", _nested('{"message":NESTED}')),
    (
        "user_room",
        _nested('{"data":{"user":{},"liveRoom":{"status":NESTED},"stats":{"followerCount":NESTED}}}', 500),
    ),
    ("live_page", _nested('{"LiveRoom":{"liveRoomUserInfo":{"user":{"roomId":NESTED}}}}')),
    ("live_page", _nested('{"LiveRoom":{"liveRoomUserInfo":NESTED}}')),
    ("live_page", _nested("NESTED")),
    ("room_info", _nested('{"status_code":0,"data":{"status":2,"user_count":1,"id_str":NESTED}}')),
    ("room_info", _nested('{"status_code":0,"data":{"status":2,"user_count":1,"id":{"a":NESTED}}}')),
    ("room_info", _nested('{"status_code":0,"data":{"status":2,"user_count":1,"title":NESTED}}', 1020)),
    ("room_info", _nested('{"status_code":0,"data":{"status":2,"user_count":1,"like_count":NESTED}}')),
    (
        "room_info",
        _nested('{"status_code":0,"data":{"status":2,"user_count":1,"stats":{"total_user":NESTED}}}'),
    ),
    ("room_info", _nested('{"status_code":0,"data":{"status":2,"user_count":1,"create_time":NESTED}}')),
    ("room_info", _nested('{"status_code":0,"data":{"status":4,"user_count":1,"finish_time":NESTED}}')),
    ("room_info", _nested('{"status_code":NESTED,"data":{}}')),
    ("room_info", '{"status_code":0,"data":{"status":2,"user_count":1e308,"like_count":"9.9B"}}'),
    ("room_info", '{"status_code":0,"data":{"status":2,"user_count":184467440737095516160000}}'),
]


@pytest.mark.parametrize(("kind", "text"), ADVERSARIAL)
def test_adversarial_documents_only_raise_poll_errors(kind: str, text: str) -> None:
    only_poll_errors(kind, _sigi_page(text) if kind == "live_page" else text.encode())


def test_deeply_nested_values_are_no_value() -> None:
    body = _nested('{"data":{"user":{"roomId":NESTED,"status":2}}}').encode()
    assert parse_user_room(body) == RoomLookup(None, LiveStatus.LIVE)
    body = _nested('{"status_code":0,"data":{"status":2,"user_count":1,"id_str":NESTED}}').encode()
    assert parse_room_info(body).session is None
    body = _nested(
        '{"status_code":0,"data":{"status":2,"user_count":1,"id_str":"1","create_time":NESTED}}'
    ).encode()
    assert parse_room_info(body).session == SessionObservation("1", LiveStatus.LIVE)
    body = _nested('{"status_code":0,"data":{"status":2,"user_count":NESTED}}').encode()
    Raises(ParseFailure, Outcome.PARSE_FAILURE, "bad_number").check(lambda: parse_room_info(body))


@pytest.mark.parametrize(
    "written",
    [
        "shop_vn",
        "@shop_vn",
        " @shop_vn ",
        "https://www.tiktok.com/@shop_vn",
        "https://www.tiktok.com/@shop_vn/live",
        "https://www.tiktok.com/@shop_vn/live?lang=vi-VN&enter_from_merge=others",
        "www.tiktok.com/@shop_vn/",
        "https://m.tiktok.com/@shop_vn/video/7400000000000000000",
    ],
)
def test_account_handle_takes_every_way_people_write_an_account(written: str) -> None:
    assert account_handle(written) == "shop_vn"


@pytest.mark.parametrize(
    "written",
    ["", "@", "shop vn", "https://example.com/@shop_vn", "https://www.tiktok.com/tag/x", "@shop/vn"],
)
def test_account_handle_refuses_what_is_not_an_account(written: str) -> None:
    assert account_handle(written) is None
