"""TikTok live and hashtag routes, each real host emulated as a path prefix (platforms.md 2.1, 2.2, 6).

Choices where platforms.md marks the shape [U]:
- unknown user on api-live: `statusCode 19881007`, `message "user_not_found"`, `data {}` (the code
  several public clients test for);
- unknown room on room/info: `status_code 10011`, `data {}` plus `extra.now` (no capture shows what the
  real site answers; the collector reads any code it does not know as a refusal, never "not found");
  the real webcast envelopes (20003, 30003) and unsigned zero likes are fault modes (simulator/faults.py);
- an 18+ account's api-live and live page are served normally; only room/info refuses it;
- ended rooms answer `check_alive` with alive=true for 9.5 h, the staleness OmniDL reported;
- `api/challenge/detail` answers only calls carrying an `X-Bogus` parameter (any value: the tag page's
  script computes a fake one); without it, an empty HTTP 200, as TikTok answers unsigned callers;
- an unknown tag: challenge/detail `{"statusCode": 10205, "statusMsg": "challenge not found"}` with no
  `challengeInfo`, and a tag page (HTTP 200) without the header, saying "Không tìm thấy hashtag" /
  "Couldn't find this hashtag";
- tag-page header numbers are truncated like `total_user_desp` ("1.6K posts", "<strong>3.2M</strong>
  views"); tags flagged `zero_stats_video_count` serve `stats.videoCount: 0` beside the real `statsV2`.
"""

from __future__ import annotations

import hashlib
import html

import orjson
from aiohttp import web

from simulator.counters import (
    STATUS_ENDED,
    AccountState,
    HashtagCounters,
    account_state,
    compact_count,
    hashtag_counters,
    session_counters,
)
from simulator.keys import CLOCK, SCENARIO, json_response
from simulator.scenario import Account, Hashtag, Scenario, Session, find_room

NAME = "tiktok"
WWW = "/www.tiktok.com"
WEBCAST = "/webcast.tiktok.com"

USER_NOT_FOUND_CODE = 19881007
PARAMS_ERROR_CODE = 40002  # [U] only the message "params_error" is documented
ROOM_NOT_FOUND_CODE = 10011  # [U]
AGE_RESTRICTED_CODE = 4003110
STALE_ALIVE_SECONDS = 9.5 * 3600
CHALLENGE_NOT_FOUND = {"statusCode": 10205, "statusMsg": "challenge not found"}  # [U]
HASHTAGS_TRUTH_KEY = "hashtags"  # truth()["hashtags"]: never a username (the scenarios check)


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


def challenge_id_for(seed: int, name: str) -> str:
    """A stable numeric challenge id (challengeInfo.challenge.id, the snssdk deep link)."""
    digest = hashlib.blake2b(f"challenge:{seed}:{name}".encode(), digest_size=8).digest()
    return str(10**15 + int.from_bytes(digest, "big") % (9 * 10**15))  # 16 digits


def header_text(tag: Hashtag, counters: HashtagCounters) -> str:
    """The tag page header's visible text: "1.6K posts" (newer markup) or "3.2M views" (older)."""
    if tag.markup == "views":
        return f"{compact_count(counters.views)} views"
    return f"{compact_count(counters.posts)} posts"


def challenge_detail_body(scenario: Scenario, tag: Hashtag | None, elapsed: float) -> dict:
    """Body of a signed `api/challenge/detail/` call (platforms.md 2.2 and 6)."""
    if tag is None:
        return dict(CHALLENGE_NOT_FOUND)
    counters = hashtag_counters(scenario.seed, tag, elapsed)
    return {
        "statusCode": 0,
        "statusMsg": "",
        "challengeInfo": {
            "challenge": {
                "id": challenge_id_for(scenario.seed, tag.name),
                "title": tag.name,
                "desc": tag.desc,
                "profileLarger": "",
                "profileMedium": "",
                "profileThumb": "",
                "coverLarger": "",
                "isCommerce": False,
            },
            "stats": {
                "videoCount": 0 if tag.zero_stats_video_count else counters.posts,
                "viewCount": counters.views,
            },
            "statsV2": {"videoCount": str(counters.posts), "viewCount": str(counters.views)},
        },
        "shareMeta": {
            "title": f"#{tag.name} on TikTok",
            "desc": f"{compact_count(counters.views)} views - Watch videos about #{tag.name} on TikTok",
        },
    }


# The page's own data fetch, as TikTok's web app makes it: on load, sign the challenge/detail URL and
# call it. The host prefix comes from location.pathname, so the page works under the simulator's
# /www.tiktok.com prefix and at a real site root alike. X-Bogus and msToken are fake (FNV-1a hashes).
TAG_PAGE_SCRIPT = """(function () {
  var name = %s;
  var path = location.pathname;
  var prefix = path.slice(0, path.lastIndexOf('/tag/'));
  function fnv(text, basis) {
    var h = basis >>> 0;
    for (var i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 16777619) >>> 0; }
    return ('0000000' + h.toString(16)).slice(-8);
  }
  var msToken = 'sim' + fnv(name, 2166136261) + fnv(navigator.userAgent, 33554467);
  var url = prefix + '/api/challenge/detail/?aid=1988&app_name=tiktok_web&device_platform=web_pc' +
    '&challengeName=' + encodeURIComponent(name) + '&msToken=' + msToken;
  var bogus = 'DFSzsw' + fnv(url, 2166136261) + fnv(url, 16777619);
  window.addEventListener('load', function () {
    fetch(url + '&X-Bogus=' + bogus, {credentials: 'include'})
      .then(function (r) { return r.json(); })
      .then(function (d) { document.documentElement.setAttribute('data-challenge', String(d.statusCode)); })
      .catch(function () {});
  });
})();"""


def tag_page_html(scenario: Scenario, name: str, tag: Hashtag | None, elapsed: float) -> str:
    """The `/tag/{name}` page: server-rendered header (or the not-found text) and the signing script."""
    # "</" inside a script element would end it early; escape it the way TikTok does.
    script = TAG_PAGE_SCRIPT % orjson.dumps(name).decode().replace("</", "<\\/")
    title = html.escape(name)
    if tag is None:
        main = (
            '<div class="css-1osbocj-DivErrorContainer" data-e2e="challenge-not-found">'
            '<p class="css-1y4x9xk-PTitle">Không tìm thấy hashtag</p>'
            '<p class="css-1gda4zk-PDesc">Couldn\'t find this hashtag</p></div>'
        )
        meta = ""
    else:
        counters = hashtag_counters(scenario.seed, tag, elapsed)
        count, _, word = header_text(tag, counters).partition(" ")
        shown = f"<strong>{count}</strong> {word}" if tag.markup == "views" else f"{count} {word}"
        main = (
            '<div class="css-1qfmy5j-DivShareLayoutHeader" data-e2e="challenge-page">'
            f'<h1 data-e2e="challenge-title" class="css-1qj9rby-H1ShareTitle">#{title}</h1>'
            f'<h2 data-e2e="challenge-vvcount" title="{tag.markup}" class="css-1ypr8q2-H2ShareSubTitle">'
            f"{shown}</h2>"
            f'<h2 data-e2e="challenge-desc" class="css-1bprpr1-H2ShareDesc">{html.escape(tag.desc)}</h2>'
            '</div><div data-e2e="challenge-item-list" class="css-1qb12g8-DivThreeColumnContainer"></div>'
        )
        meta = (
            '<meta property="al:android:url" '
            f'content="snssdk1233://challenge/detail/{challenge_id_for(scenario.seed, tag.name)}">'
        )
    return (
        '<!DOCTYPE html><html lang="vi-VN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>#{title} | TikTok</title>"
        f'<meta property="og:title" content="#{title} | TikTok">{meta}'
        '<link rel="preconnect" href="https://sf16-website-login.neutral.ttwstatic.com">'
        '<script>window.__webpack_public_path__="/static/";</script>'
        '</head><body><div id="app"><main class="css-1fmpdjt-MainDetailWrapper">'
        f"{main}</main></div><script>{script}</script>"
        '<script src="/static/tag/main.js" async></script>'
        "</body></html>"
    )


async def handle_tag_page(request: web.Request) -> web.Response:
    """GET /www.tiktok.com/tag/NAME: the tag page (any case; TikTok tags ignore it)."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    name = request.match_info["name"].lower()
    page = tag_page_html(scenario, name, scenario.hashtags.get(name), clock.elapsed())
    return web.Response(text=page, content_type="text/html")


async def handle_challenge_detail(request: web.Request) -> web.Response:
    """GET /www.tiktok.com/api/challenge/detail/?challengeName=N&msToken=..&X-Bogus=.. (signed only)."""
    if not request.query.get("X-Bogus"):
        return web.Response(body=b"", content_type="application/json")
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    tag = scenario.hashtags.get(request.query.get("challengeName", "").strip().lstrip("#").lower())
    return json_response(challenge_detail_body(scenario, tag, clock.elapsed()))


def hashtags_truth(scenario: Scenario, elapsed: float) -> dict:
    """Per tag: exact views and posts, which header the page serves, and its visible text."""
    tags = {}
    for tag in scenario.hashtags.values():
        counters = hashtag_counters(scenario.seed, tag, elapsed)
        tags[tag.name] = {
            "views": counters.views,
            "posts": counters.posts,
            "markup": tag.markup,
            "header": header_text(tag, counters),
        }
    return tags


def truth(scenario: Scenario, elapsed: float, epoch: float) -> dict:
    """Ground truth per account at `elapsed` (what the routes serve, plus what they hide: 18+), and
    per hashtag under the key "hashtags"."""
    if HASHTAGS_TRUTH_KEY in scenario.tiktok:
        raise ValueError(f"an account may not be called {HASHTAGS_TRUTH_KEY!r}: truth uses that key")
    accounts: dict = {}
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
    accounts[HASHTAGS_TRUTH_KEY] = hashtags_truth(scenario, elapsed)
    return accounts


def register(app: web.Application) -> None:
    """Add the TikTok routes; the app must carry SCENARIO and CLOCK."""
    app.router.add_get(f"{WWW}/api-live/user/room/", handle_api_live_user_room)
    app.router.add_get(WWW + "/@{unique_id}/live", handle_live_page)
    app.router.add_get(f"{WEBCAST}/webcast/room/info/", handle_room_info)
    app.router.add_get(f"{WEBCAST}/webcast/room/check_alive/", handle_check_alive)
    app.router.add_get(WWW + "/tag/{name}", handle_tag_page)
    app.router.add_get(f"{WWW}/api/challenge/detail/", handle_challenge_detail)
