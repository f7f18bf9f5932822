"""Shopee Vietnam live routes, each real host emulated as a path prefix (shapes: platforms.md 3.1, 3.2, 6).

Shopee data belongs to this module, keyed by scenario name (`WORLDS`); every counter is a pure function
of (seed, session, scenario second). Choices where platforms.md marks the shape [U]:
- joinv2/more_items/play_param envelope `{"err_code", "err_msg", "data"}`; an unknown session answers
  `err_code 4040001`, `err_msg "session not found"`, `data null`;
- `member_cnt` is the cumulative number of members who joined; `viewer_count` the current audience;
- the creator dashboard needs a `Cookie` with a non-empty `SPC_EC=`, otherwise it answers
  `{"is_login": false, "msg": "not login", "data": null}` (HTTP 200; not the gateway's 90309999, which
  is its anti-bot challenge: see the `antibot` fault); an unknown
  `sessionId` answers `{"code": 40400, "msg": "session not found", "data": null}`;
- sessionList `startTime` is ms and `duration` is seconds (live so far); the simulated creator
  account sees every started session of the world; overview `status` uses the Open Platform codes;
- GMV values are floats in whole VND; no sales happen outside a session's live window.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import orjson
from aiohttp import web

from simulator.keys import CLOCK, SCENARIO, json_response
from simulator.scenario import Scenario, seeded_unit

NAME = "shopee"
LIVE = "/live.shopee.vn"
SHORT = "/vn.shp.ee"
CREATOR = "/creator.shopee.vn/supply/api/lm/sellercenter/realtime"

STATUS_SCHEDULED, STATUS_LIVE, STATUS_ENDED = 0, 1, 2
SESSION_NOT_FOUND = 4040001  # [U]
NOT_LOGIN = {"is_login": False, "msg": "not login", "data": None}
DASHBOARD_NOT_FOUND = 40400  # [U]
PRICE_SCALE = 100_000  # original_price is currency units x 100000
BUCKET = 5.0
# What `collector demo` sets for collector/demo.toml's shop dashboard: a made-up session cookie that
# this simulator accepts and no real Shopee account has.
DEMO_ENV = {"COLLECTOR_DEMO_SHOP_COOKIES": "SPC_EC=collector-demo-only; SPC_U=1"}
# Arrivals per current viewer per second (members, likes, comments, shares, follows).
RATES = (1 / 90, 0.03, 0.004, 0.0004, 0.00015)
ITEMS_PER_ORDER = 1.3


@dataclass(frozen=True)
class Item:
    item_id: int
    name: str
    price: int  # VND
    base_sold: int  # lifetime sold when the session starts
    weight: float  # share of the session's sales


@dataclass(frozen=True)
class Plan:
    """One scripted session of a shop (times in scenario seconds)."""

    username: str
    nickname: str
    title: str
    start: float
    duration: float
    peak_viewers: int
    n_items: int
    target_items: int  # expected items sold over the whole session


@dataclass(frozen=True)
class LiveSession(Plan):
    session_id: int
    shop_id: int
    items: tuple[Item, ...]
    short_code: str

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class State:
    """A session at one instant: what joinv2, more_items and the dashboard are computed from."""

    status: int
    viewers: int
    peak: int
    members: int
    likes: int
    comments: int
    shares: int
    follows: int
    increase: tuple[int, ...]  # items sold per item since the session started


# (name, list price VND) in the style of Lai Châu OCOP products.
CATALOG = (
    ("Chè Shan Tuyết Lai Châu 200g", 185_000),
    ("Chè Shan Tuyết cổ thụ Sìn Hồ 500g", 420_000),
    ("Mật ong bạc hà Tam Đường 500ml", 320_000),
    ("Gạo Séng Cù Mường Than 5kg", 165_000),
    ("Miến dong Bình Lư 500g", 65_000),
    ("Thảo quả sấy khô Phong Thổ 300g", 120_000),
    ("Măng khô Than Uyên 500g", 135_000),
    ("Hạt dổi rừng Lai Châu 100g", 95_000),
    ("Lạp xưởng gác bếp Lai Châu 500g", 230_000),
    ("Thịt trâu gác bếp Lai Châu 500g", 450_000),
    ("Táo mèo sấy lát Lai Châu 500g", 85_000),
    ("Sâm Lai Châu lát khô 20g", 390_000),
)


def _number(seed: int, *parts: object, digits: int = 9) -> int:
    """A reproducible `digits`-digit id."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    low = 10 ** (digits - 1)
    return low + int.from_bytes(digest, "big") % (9 * low)


def short_code(session_id: int) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    digest = hashlib.blake2b(f"short:{session_id}".encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return "".join(alphabet[(value // len(alphabet) ** i) % len(alphabet)] for i in range(10))


def _items(seed: int, key: str, count: int) -> tuple[Item, ...]:
    """`count` distinct catalog items with seed-varied prices (50k..450k VND) and lifetime sold."""
    order = sorted(range(len(CATALOG)), key=lambda i: seeded_unit(seed, key, "pick", i))
    picked = [CATALOG[i] for i in order[:count]]
    weights = [0.5 + seeded_unit(seed, key, "weight", rank) for rank in range(count)]
    return tuple(
        Item(
            item_id=_number(seed, "item", name, digits=11),
            name=name,
            price=min(450_000, max(50_000, int(round(price * (0.9 + 0.2 * seeded_unit(seed, key, r)), -3)))),
            base_sold=50 + int(3000 * seeded_unit(seed, key, "sold", r)),
            weight=weights[r] / sum(weights),
        )
        for r, (name, price) in enumerate(picked)
    )


def _world(seed: int, plans: tuple[Plan, ...]) -> tuple[LiveSession, ...]:
    sessions = []
    for index, plan in enumerate(plans):
        # Ids and short codes ignore the seed, so a config can name them; the seed varies the rest.
        session_id = _number(0, "session", plan.username, index)
        items = _items(seed, f"{plan.username}:{index}", plan.n_items)
        shop_id = _number(0, "shop", plan.username)
        fields = {**vars(plan), "items": items, "short_code": short_code(session_id)}
        sessions.append(LiveSession(**fields, session_id=session_id, shop_id=shop_id))
    return tuple(sessions)


def demo_world(seed: int) -> tuple[LiveSession, ...]:
    """One session live at start (began 10 min before, 2 h long) and one that ended yesterday."""
    shop, nick = "nongsanlaichau.vn", "Nông Sản Lai Châu Official"
    yesterday = Plan(shop, nick, "Chè Shan Tuyết - phiên hôm qua", -86_400, 5400, 500, 3, 300)
    now = Plan(shop, nick, "Đặc sản Lai Châu - giờ vàng giá sốc", -600, 7200, 800, 4, 600)
    return _world(seed, (yesterday, now))


def event_week_world(seed: int) -> tuple[LiveSession, ...]:
    """Three sessions on three days, each from a Lai Châu shop with 3-6 OCOP items."""
    day = 86_400
    plans = (
        ("htxcheshantuyet", "HTX Chè Shan Tuyết Sìn Hồ", "Khai mạc tuần hàng OCOP", 3600, 7200, 1500, 900),
        ("dacsantamduong", "Đặc Sản Tam Đường", "Mật ong bạc hà & nông sản", day + 1800, 7200, 1200, 800),
        ("ocoplaichau.store", "OCOP Lai Châu Store", "Bế mạc - săn deal", 2 * day + 3600, 9000, 2200, 1200),
    )
    n_items = [3 + int(4 * seeded_unit(seed, plan[0], "n_items")) for plan in plans]
    return _world(seed, tuple(Plan(*p[:6], n, p[6]) for p, n in zip(plans, n_items, strict=True)))


WORLDS: dict[str, Callable[[int], tuple[LiveSession, ...]]] = {
    "demo": demo_world,
    "event-week": event_week_world,
}


@cache
def sessions_for(name: str, seed: int) -> tuple[LiveSession, ...]:
    """The scenario's Shopee sessions (none for a scenario without a Shopee world)."""
    world = WORLDS.get(name)
    return world(seed) if world else ()


def find_session(scenario: Scenario, session_id: str) -> LiveSession | None:
    for session in sessions_for(scenario.name, scenario.seed):
        if str(session.session_id) == session_id.strip():
            return session
    return None


def envelope(session: LiveSession, into: float) -> float:
    """Viewer curve: ramp up over 5 min, a dip at 55 %, a fall over the last 5 min."""
    if into < 0 or into >= session.duration:
        return 0.0
    level = 0.15 + 0.85 * min(1.0, into / 300.0)
    level *= 1 - 0.3 * max(0.0, 1 - abs(into - 0.55 * session.duration) / (0.05 * session.duration))
    if into > session.duration - 300:
        level *= max(0.02, (session.duration - into) / 300)
    return session.peak_viewers * level


def _noise(seed: int, session_id: int, bucket: int) -> tuple[float, ...]:
    """Twelve reproducible uniforms for one bucket: viewers, 5 engagement counters, up to 6 items."""
    digest = hashlib.blake2b(f"shopee:{seed}:{session_id}:{bucket}".encode(), digest_size=48).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 48, 4))


@lru_cache(maxsize=64)
def _series(seed: int, session: LiveSession) -> tuple[list[int], list[tuple[float, ...]]]:
    """Per bucket: viewers and running peak, and cumulative (engagement..., item sales...) before it."""
    buckets = math.ceil(session.duration / BUCKET)
    total_env = sum(envelope(session, b * BUCKET) for b in range(buckets)) or 1.0
    viewers: list[int] = []
    sums: list[tuple[float, ...]] = [(envelope(session, 0.0), *[0.0] * (4 + len(session.items)))]
    for bucket in range(buckets):
        noise = _noise(seed, session.session_id, bucket)
        env = envelope(session, bucket * BUCKET)
        viewers.append(max(0, round(env * (0.92 + 0.16 * noise[0]))))
        engagement = [env * BUCKET * rate * (0.5 + u) for rate, u in zip(RATES, noise[1:6], strict=True)]
        sales = [session.target_items * env / total_env * item.weight * (0.5 + u)
                 for item, u in zip(session.items, noise[6:], strict=False)]  # fmt: skip
        sums.append(tuple(a + b for a, b in zip(sums[-1], (*engagement, *sales), strict=True)))
    return viewers, sums


def state_at(seed: int, session: LiveSession, elapsed: float) -> State:
    """The session at scenario second `elapsed` (zeros before the start, frozen after the end)."""
    n = len(session.items)
    if elapsed < session.start:
        return State(STATUS_SCHEDULED, 0, 0, 0, 0, 0, 0, 0, (0,) * n)
    viewers, sums = _series(seed, session)
    into = min(elapsed - session.start, session.duration)
    bucket = min(int(into // BUCKET), len(viewers) - 1)
    fraction = min(1.0, (into - bucket * BUCKET) / BUCKET)
    # Interpolating inside the bucket keeps every total non-decreasing.
    totals = [math.floor(a + (b - a) * fraction) for a, b in zip(sums[bucket], sums[bucket + 1], strict=True)]
    ended = elapsed >= session.end
    status = STATUS_ENDED if ended else STATUS_LIVE
    return State(status, 0 if ended else viewers[bucket], max(viewers[: bucket + 1]), *totals[:5],
                 tuple(totals[5:]))  # fmt: skip


def _ms(epoch: float, scenario_seconds: float) -> int:
    return round((epoch + scenario_seconds) * 1000)


def joinv2_session(session: LiveSession, state: State, epoch: float) -> dict:
    ended = state.status == STATUS_ENDED
    return {
        "session_id": session.session_id, "shop_id": session.shop_id, "username": session.username,
        "nickname": session.nickname, "title": session.title, "status": state.status,
        "start_time": _ms(epoch, session.start), "end_time": _ms(epoch, session.end) if ended else 0,
        "viewer_count": state.viewers, "member_cnt": state.members, "like_cnt": state.likes,
        "items_cnt": len(session.items),
    }  # fmt: skip


def items_body(session: LiveSession, state: State) -> list[dict]:
    return [
        {
            "item_id": item.item_id, "shop_id": session.shop_id, "name": item.name, "price": str(item.price),
            "original_price": int(round(item.price * 1.2, -3)) * PRICE_SCALE, "currency": "VND",
            "sold": item.base_sold + increase, "status": 1, "display_total_stock": 5000,
        }
        for item, increase in zip(session.items, state.increase, strict=True)
    ]  # fmt: skip


def dashboard(seed: int, session: LiveSession, state: State) -> dict:
    """Overview numbers; placed sales equal the items' sold increase since the start, exactly."""
    items = sum(state.increase)
    gmv = sum(n * item.price for n, item in zip(state.increase, session.items, strict=True))
    orders = math.ceil(items / ITEMS_PER_ORDER)
    ratio = 0.92 + 0.05 * seeded_unit(seed, session.session_id, "confirmed")
    views = state.members * 7 // 5
    return {
        "status": state.status, "ccu": state.viewers, "pcu": state.peak, "viewers": state.members,
        "views": views, "buyers": orders * 19 // 20, "atc": items * 5 // 2,
        "ctr": 0.0 if not state.members else round(min(1.0, items * 2.5 / state.members), 4),
        "co": 0.0 if not items else round(orders / (items * 2.5), 4),
        "placedGmv": float(gmv), "placedOrder": orders, "placedItemsSold": items,
        "confirmedGmv": float(math.floor(gmv * ratio)), "confirmedOrder": math.floor(orders * ratio),
        "confirmedItemsSold": math.floor(items * ratio),
        "engagementData": {"likes": state.likes, "comments": state.comments, "shares": state.shares,
                           "views": views, "viewers": state.members, "newFollowers": state.follows},
    }  # fmt: skip


def _error(code: int, message: str) -> web.Response:
    return json_response({"err_code": code, "err_msg": message, "data": None})


def _lookup(request: web.Request) -> tuple[LiveSession | None, State | None, float]:
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    session = find_session(scenario, request.match_info.get("session_id", ""))
    state = state_at(scenario.seed, session, clock.elapsed()) if session else None
    return session, state, clock.epoch()


async def handle_joinv2(request: web.Request) -> web.Response:
    """POST /live.shopee.vn/api/v1/session/{id}/joinv2."""
    session, state, epoch = _lookup(request)
    if session is None or state is None:
        return _error(SESSION_NOT_FOUND, "session not found")
    usersig = hashlib.blake2b(f"sig:{session.session_id}".encode(), digest_size=12).hexdigest()
    data = {"usersig": usersig, "session": joinv2_session(session, state, epoch)}
    return json_response({"err_code": 0, "err_msg": "success", "data": data})


async def handle_more_items(request: web.Request) -> web.Response:
    """GET /live.shopee.vn/api/v1/session/{id}/more_items."""
    session, state, _ = _lookup(request)
    if session is None or state is None:
        return _error(SESSION_NOT_FOUND, "session not found")
    data = {"items": items_body(session, state), "has_more": False}
    return json_response({"err_code": 0, "err_msg": "success", "data": data})


async def handle_play_param(request: web.Request) -> web.Response:
    """POST /live.shopee.vn/api/v1/play_param/session {"session_ids": [...]}; only live sessions listed."""
    try:
        ids = orjson.loads(await request.read())["session_ids"]
        ids = [str(int(i)) for i in ids]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _error(400, "params error")
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    found = []
    for session_id in ids:
        session = find_session(scenario, session_id)
        if session and state_at(scenario.seed, session, clock.elapsed()).status == STATUS_LIVE:
            stream = f"https://play-live.shopee.vn/live/{session.session_id}.flv"
            found.append({"session": {"session_id": session.session_id, "username": session.username,
                                      "nickname": session.nickname}, "play_param": {"play_url": stream}})  # fmt: skip
    return json_response({"err_code": 0, "err_msg": "success", "data": {"play_param_list": found}})


# The app shell: no numbers until the script runs. It joins on load and on a click of the video, like
# the real page; the host prefix comes from location.pathname ("" on live.shopee.vn itself).
SHARE_PAGE = """<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Shopee Live</title></head>
<body><div id="root"><video id="player" playsinline muted></video><span id="viewer-count"></span>
<h1 id="live-title"></h1><ul id="live-items"></ul></div>
<script>
(function () {
  var id = new URLSearchParams(location.search).get("session"), joined = false;
  var api = location.pathname.slice(0, location.pathname.lastIndexOf("/share")) + "/api/v1/session/" + id;
  function json(r) { return r.json(); }
  function join() {
    if (joined || !id) { return; }
    joined = true;
    fetch(api + "/joinv2", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"})
      .then(json).then(function (j) {
        var s = (j.data || {}).session || {};
        document.getElementById("viewer-count").textContent = s.viewer_count + " đang xem";
        document.getElementById("live-title").textContent = s.title || "";
        return fetch(api + "/more_items");
      }).then(json).then(function (j) {
        ((j.data || {}).items || []).forEach(function (it) {
          var li = document.createElement("li");
          li.textContent = it.name + " - " + it.price + "đ - Đã bán " + it.sold;
          document.getElementById("live-items").appendChild(li);
        });
      }).catch(function () { joined = false; });
  }
  document.getElementById("player").addEventListener("click", join);
  window.addEventListener("load", join);
})();
</script></body></html>
"""


async def handle_share(request: web.Request) -> web.Response:
    """GET /live.shopee.vn/share?from=live&session={id}: an app shell; data only via JavaScript."""
    return web.Response(text=SHARE_PAGE, content_type="text/html")


async def handle_short(request: web.Request) -> web.StreamResponse:
    """GET /vn.shp.ee/{code}: 302 to the session's share page."""
    scenario = request.app[SCENARIO]
    for session in sessions_for(scenario.name, scenario.seed):
        if session.short_code == request.match_info["code"]:
            raise web.HTTPFound(f"{LIVE}/share?from=live&session={session.session_id}&share_user_id=")
    raise web.HTTPNotFound(text="Not Found")


def _logged_in(request: web.Request) -> bool:
    cookies = [part.strip().partition("=") for part in request.headers.get("Cookie", "").split(";")]
    return any(name == "SPC_EC" and value for name, _, value in cookies)


def _list_entry(seed: int, session: LiveSession, state: State, epoch: float, elapsed: float) -> dict:
    numbers = dashboard(seed, session, state)
    return {
        "sessionId": session.session_id, "title": session.title, "startTime": _ms(epoch, session.start),
        "duration": int(min(elapsed, session.end) - session.start), "viewers": numbers["viewers"],
        "comments": state.comments, "atc": numbers["atc"], "engagedUv": state.members // 3,
        "avgEngagedCcu": state.viewers // 4, "placedOrders": numbers["placedOrder"],
        "placedItemSold": numbers["placedItemsSold"], "placedSales": numbers["placedGmv"],
        "confirmedOrders": numbers["confirmedOrder"], "confirmedItemSold": numbers["confirmedItemsSold"],
        "confirmedSales": numbers["confirmedGmv"],
    }  # fmt: skip


async def handle_session_list(request: web.Request) -> web.Response:
    """GET .../realtime/sessionList?page=1&pageSize=10&...: started sessions, newest first."""
    if not _logged_in(request):
        return json_response(NOT_LOGIN)
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    elapsed, epoch = clock.elapsed(), clock.epoch()
    try:
        page = max(1, int(request.query.get("page", "1")))
        size = min(100, max(1, int(request.query.get("pageSize", "10"))))
    except ValueError:
        return json_response({"code": 400, "msg": "params error", "data": None})
    started = [s for s in sessions_for(scenario.name, scenario.seed) if s.start <= elapsed]
    started.sort(key=lambda s: s.start, reverse=True)
    shown = started[(page - 1) * size : page * size]
    entries = [
        _list_entry(scenario.seed, s, state_at(scenario.seed, s, elapsed), epoch, elapsed) for s in shown
    ]
    data = {"page": page, "pageSize": size, "total": len(started), "list": entries}
    return json_response({"code": 0, "msg": "success", "data": data})


async def handle_overview(request: web.Request) -> web.Response:
    """GET .../realtime/dashboard/overview?sessionId={id}."""
    if not _logged_in(request):
        return json_response(NOT_LOGIN)
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    session = find_session(scenario, request.query.get("sessionId", ""))
    if session is None:
        return json_response({"code": DASHBOARD_NOT_FOUND, "msg": "session not found", "data": None})
    state = state_at(scenario.seed, session, clock.elapsed())
    return json_response({"code": 0, "msg": "success", "data": dashboard(scenario.seed, session, state)})


def truth(scenario: Scenario, elapsed: float, epoch: float) -> dict:
    """Per session: joinv2 numbers, items, dashboard numbers and the estimate a perfect tracker gets."""
    sessions = {}
    for session in sessions_for(scenario.name, scenario.seed):
        state = state_at(scenario.seed, session, elapsed)
        items = [
            {"item_id": item.item_id, "name": item.name, "price": item.price,
             "sold": item.base_sold + n, "sold_at_start": item.base_sold}
            for item, n in zip(session.items, state.increase, strict=True)
        ]  # fmt: skip
        sessions[str(session.session_id)] = {
            **joinv2_session(session, state, epoch), "short_code": session.short_code, "items": items,
            "dashboard": dashboard(scenario.seed, session, state), "estimated_items_sold": sum(state.increase),
            "estimated_revenue": sum(n * i.price for n, i in zip(state.increase, session.items, strict=True)),
        }  # fmt: skip
    return {"sessions": sessions}


def register(app: web.Application) -> None:
    """Add the Shopee routes; the app must carry SCENARIO and CLOCK."""
    app.router.add_get(f"{LIVE}/share", handle_share)
    app.router.add_post(LIVE + "/api/v1/session/{session_id}/joinv2", handle_joinv2)
    app.router.add_get(LIVE + "/api/v1/session/{session_id}/more_items", handle_more_items)
    app.router.add_post(f"{LIVE}/api/v1/play_param/session", handle_play_param)
    app.router.add_get(SHORT + "/{code}", handle_short)
    app.router.add_get(f"{CREATOR}/sessionList", handle_session_list)
    app.router.add_get(f"{CREATOR}/dashboard/overview", handle_overview)
