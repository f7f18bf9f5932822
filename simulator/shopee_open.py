"""Shopee Open Platform livestream routes (platforms.md 5b) over the Shopee sessions of
`simulator.shopee`: the same broadcasts and numbers the creator dashboard shows, for shops that
authorised the simulator's partner app (`PARTNER_ID`/`PARTNER_KEY`; one access token per shop).

Every call is checked as Shopee documents its v2 shop-level API: partner id, timestamp within five
minutes of the wall clock, `sign = HMAC-SHA256(partner_key, partner_id + path + timestamp +
access_token + shop_id)`, the token of that shop, and the session belonging to it. Errors answer
HTTP 200 with `{"error", "message", "request_id", "response": null}` as the v2 API does. Choices where
the shape is [U]: times are epoch seconds (`end_time` 0 while live); `error_sign` for a bad signature
or timestamp, `invalid_access_token` for a token of another shop, `error_not_found` for a session of
another shop; `ctr`/`co` as fractions.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from aiohttp import web

from simulator import shopee
from simulator.keys import CLOCK, SCENARIO, json_response
from simulator.scenario import Scenario

NAME = "shopee_open"
OPEN = "/partner.shopeemobile.com"
DETAIL_PATH = "/api/v2/livestream/get_session_detail"
METRIC_PATH = "/api/v2/livestream/get_session_metric"
PARTNER_ID = "2001234"
PARTNER_KEY = "sim-shopee-partner-key-5e0d9c"
TIMESTAMP_WINDOW = 300


def access_token(shop_id: int) -> str:
    return f"sim-shopee-access-{shop_id}"


def _error(error: str, message: str) -> web.Response:
    return json_response({"error": error, "message": message, "request_id": "sim", "response": None})


def _checked(request: web.Request) -> tuple[shopee.LiveSession | None, web.Response | None]:
    query = request.query
    partner_id, stamp = query.get("partner_id", ""), query.get("timestamp", "")
    token, shop_id = query.get("access_token", ""), query.get("shop_id", "")
    path = request.path.removeprefix(OPEN)
    message = f"{partner_id}{path}{stamp}{token}{shop_id}".encode()
    expected = hmac.new(PARTNER_KEY.encode(), message, hashlib.sha256).hexdigest()
    if partner_id != PARTNER_ID or not hmac.compare_digest(query.get("sign", ""), expected):
        return None, _error("error_sign", "Wrong sign.")
    if not stamp.isdigit() or abs(int(stamp) - time.time()) > TIMESTAMP_WINDOW:
        return None, _error("error_sign", "Timestamp is expired.")
    if not shop_id.isdigit() or token != access_token(int(shop_id)):
        return None, _error("invalid_access_token", "Invalid access_token.")
    session = shopee.find_session(request.app[SCENARIO], query.get("session_id", ""))
    if session is None or session.shop_id != int(shop_id):
        return None, _error("error_not_found", "Session not found.")
    return session, None


async def handle_detail(request: web.Request) -> web.Response:
    session, refused = _checked(request)
    if refused is not None or session is None:
        return refused or _error("error_not_found", "Session not found.")
    clock = request.app[CLOCK]
    state = shopee.state_at(request.app[SCENARIO].seed, session, clock.elapsed())
    ended = state.status == shopee.STATUS_ENDED
    response = {
        "session_id": session.session_id,
        "title": session.title,
        "status": state.status,
        "start_time": int(clock.epoch() + session.start),
        "end_time": int(clock.epoch() + session.end) if ended else 0,
    }
    return json_response({"error": "", "message": "", "request_id": "sim", "response": response})


async def handle_metric(request: web.Request) -> web.Response:
    session, refused = _checked(request)
    if refused is not None or session is None:
        return refused or _error("error_not_found", "Session not found.")
    seed = request.app[SCENARIO].seed
    numbers = shopee.dashboard(seed, session, shopee.state_at(seed, session, request.app[CLOCK].elapsed()))
    engagement = numbers["engagementData"]
    response = {
        "gmv": numbers["placedGmv"],
        "orders": numbers["placedOrder"],
        "atc": numbers["atc"],
        "ctr": numbers["ctr"],
        "co": numbers["co"],
        "ccu": numbers["ccu"],
        "peak_ccu": numbers["pcu"],
        "engage_ccu_1m": numbers["ccu"] // 3,
        "likes": engagement["likes"],
        "comments": engagement["comments"],
        "shares": engagement["shares"],
        "views": numbers["views"],
        "avg_viewing_duration": 80,
    }
    return json_response({"error": "", "message": "", "request_id": "sim", "response": response})


def truth(scenario: Scenario, elapsed: float, epoch: float) -> dict:
    """Which shops authorised the partner app (every Shopee shop of the scenario); the numbers are the
    dashboard's, in the `shopee` truth."""
    shops = sorted({s.shop_id for s in shopee.sessions_for(scenario.name, scenario.seed)})
    return {"partner_id": PARTNER_ID, "shop_ids": shops}


def register(app: web.Application) -> None:
    app.router.add_get(OPEN + DETAIL_PATH, handle_detail)
    app.router.add_get(OPEN + METRIC_PATH, handle_metric)
