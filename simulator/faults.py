"""Fault injection: what real platforms do to a scraper, switchable per target (URL match) and time window.

Rules are set at start (`collector simulate --fault MODE:MATCH[:key=value,...]`) or at run time with
`POST /_sim/faults` (a JSON list of rules), read with `GET`, cleared with `DELETE`. A rule applies to
requests whose path+query contains `match`, while the scenario clock is in [start, end), at most
`count` times. Every application is counted in the rule's `hits`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from urllib.parse import quote

import orjson
from aiohttp import web

from simulator.keys import CLOCK, FAULTS, json_response

MODES = (
    "429",  # Too Many Requests with Retry-After (seconds, or an HTTP date with date=1)
    "503",  # Service Unavailable, with Retry-After when retry_after is set
    "500",  # a plain server error
    "slow",  # answers after `delay` seconds (longer than the collector's timeout)
    "reset",  # drops the connection without an answer
    "empty",  # 200 with an empty body (TikTok's answer to bots)
    "truncate",  # the real body cut in half
    "captcha",  # a WAF / captcha challenge page
    "login",  # a login wall
    "layout",  # the real JSON with every key renamed: a layout change
    "redirect_foreign",  # 302 to a host that is not the platform's
    "redirect_private",  # 302 to a private-network address
    # What the real sites answered (shared/real-captures):
    "unsigned",  # the real JSON with like/share counters zeroed, as TikTok's unsigned room/info has them
    "webcast_login",  # TikTok webcast envelope 20003 "User doesn't login"
    "room_finished",  # TikTok webcast envelope 30003 "room has finished"
    "webcast_refused",  # a webcast envelope with a code no parser knows
    "antibot",  # Shopee's gateway verification challenge: error 90309999, action_type 2
    # Lazada's gate (shared/marketplaces.md): a redirect to the punish page, an rgv587 body, a slider page
    "punish_redirect",
    "rgv587",
    "slider",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CAPTCHA_PAGE = (
    b'<!DOCTYPE html><html><head><title>Security Check</title></head><body><div id="cs">'
    b'<div id="wci" class="captcha_verify_container"></div></div>'
    b"<script>document.cookie='_wafchallengeid=eyJ2IjoxfQ; path=/';</script>"
    b"<p>Security Check Required</p></body></html>"
)
LOGIN_PAGE = (
    b'<!DOCTYPE html><html><head><title>Log in</title></head><body><a href="/login">Log in</a>'
    b'<form id="login_form" action="/login/device-based/regular/login/" method="post">'
    b'<input name="email"><input name="pass" type="password"></form></body></html>'
)


# Real bodies (shared/real-captures); `now` is filled in per answer.
ENVELOPES: dict[str, dict[str, object]] = {
    "webcast_login": {
        "data": {"message": "User doesn't login", "prompts": "Please login first"},
        "status_code": 20003,
    },
    "room_finished": {
        "data": {"message": "room has finished", "prompts": "This LIVE video has ended"},
        "status_code": 30003,
    },
    "webcast_refused": {"data": {"message": "Url does not match", "prompts": ""}, "status_code": 10013},
}
ANTI_BOT = {
    "is_customized": False,
    "is_login": False,
    "action_type": 2,
    "error": 90309999,
    "tracking_id": "fa3814fa-694b-40ed-b19c-a74c78223638",
}
RGV587 = {"rgv587_flag": "sm", "url": "/_____tmd_____/punish?x5secdata=xd3f1a8c2b9e&x5step=2&action=captcha"}
SLIDER_PAGE = (
    b'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><div id="nocaptcha">'
    b'<span id="nc_1_n1z" class="nc_iconfont btn_slide"></span></div>'
    b'<a href="#">Click to feedback &gt;</a></body></html>'
)
UNTOLD = frozenset({"like_count", "share_count"})  # zero in unsigned room/info whatever the room has


@dataclass
class FaultRule:
    mode: str
    match: str = ""
    start: float | None = None
    end: float | None = None
    count: int | None = None
    retry_after: float | None = None
    date: bool = False  # Retry-After as an HTTP date instead of seconds
    delay: float = 30.0
    hits: int = field(default=0)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r} (known: {', '.join(MODES)})")

    def applies(self, target: str, now: float) -> bool:
        if self.match not in target:
            return False
        if self.start is not None and now < self.start:
            return False
        if self.end is not None and now >= self.end:
            return False
        return self.count is None or self.hits < self.count


def parse_rule(text: str) -> FaultRule:
    """`MODE:MATCH[:key=value,...]`, e.g. `429:shop_vn:retry_after=5,count=3`."""
    mode, _, rest = text.partition(":")
    match, _, options = rest.partition(":")
    fields: dict[str, object] = {"mode": mode, "match": match}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        fields[key] = value == "1" if key == "date" else float(value) if key != "count" else int(value)
    return FaultRule(**fields)  # type: ignore[arg-type]


def _retry_after_header(rule: FaultRule, now_unix: float) -> dict[str, str]:
    if rule.retry_after is None:
        return {}
    if rule.date:
        return {"Retry-After": formatdate(now_unix + rule.retry_after, usegmt=True)}
    return {"Retry-After": str(int(rule.retry_after))}


def _rename_keys(value: object) -> object:
    if isinstance(value, dict):
        return {f"{k}_v2": _rename_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_keys(v) for v in value]
    return value


def _zero_untold(value: object) -> object:
    if isinstance(value, dict):
        return {k: 0 if k in UNTOLD else _zero_untold(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_zero_untold(v) for v in value]
    return value


def _relayout(body: bytes) -> bytes:
    """Rename every key of the JSON in the body, whether it is the whole body or inside script tags."""
    try:
        return orjson.dumps(_rename_keys(orjson.loads(body)))
    except orjson.JSONDecodeError:
        pass

    def script(match: re.Match[bytes]) -> bytes:
        try:
            return match.group(1) + orjson.dumps(_rename_keys(orjson.loads(match.group(2)))) + match.group(3)
        except orjson.JSONDecodeError:
            return match.group(0)

    return re.sub(rb'(<script[^>]*type="application/json"[^>]*>)(.*?)(</script>)', script, body, flags=re.S)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    rules: list[FaultRule] = request.app[FAULTS]
    if not rules or request.path.startswith("/_sim/"):
        return await handler(request)
    clock = request.app[CLOCK]
    target = request.path_qs
    rule = next((r for r in rules if r.applies(target, clock.elapsed())), None)
    if rule is None:
        return await handler(request)
    rule.hits += 1
    mode = rule.mode
    if mode in ("429", "503", "500"):
        headers = _retry_after_header(rule, clock.now()) if mode != "500" else {}
        return web.Response(status=int(mode), text=f"fault {mode}\n", headers=headers)
    if mode == "slow":
        await asyncio.sleep(rule.delay)
        return await handler(request)
    if mode == "reset":
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError
    if mode == "empty":
        return web.Response(status=200, body=b"", content_type="application/json")
    if mode == "captcha":
        return web.Response(status=200, body=CAPTCHA_PAGE, content_type="text/html")
    if mode == "login":
        # Platforms send a signed-out client to their own login page (platforms.md 2.1, 4.1).
        host = request.path.split("/")[1]
        raise web.HTTPFound(f"/{host}/login/?redirect_url={quote(request.path, safe='')}")
    if mode in ENVELOPES:
        return json_response({**ENVELOPES[mode], "extra": {"now": int(clock.now() * 1000)}})
    if mode == "antibot":
        return json_response(ANTI_BOT)
    if mode == "rgv587":
        return json_response(RGV587)
    if mode == "slider":
        return web.Response(status=200, body=SLIDER_PAGE, content_type="text/html")
    if mode == "punish_redirect":
        host = request.path.split("/")[1]
        raise web.HTTPFound(f"/{host}/_____tmd_____/punish?x5secdata=xd3f1a8c2b9e&x5step=1")
    if mode == "redirect_foreign":
        raise web.HTTPFound("http://login.example-foreign.invalid/captcha")
    if mode == "redirect_private":
        raise web.HTTPFound("http://10.20.30.40/internal")
    response = await handler(request)
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
    if mode == "unsigned":
        try:
            new_body = orjson.dumps(_zero_untold(orjson.loads(body)))
        except orjson.JSONDecodeError:
            new_body = body  # only JSON answers have these counters
    else:
        new_body = body[: len(body) // 2] if mode == "truncate" else _relayout(body)
    return web.Response(status=response.status, body=new_body, content_type=response.content_type)


async def handle_get(request: web.Request) -> web.Response:
    return json_response([asdict(r) for r in request.app[FAULTS]])


async def handle_set(request: web.Request) -> web.Response:
    try:
        rules = [FaultRule(**{k: v for k, v in item.items() if k != "hits"}) for item in await request.json()]
    except (TypeError, ValueError) as exc:
        return json_response({"error": str(exc)}, status=400)
    request.app[FAULTS][:] = rules
    return json_response([asdict(r) for r in rules])


async def handle_clear(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return json_response([])


async def handle_login_page(_request: web.Request) -> web.Response:
    return web.Response(status=200, body=LOGIN_PAGE, content_type="text/html")


def register(app: web.Application, rules: list[FaultRule]) -> None:
    app[FAULTS] = rules
    app.router.add_get("/{host}/login/", handle_login_page)
    app.router.add_get("/_sim/faults", handle_get)
    app.router.add_post("/_sim/faults", handle_set)
    app.router.add_delete("/_sim/faults", handle_clear)
