"""TikTok live rooms: the `live` kind (shapes: shared/platforms.md section 2.1).

The room id comes from `api-live/user/room` (`data.user.roomId`), falling back to the live page's
`SIGI_STATE` JSON; counters come from `webcast/room/info`. Only `room/info` and `api-live/user/room`
status are trusted: the live page and `check_alive` keep serving an ended room as live for hours.
A new room id is a new live session.

Counters the platform does not tell. Unsigned `room/info` (what we can call) answers `like_count: 0`
for a room with 946,807 likes (real capture, shared/real-captures/tiktok), and its `stats` block is
zero-filled in the same way (`share_count`, `follow_count`, `enter_count`; logged-in `room/enter` has
`stats.like_count 0` beside a top-level `like_count 8`). So a zero likes, shares, new followers or views
value is no reading: the metric stays unknown rather than a false 0. A non-zero value is stored. No
unsigned, logged-out source tells likes: the running total is in the WebSocket `Like`/`RoomUserSeq`
events and signed `room/info`, which we do not use. `user_count` (viewers) agrees with
`api-live/user/room` in the captures (792 against 772 a moment apart) and is trusted, zero included, while
the room runs; a room that is not running has no concurrent viewers to report.

Webcast error envelopes `{data: {message, prompts}, status_code}` (the same on every webcast endpoint)
are classified by what they mean:
- 20003 "User doesn't login" (real capture) and 4003110 age-restricted: login wall;
- 30003 "room has finished" (real capture): the room ended. Its session ends (status ended), no counter
  is written (its last counters stand) and the room is not polled again;
- 10013 "Url does not match" (platforms.md: signature required) and any code not listed here: the
  platform refused the request (Blocked, the code in the detail), never "not found". [U] no code is known
  to mean "no such room": a room id comes from the account's own answer, so it exists.
- an HTML page where `room/info` or `user/room` JSON belongs is TikTok refusing, classified like its
  pages (WAF or captcha: Blocked; a link to `/login`: LoginWall) [U: no capture of one];
- `api-live/user/room` `message: user_not_found` is NotFound; `statusCode` 19881007 ("does not exist or
  never went live", omkarcloud/tiktok-scraper's docs; no capture) [U] is an account that is not live.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from collector.api import (
    Blocked,
    FieldProblem,
    HttpError,
    LoginWall,
    NotFound,
    Outcome,
    ParseFailure,
    PollContext,
    PollResult,
    RawResponse,
)
from schemas.types import LIVE_STATUS_CODE, LiveStatus, Metric, ParseResult, Reading, SessionObservation
from scrapers.extract import MetricSpec, first, load_json, readings_from, script_json
from scrapers.normalise import NumberFormatError, to_utc
from scrapers.tiktok.common import WEB_PARAMS, brief, classify_page_without_data, referer

# Status codes: 2 live, 3 paused, 4 ended (TikTokLiveJava LiveDataMapper, yt-dlp); 5 not live [U].
ROOM_STATUS = {2: LiveStatus.LIVE, 3: LiveStatus.PAUSED, 4: LiveStatus.ENDED, 5: LiveStatus.ENDED}
AGE_RESTRICTED_CODE = 4003110
NOT_LOGGED_IN_CODE = 20003
ROOM_FINISHED_CODE = 30003
LOGIN_CODES = {NOT_LOGGED_IN_CODE: "not logged in", AGE_RESTRICTED_CODE: "age-restricted room"}
NO_SUCH_ACCOUNT_OR_NEVER_LIVE = 19881007  # [U] omkarcloud/tiktok-scraper tiktok/live.py

VIEWERS = MetricSpec(Metric.VIEWERS, (("user_count",),))
ROOM_INFO_COUNTERS = (
    MetricSpec(Metric.VIEWS, (("stats", "total_user"), ("stats", "total_user_desp")), zero_is_unknown=True),
    MetricSpec(Metric.LIKES, (("like_count",), ("stats", "like_count")), zero_is_unknown=True),
    MetricSpec(Metric.SHARES, (("stats", "share_count"),), zero_is_unknown=True),
    MetricSpec(Metric.NEW_FOLLOWERS, (("stats", "follow_count"),), zero_is_unknown=True),
)
RUNNING = (LiveStatus.LIVE, LiveStatus.PAUSED)


# TikTok usernames: letters, digits, '_' and '.' (platforms.md 2.1); the length cap is generous.
_HANDLE = re.compile(r"[A-Za-z0-9_.]{1,64}")
TIKTOK_HOSTS = ("tiktok.com", "www.tiktok.com", "m.tiktok.com", "vt.tiktok.com")


def account_handle(value: str) -> str | None:
    """The handle in `@handle`, `handle`, or a profile/live URL (`https://www.tiktok.com/@handle/live`);
    None for anything else. Everyone writes handles with the '@', the API wants them without."""
    text = value.strip()
    if "/" in text:
        try:
            parts = urlsplit(text if "://" in text else f"https://{text}")
        except ValueError:
            return None
        if (parts.hostname or "").lower() not in TIKTOK_HOSTS:
            return None
        segments = [s for s in unquote(parts.path).split("/") if s]
        text = segments[0] if segments and segments[0].startswith("@") else ""
    handle = text.removeprefix("@")
    return handle if _HANDLE.fullmatch(handle) else None


def check_live(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    if "account" in params and account_handle(params["account"]) is None:
        yield FieldProblem(
            "account", f"{params['account'][:80]!r} is not a TikTok @handle or profile/live URL"
        )


@dataclass(slots=True)
class RoomState:
    """What a `live` target keeps between polls: the room it is reading and the last one that ended."""

    room_id: str | None = None
    ended_room_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoomLookup:
    """Who the account is live as right now, according to one discovery source."""

    room_id: str | None
    status: LiveStatus
    followers: int | None = None


def _status(code: object) -> LiveStatus:
    return ROOM_STATUS.get(code, LiveStatus.UNKNOWN) if isinstance(code, int) else LiveStatus.UNKNOWN


def _room_id(value: object) -> str | None:
    # Only a string or an int can be an id: str() of a deeply nested list raises RecursionError, and
    # str.isdigit() alone accepts non-ASCII digits ("²", "٧").
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text.isascii() and text.isdigit() and text.strip("0") else None


def _followers(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _api_json(body: bytes, what: str) -> Any:
    """The JSON of an API answer; an HTML page in its place is TikTok refusing (block or login page)."""
    if body.lstrip()[:1] == b"<":
        raise classify_page_without_data(body, f"{what} answered an HTML page")
    return load_json(body)


def parse_user_room(body: bytes) -> RoomLookup:
    """`api-live/user/room` -> the current room id and status."""
    doc = _api_json(body, "user/room")
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", "user/room is not an object")
    if doc.get("message") == "user_not_found":
        raise NotFound("TikTok user not found")
    if doc.get("statusCode") == NO_SUCH_ACCOUNT_OR_NEVER_LIVE:
        return RoomLookup(None, LiveStatus.UNKNOWN)
    user = first(doc, ("data", "user"))
    if not isinstance(user, dict):
        raise ParseFailure(
            "missing_keys", f"user/room without data.user (message {brief(doc.get('message'))})"
        )
    status = _status(first(doc, ("data", "liveRoom", "status"), ("data", "user", "status")))
    return RoomLookup(
        _room_id(user.get("roomId")), status, _followers(first(doc, ("data", "stats", "followerCount")))
    )


def parse_live_page(body: bytes) -> RoomLookup:
    """`/@{user}/live` HTML -> room id and status from the embedded SIGI_STATE."""
    state = script_json(body, b'id="SIGI_STATE"')
    if state is None:
        raise classify_page_without_data(body, "live page without SIGI_STATE")
    if not isinstance(state, dict):
        raise ParseFailure("unexpected_shape", "SIGI_STATE is not an object")
    info = first(state, ("LiveRoom", "liveRoomUserInfo"))
    if info is None:
        # No LiveRoom: the user never went live, or does not exist (platforms.md 2.1).
        return RoomLookup(None, LiveStatus.UNKNOWN)
    if not isinstance(info, dict):
        raise ParseFailure("unexpected_shape", "LiveRoom.liveRoomUserInfo is not an object")
    status = _status(first(info, ("liveRoom", "status"), ("user", "status")))
    room_id = _room_id(first(info, ("user", "roomId")))
    return RoomLookup(room_id, status, _followers(first(info, ("stats", "followerCount"))))


def _time(value: object) -> datetime | None:
    # Only scalars: NumberFormatError's message reprs its input, which fails for deeply nested values.
    if not value or not isinstance(value, str | int | float):
        return None
    try:
        return to_utc(value)  # type: ignore[arg-type]
    except NumberFormatError:
        return None


def _owner(owner: object) -> str | None:
    """The room owner's handle, lower case (handles ignore case): links the room to the shop's view."""
    handle = owner.get("display_id") if isinstance(owner, dict) else None
    account = account_handle(handle) if isinstance(handle, str) else None
    return account.lower() if account else None


def _webcast_error(doc: dict[str, Any], room_id: str | None) -> ParseResult:
    """A non-zero webcast `status_code`: the room's end (as a result), or the error it stands for."""
    code = doc.get("status_code")
    message = first(doc, ("data", "message"), ("data", "prompts"))
    said = (
        f"status_code {brief(code)} ({brief(message)})"
        if isinstance(message, str)
        else f"status_code {brief(code)}"
    )
    known = code if type(code) is int else None  # a list or dict cannot be looked up
    if known in LOGIN_CODES:
        raise LoginWall(f"room/info {said}: {LOGIN_CODES[known]}, needs a logged-in sessionid cookie")
    if known == ROOM_FINISHED_CODE:
        return room_finished(room_id)
    raise Blocked(f"room/info refused the request: {said}")


def room_finished(room_id: str | None) -> ParseResult:
    """The room has ended: its status, and no counters (the last ones read stand)."""
    readings = [Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[LiveStatus.ENDED]))]
    return ParseResult(readings, SessionObservation(room_id, LiveStatus.ENDED) if room_id else None)


def parse_room_info(body: bytes, room_id: str | None = None) -> ParseResult:
    """`webcast/room/info` -> counters and the session they belong to.

    `room_id` is the room asked for: an error envelope does not name it.
    """
    doc = _api_json(body, "room/info")
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", "room/info is not an object")
    if doc.get("status_code") not in (0, None):
        return _webcast_error(doc, room_id)
    data = doc.get("data")
    if not isinstance(data, dict) or "status" not in data or "user_count" not in data:
        raise ParseFailure("missing_keys", "room/info data without status/user_count")
    status = _status(data["status"])
    # A room that is not running has no concurrent viewers, whatever `user_count` says.
    readings = readings_from(
        data, (VIEWERS, *ROOM_INFO_COUNTERS) if status in RUNNING else ROOM_INFO_COUNTERS
    )
    readings.append(Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[status])))
    session = SessionObservation(
        key=_room_id(data.get("id_str")) or _room_id(data.get("id")) or "",
        status=status,
        title=data.get("title") if isinstance(data.get("title"), str) else None,
        started_at=_time(data.get("start_time") or data.get("create_time")),
        ended_at=_time(data.get("finish_time")) if status is LiveStatus.ENDED else None,
        account=_owner(data.get("owner")),
    )
    return ParseResult(readings, session if session.key else None)


async def _room_info(ctx: PollContext[RoomState], room_id: str) -> RawResponse:
    return await ctx.http.get(
        f"{ctx.base_urls['webcast']}/webcast/room/info/",
        params={**WEB_PARAMS, "room_id": room_id},
        headers=referer(ctx.base_urls["web"]),
    )


async def _lookup(ctx: PollContext[RoomState], account: str) -> RoomLookup:
    web = ctx.base_urls["web"]
    params = {**WEB_PARAMS, "uniqueId": account, "sourceType": "54"}
    try:
        raw = await ctx.http.get(f"{web}/api-live/user/room/", params=params, headers=referer(web))
        return parse_user_room(raw.body)
    except (ParseFailure, HttpError, Blocked):
        # The API is the reliable path; the live page is the documented fallback.
        raw = await ctx.http.get(f"{web}/@{account}/live", headers=referer(web))
        return parse_live_page(raw.body)


async def poll_live(ctx: PollContext[RoomState]) -> PollResult:
    """One poll of a `live` target: resolve the room (once per room), then read room/info."""
    state = ctx.state
    followers: list[Reading] = []
    room_id = state.room_id
    if room_id is None:
        account = account_handle(ctx.target.params["account"])
        if account is None:  # checked at load; a hand-built target may still get here
            raise NotFound(f"{ctx.target.params['account'][:80]!r} is not a TikTok account")
        lookup = await _lookup(ctx, account)
        if lookup.followers is not None:
            followers.append(Reading(Metric.FOLLOWERS, float(lookup.followers)))
        stale = lookup.room_id is not None and lookup.room_id == state.ended_room_id
        if lookup.room_id is None or stale or lookup.status is LiveStatus.ENDED:
            return _not_live(lookup, followers)
        room_id = state.room_id = lookup.room_id
    try:
        parsed = parse_room_info((await _room_info(ctx, room_id)).body, room_id)
    except NotFound:
        state.room_id = None
        raise
    counters = any(r.metric is not Metric.LIVE_STATUS for r in parsed.readings)  # none once it finished
    parsed.readings.extend(followers)
    if parsed.session is not None and parsed.session.status is LiveStatus.ENDED:
        # Ended rooms are re-resolved on the next poll, never polled forever.
        state.room_id, state.ended_room_id = None, room_id
    return PollResult(Outcome.OK if counters else Outcome.NOT_LIVE, parsed)


async def room_history(ctx: PollContext[RoomState], room_ids: Sequence[str]) -> AsyncIterator[ParseResult]:
    """Final counters of rooms the target saw: room/info still answers for an ended room id."""
    for room_id in room_ids:
        yield parse_room_info((await _room_info(ctx, room_id)).body, room_id)


def reparse_live(raw: RawResponse) -> ParseResult | None:
    """A stored body of a `live` poll back to its readings, by the endpoint that served it."""
    path = urlsplit(raw.url).path
    if path.rstrip("/").endswith("/webcast/room/info"):
        asked = parse_qs(urlsplit(raw.url).query).get("room_id", [None])[0]
        return parse_room_info(raw.body, asked)
    if "/api-live/user/room" in path:
        lookup = parse_user_room(raw.body)
    elif path.rstrip("/").endswith("/live"):
        lookup = parse_live_page(raw.body)
    else:
        return None
    followers = [Reading(Metric.FOLLOWERS, float(lookup.followers))] if lookup.followers is not None else []
    if lookup.room_id is None or lookup.status is LiveStatus.ENDED:
        return _not_live(lookup, followers).parsed
    return ParseResult(followers)  # a live room's counters are in its room/info answer


def _not_live(lookup: RoomLookup, followers: list[Reading]) -> PollResult:
    status = LiveStatus.ENDED if lookup.room_id else LiveStatus.UNKNOWN
    readings = [Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[status])), *followers]
    session = SessionObservation(lookup.room_id, LiveStatus.ENDED) if lookup.room_id else None
    return PollResult(Outcome.NOT_LIVE, ParseResult(readings, session))
