"""TikTok live rooms: the `live` kind (shapes: shared/platforms.md section 2.1).

The room id comes from `api-live/user/room` (`data.user.roomId`), falling back to the live page's
`SIGI_STATE` JSON; counters come from `webcast/room/info`. Only `room/info` and `api-live/user/room`
status are trusted: the live page and `check_alive` keep serving an ended room as live for hours.
A new room id is a new live session. Tolerated [U] shapes: the `user_not_found` envelope and
non-zero `room/info` codes other than 4003110 (treated as a room that cannot be read).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

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

ROOM_INFO_METRICS = (
    MetricSpec(Metric.VIEWERS, (("user_count",),)),
    MetricSpec(Metric.VIEWS, (("stats", "total_user"), ("stats", "total_user_desp"))),
    MetricSpec(Metric.LIKES, (("like_count",), ("stats", "like_count"))),
    MetricSpec(Metric.SHARES, (("stats", "share_count"),)),
    MetricSpec(Metric.NEW_FOLLOWERS, (("stats", "follow_count"),)),
)


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


def parse_user_room(body: bytes) -> RoomLookup:
    """`api-live/user/room` -> the current room id and status."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", "user/room is not an object")
    if doc.get("message") == "user_not_found":
        raise NotFound("TikTok user not found")
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
    return account_handle(handle).lower() if isinstance(handle, str) and account_handle(handle) else None  # type: ignore[union-attr]


def parse_room_info(body: bytes) -> ParseResult:
    """`webcast/room/info` -> counters and the session they belong to."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", "room/info is not an object")
    code = doc.get("status_code")
    if code == AGE_RESTRICTED_CODE:
        raise LoginWall("age-restricted room: needs a logged-in sessionid cookie")
    if code not in (0, None):
        raise NotFound(f"room/info answered status_code {brief(code)}")
    data = doc.get("data")
    if not isinstance(data, dict) or "status" not in data or "user_count" not in data:
        raise ParseFailure("missing_keys", "room/info data without status/user_count")
    status = _status(data["status"])
    readings = readings_from(data, ROOM_INFO_METRICS)
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
        parsed = parse_room_info((await _room_info(ctx, room_id)).body)
    except NotFound:
        state.room_id = None
        raise
    parsed.readings.extend(followers)
    if parsed.session is not None and parsed.session.status is LiveStatus.ENDED:
        # Ended rooms are re-resolved on the next poll, never polled forever.
        state.room_id, state.ended_room_id = None, room_id
    return PollResult(Outcome.OK, parsed)


async def room_history(ctx: PollContext[RoomState], room_ids: Sequence[str]) -> AsyncIterator[ParseResult]:
    """Final counters of rooms the target saw: room/info still answers for an ended room id."""
    for room_id in room_ids:
        yield parse_room_info((await _room_info(ctx, room_id)).body)


def reparse_live(raw: RawResponse) -> ParseResult | None:
    """A stored body of a `live` poll back to its readings, by the endpoint that served it."""
    path = urlsplit(raw.url).path
    if path.rstrip("/").endswith("/webcast/room/info"):
        return parse_room_info(raw.body)
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
