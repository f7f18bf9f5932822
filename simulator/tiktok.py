"""TikTok live routes, each real host emulated as a path prefix (shapes: platforms.md 2.1 and 6).

Choices where platforms.md marks the shape [U]:
- unknown user on api-live: `statusCode 19881007`, `message "user_not_found"`, `data {}` (the code
  several public clients test for);
- unknown room on room/info: `status_code 10011`, `data {}` plus `extra.now`;
- an 18+ account's api-live and live page are served normally; only room/info refuses it;
- ended rooms answer `check_alive` with alive=true for 9.5 h, the staleness OmniDL reported.
"""

from __future__ import annotations

import hashlib
import html

import orjson
from aiohttp import web

from simulator.counters import STATUS_ENDED, AccountState, account_state, compact_count, session_counters
from simulator.keys import CLOCK, SCENARIO, json_response
from simulator.scenario import Account, Scenario, Session, find_room

NAME = "tiktok"
WWW = "/www.tiktok.com"
WEBCAST = "/webcast.tiktok.com"

USER_NOT_FOUND_CODE = 19881007
PARAMS_ERROR_CODE = 40002  # [U] only the message "params_error" is documented
ROOM_NOT_FOUND_CODE = 10011  # [U]
AGE_RESTRICTED_CODE = 4003110
STALE_ALIVE_SECONDS = 9.5 * 3600


def user_id_for(seed: int, unique_id: str) -> str:
    """A stable numeric TikTok user id (owner.id / user.id)."""
    digest = hashlib.blake2b(f"user:{seed}:{unique_id}".encode(), digest_size=8).digest()
    return "6" + f"{int.from_bytes(digest, 'big') % 10**18:018d}"


def _unix(epoch: float, scenario_seconds: float) -> int:
    """Unix seconds of a scenario instant, as TikTok's integer `create_time`/`startTime`."""
    return int(epoch + scenario_seconds)


def _user(scenario: Scenario, state: AccountState) -> dict:
    """`user{}` as in api-live and SIGI_STATE; never-live users have an empty roomId."""
    account = state.account
    return {
        "id": user_id_for(scenario.seed, account.unique_id),
        "uniqueId": account.unique_id,
        "nickname": account.nickname,
        "roomId": state.session.room_id if state.session else "",
        "status": state.counters.status if state.counters else STATUS_ENDED,
    }


def _live_room(state: AccountState, epoch: float) -> dict:
    """`liveRoom{}`: current viewers and cumulative entries; ended rooms keep frozen entries."""
    assert state.session is not None and state.counters is not None
    return {
        "title": state.session.title,
        "startTime": _unix(epoch, state.session.start),
        "status": state.counters.status,
        "liveRoomStats": {"userCount": state.counters.viewers, "enterCount": state.counters.views},
    }


def api_live_body(scenario: Scenario, state: AccountState | None, epoch: float) -> dict:
    """Body of `api-live/user/room/`; stale room ids are kept after a broadcast ends (2.1)."""
    if state is None:
        return {"statusCode": USER_NOT_FOUND_CODE, "message": "user_not_found", "data": {}}
    data: dict = {"user": _user(scenario, state)}
    if state.session is not None:
        data["liveRoom"] = _live_room(state, epoch)
    data["stats"] = {"followerCount": state.followers}
    return {"statusCode": 0, "message": "", "data": data}


def sigi_state(scenario: Scenario, state: AccountState | None, epoch: float) -> dict:
    """SIGI_STATE JSON; no `LiveRoom` key for unknown or never-live users (2.1, 6)."""
    sigi: dict = {
        "AppContext": {"appContext": {"language": "vi-VN", "region": "VN", "appId": 1988}},
        "SEO": {"metaParams": {"title": "TikTok LIVE", "canonicalHref": ""}},
    }
    if state is not None and state.session is not None:
        sigi["LiveRoom"] = {
            "liveRoomUserInfo": {
                "user": _user(scenario, state),
                "liveRoom": _live_room(state, epoch),
                "stats": {"followerCount": state.followers},
            }
        }
    return sigi


def live_page_html(unique_id: str, nickname: str, sigi: dict) -> str:
    """The `/@user/live` page: filler markup around the SIGI_STATE script tag."""
    # "</" inside a script element would end it early; browsers and TikTok escape it the same way.
    state_json = orjson.dumps(sigi).decode().replace("</", "<\\/")
    name = html.escape(nickname)
    return (
        '<!DOCTYPE html><html lang="vi-VN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{name} (@{html.escape(unique_id)}) LIVE | TikTok</title>"
        f'<meta property="og:title" content="{name} is LIVE">'
        '<link rel="preconnect" href="https://sf16-website-login.neutral.ttwstatic.com">'
        '<script>window.__webpack_public_path__="/static/";</script>'
        "</head><body>"
        '<div id="app"><div class="tiktok-live-root" data-e2e="live-room"></div></div>'
        f'<script id="SIGI_STATE" type="application/json">{state_json}</script>'
        '<script src="/static/live/main.js" async></script>'
        "</body></html>"
    )


def room_info_body(
    scenario: Scenario, found: tuple[Account, Session] | None, elapsed: float, epoch: float
) -> dict:
    """Body of `webcast/room/info/` for one room at scenario second `elapsed` (2.1, 6)."""
    now_ms = round((epoch + elapsed) * 1000)
    if found is None:
        return {"status_code": ROOM_NOT_FOUND_CODE, "extra": {"now": now_ms}, "data": {}}
    account, session = found
    if account.kind == "age_restricted":
        return {"status_code": AGE_RESTRICTED_CODE, "data": {"prompts": ""}}
    counters = session_counters(scenario.seed, session, elapsed)
    started = _unix(epoch, session.start)
    return {
        "status_code": 0,
        "extra": {"now": now_ms},
        "data": {
            "id": int(session.room_id),
            "id_str": session.room_id,
            "status": counters.status,
            "title": session.title,
            # The room is created a few seconds before the stream starts.
            "create_time": started - 3,
            "start_time": started,
            "finish_time": _unix(epoch, session.end) if counters.status == STATUS_ENDED else 0,
            "user_count": counters.viewers,
            "like_count": counters.likes,
            "has_commerce_goods": account.has_commerce_goods,
            "stats": {
                "total_user": counters.views,
                "total_user_desp": compact_count(counters.views),
                "like_count": counters.likes,
                "share_count": counters.shares,
                "follow_count": counters.follows,
                "enter_count": counters.views,
            },
            "owner": {
                "id": user_id_for(scenario.seed, account.unique_id),
                "display_id": account.unique_id,
                "nickname": account.nickname,
            },
        },
    }


def is_alive(found: tuple[Account, Session] | None, elapsed: float) -> bool:
    """check_alive's answer: true while live, and (stale) for hours after the room ended (2.1)."""
    return found is not None and elapsed < found[1].end + STALE_ALIVE_SECONDS


def _lookup_state(scenario: Scenario, unique_id: str, elapsed: float) -> AccountState | None:
    """The account's state, or None for an unknown user."""
    account = scenario.tiktok.get(unique_id)
    return None if account is None else account_state(scenario, account, elapsed)


async def handle_api_live_user_room(request: web.Request) -> web.Response:
    """GET /www.tiktok.com/api-live/user/room/?aid=1988&uniqueId=U&sourceType=54."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    unique_id = request.query.get("uniqueId", "")
    if not unique_id:
        return json_response({"statusCode": PARAMS_ERROR_CODE, "message": "params_error", "data": {}})
    elapsed = clock.elapsed()
    state = _lookup_state(scenario, unique_id, elapsed)
    return json_response(api_live_body(scenario, state, clock.epoch()))


async def handle_live_page(request: web.Request) -> web.Response:
    """GET /www.tiktok.com/@U/live: HTML with SIGI_STATE."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    unique_id = request.match_info["unique_id"]
    state = _lookup_state(scenario, unique_id, clock.elapsed())
    sigi = sigi_state(scenario, state, clock.epoch())
    nickname = state.account.nickname if state else unique_id
    return web.Response(text=live_page_html(unique_id, nickname, sigi), content_type="text/html")


async def handle_room_info(request: web.Request) -> web.Response:
    """GET /webcast.tiktok.com/webcast/room/info/?aid=1988&room_id=N."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    elapsed = clock.elapsed()
    found = find_room(scenario, request.query.get("room_id", ""), elapsed)
    return json_response(room_info_body(scenario, found, elapsed, clock.epoch()))


async def handle_check_alive(request: web.Request) -> web.Response:
    """GET /webcast.tiktok.com/webcast/room/check_alive/?aid=1988&room_ids=a,b."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    elapsed = clock.elapsed()
    answers = []
    for room_id in request.query.get("room_ids", "").split(","):
        room_id = room_id.strip()
        if not room_id.isdigit():
            continue  # the real endpoint's handling of junk ids is unknown; we just skip them
        alive = is_alive(find_room(scenario, room_id, elapsed), elapsed)
        answers.append({"room_id": int(room_id), "alive": alive})
    return json_response({"status_code": 0, "data": answers})


def truth(scenario: Scenario, elapsed: float, epoch: float) -> dict:
    """Ground truth per account at `elapsed`: what the routes serve, plus what they hide (18+)."""
    accounts = {}
    for account in scenario.tiktok.values():
        state = account_state(scenario, account, elapsed)
        session, counters = state.session, state.counters
        accounts[account.unique_id] = {
            "kind": account.kind,
            "room_id": session.room_id if session else None,
            "status": counters.status if counters else None,
            "title": session.title if session else None,
            "start_time": _unix(epoch, session.start) if session else None,
            "finish_time": _unix(epoch, session.end)
            if counters and counters.status == STATUS_ENDED
            else None,
            "viewers": counters.viewers if counters else 0,
            "views": counters.views if counters else 0,
            "likes": counters.likes if counters else 0,
            "shares": counters.shares if counters else 0,
            "follows": counters.follows if counters else 0,
            "followers": state.followers,
        }
    return accounts


def register(app: web.Application) -> None:
    """Add the TikTok routes; the app must carry SCENARIO and CLOCK."""
    app.router.add_get(f"{WWW}/api-live/user/room/", handle_api_live_user_room)
    app.router.add_get(WWW + "/@{unique_id}/live", handle_live_page)
    app.router.add_get(f"{WEBCAST}/webcast/room/info/", handle_room_info)
    app.router.add_get(f"{WEBCAST}/webcast/room/check_alive/", handle_check_alive)
