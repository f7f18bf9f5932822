"""TikTok Shop Partner API analytics and token routes (shapes, signing, limits: platforms.md 5b).

Every account of the scenario with `has_commerce_goods` is a shop that authorised the simulator's one
app (`APP_KEY`/`APP_SECRET`); its broadcasts are the public TikTok rooms of `simulator.tiktok`, under
a different live id, with start and end times `SHOP_CLOCK_SKEW` seconds later (two systems' clocks),
and orders, items, buyers and GMV the public pages never show. Every analytics request is checked
like the real API checks it: app key, signature over path, sorted query and body (code 106001 when
wrong), timestamp within -300 s..+30 s of the wall clock, access token, shop cipher; over the rate
limit an app gets HTTP 429 with code 36009002.

Choices where platforms.md marks the shape or code [U]: a timestamp outside the window is code
106002; an unknown token 105001, the token `EXPIRED_TOKEN` 105002; an unknown shop cipher or bad
parameters 36009003; a session still live has `end_time` "0"; `performance_per_minutes` answers
`data.intervals[]` (60 per page, `next_page_token` the next offset) and only for finished sessions
(code 36009004 before); tokens from the refresh route last `ACCESS_TTL`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from aiohttp import web

from simulator.counters import session_counters, viewer_envelope
from simulator.keys import CLOCK, SCENARIO, json_response
from simulator.scenario import Account, Scenario, Session, seeded_unit, started_sessions

NAME = "tiktok_shop"
PARTNER = "/open-api.tiktokglobalshop.com"
AUTH = "/auth.tiktok-shops.com"
SESSIONS_PATH = "/analytics/202509/shop_lives/performance"
MINUTES_PATH = "/analytics/202510/shop_lives/{live_id}/performance_per_minutes"

# The demo app's credentials: only this simulator accepts them.
APP_KEY = "sim-app-6f1c2d"
APP_SECRET = "sim-secret-9a7e4b3f0c15d2e8"
EXPIRED_TOKEN = "sim-expired-token"
ACCESS_TTL = 7 * 86_400.0
CURRENCY = "VND"

BAD_SIGNATURE, BAD_TIMESTAMP = 106001, 106002
TOKEN_INVALID, TOKEN_EXPIRED = 105001, 105002
RATE_LIMITED, BAD_PARAMS, NOT_FINISHED = 36009002, 36009003, 36009004
LOOK_BACK_EXCEEDED = 28001022
LOOK_BACK_DAYS, WINDOW_DAYS = 180, 30
TIMESTAMP_WINDOW = (-300, 30)  # accepted request timestamp minus wall time, seconds
# The app's budget on analytics routes: a burst, then one request a second (real: 0.2-1/s).
RATE_BURST, RATE_PER_SECOND = 20.0, 1.0
SHOP_CLOCK_SKEW = 20
MINUTES_PER_PAGE = 60
ORDERS_PER_VIEWER_MINUTE = 0.004


def access_token(unique_id: str) -> str:
    return f"sim-access-{unique_id}"


def refresh_token(unique_id: str) -> str:
    return f"sim-refresh-{unique_id}"


def shop_cipher(unique_id: str) -> str:
    return f"SIMCIPHER_{unique_id.upper()}"


# What `collector demo` sets for collector/demo.toml's authorised shop (shop_vn).
DEMO_ENV = {
    "DEMO_TTS_APP_KEY": APP_KEY,
    "DEMO_TTS_APP_SECRET": APP_SECRET,
    "DEMO_TTS_SHOP_CIPHER": shop_cipher("shop_vn"),
    "DEMO_TTS_REFRESH_TOKEN": refresh_token("shop_vn"),
}


def live_id_for(seed: int, session: Session) -> str:
    """The shop's id of a broadcast: 19 digits like the room id, but a different number."""
    digest = hashlib.blake2b(f"shoplive:{seed}:{session.room_id}".encode(), digest_size=8).digest()
    return "7" + f"{int.from_bytes(digest, 'big') % 10**18:018d}"


def sign(secret: str, path: str, params: dict[str, str], body: bytes) -> str:
    pairs = "".join(f"{k}{params[k]}" for k in sorted(params) if k not in ("sign", "access_token"))
    message = secret.encode() + path.encode() + pairs.encode() + body + secret.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class AppState:
    """Tokens issued by the refresh route and the app's rate-limit bucket."""

    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (account, expiry)
    refreshes: int = 0
    bucket: float = RATE_BURST
    bucket_at: float = field(default_factory=time.monotonic)


APP_STATE = web.AppKey("tiktok_shop_state", AppState)


def shops(scenario: Scenario) -> dict[str, Account]:
    return {a.unique_id: a for a in scenario.tiktok.values() if a.has_commerce_goods}


@lru_cache(maxsize=256)
def minute_sales(seed: int, session: Session) -> tuple[tuple[int, int, int, int], ...]:
    """(orders, items, buyers, GMV) of each minute of the broadcast."""
    price = 1000 * round(49 + 250 * seeded_unit(seed, session.unique_id, "price"))
    minutes = []
    for minute in range(math.ceil(session.duration / 60)):
        audience = viewer_envelope(session, minute * 60 + 30)
        u, v = (
            seeded_unit(seed, session.room_id, minute, "orders"),
            seeded_unit(seed, session.room_id, minute),
        )
        orders = round(audience * ORDERS_PER_VIEWER_MINUTE * (0.5 + u))
        items = orders + round(orders * 0.4 * v)
        minutes.append((orders, items, orders - orders // 10, items * price))
    return tuple(minutes)


def _unix(epoch: float, seconds: float) -> int:
    return int(epoch + seconds) + SHOP_CLOCK_SKEW


def session_body(seed: int, session: Session, elapsed: float, epoch: float) -> dict:
    """One `live_stream_sessions[]` entry at `elapsed`: totals of the minutes completed so far."""
    ended = elapsed >= session.end
    done = len(minute_sales(seed, session)) if ended else max(0, int((elapsed - session.start) // 60))
    sold = minute_sales(seed, session)[:done]
    orders, items, buyers, gmv = (sum(minute[i] for minute in sold) for i in range(4))
    counters = session_counters(seed, session, elapsed)
    return {
        "id": live_id_for(seed, session),
        "title": session.title,
        "username": session.unique_id,
        "start_time": str(_unix(epoch, session.start)),
        "end_time": str(_unix(epoch, session.end)) if ended else "0",
        "sales_performance": {
            "gmv": {"amount": str(gmv), "currency": CURRENCY},
            "avg_price": {"amount": str(gmv // items if items else 0), "currency": CURRENCY},
            "24h_live_gmv": {"amount": str(gmv), "currency": CURRENCY},
            "products_added": 12,
            "different_products_sold": min(12, items),
            "created_sku_orders": orders,
            "sku_orders": orders,
            "items_sold": items,
            "customers": buyers,
        },
        "interaction_performance": {
            "views": counters.views,
            "viewers": counters.views * 4 // 5,
            "likes": counters.likes,
            "comments": counters.likes // 25,
            "shares": counters.shares,
            "new_followers": counters.follows,
            "product_clicks": items * 6,
            "product_impressions": items * 40,
            "avg_viewing_duration": 95,
        },
    }


def _error(code: int, message: str, status: int = 200) -> web.Response:
    return json_response({"code": code, "message": message, "request_id": "sim", "data": None}, status)


def _ok(data: dict) -> web.Response:
    return json_response({"code": 0, "message": "Success", "request_id": "sim", "data": data})


def _token_account(state: AppState, token: str, scenario: Scenario) -> str | None:
    for unique_id in shops(scenario):
        if token == access_token(unique_id):
            return unique_id
    issued = state.tokens.get(token)
    return issued[0] if issued and issued[1] > time.time() else None


def _spend(state: AppState) -> bool:
    now = time.monotonic()
    state.bucket = min(RATE_BURST, state.bucket + (now - state.bucket_at) * RATE_PER_SECOND)
    state.bucket_at = now
    if state.bucket < 1:
        return False
    state.bucket -= 1
    return True


async def _authorised(request: web.Request) -> tuple[str, web.Response | None]:
    """The shop a request may read, or the error the real API gives instead (checked in its order)."""
    query, state, scenario = dict(request.query), request.app[APP_STATE], request.app[SCENARIO]
    body = await request.read()
    if query.get("app_key") != APP_KEY:
        return "", _error(BAD_SIGNATURE, "Invalid app_key or sign")
    path = request.path.removeprefix(PARTNER)
    if not hmac.compare_digest(query.get("sign", ""), sign(APP_SECRET, path, query, body)):
        return "", _error(BAD_SIGNATURE, "Invalid sign")
    stamp = query.get("timestamp", "")
    if not stamp.isdigit() or not TIMESTAMP_WINDOW[0] <= int(stamp) - time.time() <= TIMESTAMP_WINDOW[1]:
        return "", _error(BAD_TIMESTAMP, "Invalid timestamp")
    token = request.headers.get("x-tts-access-token", "")
    if token == EXPIRED_TOKEN:
        return "", _error(TOKEN_EXPIRED, "Expired credentials")
    account = _token_account(state, token, scenario)
    if account is None:
        return "", _error(TOKEN_INVALID, "Invalid credentials")
    if query.get("shop_cipher") != shop_cipher(account):
        return "", _error(BAD_PARAMS, "shop_cipher does not belong to the token's shop")
    if not _spend(state):
        return "", _error(RATE_LIMITED, "Too many requests", 429)
    return account, None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def handle_sessions(request: web.Request) -> web.Response:
    """GET /analytics/202509/shop_lives/performance?start_date_ge&end_date_lt&page_size[&page_token]."""
    account, refused = await _authorised(request)
    if refused is not None:
        return refused
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    query, elapsed, epoch = request.query, clock.elapsed(), clock.epoch()
    first, last = _date(query.get("start_date_ge", "")), _date(query.get("end_date_lt", ""))
    size, offset = query.get("page_size", ""), query.get("page_token", "0")
    if (
        first is None
        or last is None
        or not size.isdigit()
        or not 1 <= int(size) <= 100
        or not offset.isdigit()
    ):
        return _error(BAD_PARAMS, "start_date_ge, end_date_lt and page_size (1-100) are required")
    today = datetime.fromtimestamp(epoch + elapsed, UTC).date()
    if first < today - timedelta(days=LOOK_BACK_DAYS):
        return _error(LOOK_BACK_EXCEEDED, "The start date must be after the shop's registration date")
    if not first < last <= first + timedelta(days=WINDOW_DAYS):
        return _error(BAD_PARAMS, f"the date range must be 1 to {WINDOW_DAYS} days")
    sessions = [
        session_body(scenario.seed, s, elapsed, epoch)
        for s in started_sessions(scenario, shops(scenario)[account], elapsed)
        if first <= datetime.fromtimestamp(_unix(epoch, s.start), UTC).date() < last
    ]
    sessions.sort(key=lambda s: int(s["start_time"]), reverse=True)
    start, end = int(offset), int(offset) + int(size)
    return _ok(
        {
            "live_stream_sessions": sessions[start:end],
            "next_page_token": str(end) if end < len(sessions) else "",
            "total_count": len(sessions),
        }
    )


async def handle_minutes(request: web.Request) -> web.Response:
    """GET /analytics/202510/shop_lives/{live_id}/performance_per_minutes[?page_token]."""
    account, refused = await _authorised(request)
    if refused is not None:
        return refused
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    elapsed, epoch = clock.elapsed(), clock.epoch()
    live_id, offset = request.match_info["live_id"], request.query.get("page_token", "0")
    found = next(
        (
            s
            for s in started_sessions(scenario, shops(scenario)[account], elapsed)
            if live_id_for(scenario.seed, s) == live_id
        ),
        None,
    )
    if found is None or not offset.isdigit():
        return _error(BAD_PARAMS, "unknown live_id or page_token")
    if elapsed < found.end:
        return _error(NOT_FINISHED, "per-minute performance is available after the LIVE ends")
    minutes = minute_sales(scenario.seed, found)
    start = int(offset)
    rows = [
        {
            "start_time": str(_unix(epoch, found.start + 60 * m)),
            "end_time": str(_unix(epoch, found.start + 60 * (m + 1))),
            "gmv": {"amount": str(gmv), "currency": CURRENCY},
            "sku_orders": orders,
            "items_sold": items,
            "customers": buyers,
            "product_impressions": items * 40,
            "product_clicks": items * 6,
        }
        for m, (orders, items, buyers, gmv) in enumerate(minutes)
        if start <= m < start + MINUTES_PER_PAGE
    ]
    end = start + MINUTES_PER_PAGE
    return _ok({"intervals": rows, "next_page_token": str(end) if end < len(minutes) else ""})


async def handle_refresh(request: web.Request) -> web.Response:
    """GET /api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token."""
    query, state, scenario = request.query, request.app[APP_STATE], request.app[SCENARIO]
    if query.get("app_key") != APP_KEY or query.get("app_secret") != APP_SECRET:
        return _error(BAD_SIGNATURE, "Invalid app_key or app_secret")
    if query.get("grant_type") != "refresh_token":
        return _error(BAD_PARAMS, "grant_type must be refresh_token")
    account = next((u for u in shops(scenario) if refresh_token(u) == query.get("refresh_token")), None)
    if account is None:
        return _error(TOKEN_INVALID, "Invalid refresh_token")
    state.refreshes += 1
    token, expires = f"sim-refreshed-{account}-{state.refreshes}", time.time() + ACCESS_TTL
    state.tokens[token] = (account, expires)
    return _ok(
        {
            "access_token": token,
            "access_token_expire_in": int(expires),
            "refresh_token": refresh_token(account),
            "refresh_token_expire_in": int(time.time() + 30 * 86_400),
            "seller_name": account,
            "user_type": 0,
        }
    )


def truth(scenario: Scenario, elapsed: float, epoch: float) -> dict:
    """Per shop: every started broadcast's live id, public room id and reported totals now."""
    result: dict = {}
    for unique_id, account in shops(scenario).items():
        sessions = []
        for session in started_sessions(scenario, account, elapsed):
            body = session_body(scenario.seed, session, elapsed, epoch)
            sales = body["sales_performance"]
            sessions.append(
                {
                    "live_id": body["id"],
                    "room_id": session.room_id,
                    "ended": body["end_time"] != "0",
                    "gmv": int(sales["gmv"]["amount"]),
                    "currency": CURRENCY,
                    "orders": sales["sku_orders"],
                    "items_sold": sales["items_sold"],
                    "buyers": sales["customers"],
                }
            )
        result[unique_id] = {"shop_cipher": shop_cipher(unique_id), "sessions": sessions}
    return result


def register(app: web.Application) -> None:
    app[APP_STATE] = AppState()
    app.router.add_get(PARTNER + SESSIONS_PATH, handle_sessions)
    app.router.add_get(PARTNER + MINUTES_PATH, handle_minutes)
    app.router.add_get(AUTH + "/api/v2/token/refresh", handle_refresh)
