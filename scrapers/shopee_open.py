"""Shopee Open Platform livestream API: an authorised shop's session with reported GMV and orders, the
`open_platform` kind of `shopee` (platforms.md 5b).

The livestream API is documented for TW, ID and TH shops; whether Vietnamese shops can use it is not
confirmed [U], so for them the creator-dashboard route (`shop_dashboard`) is the one to use. Calls are
signed as Shopee's v2 shop-level API documents: `sign = hex(HMAC-SHA256(partner_key, partner_id + path
+ timestamp + access_token + shop_id))`, with `partner_id`, `timestamp`, `access_token`, `shop_id` and
`sign` in the query. The token rides in the query, so every URL this module keeps or puts in an error
has it replaced by `***`.

Tolerated [U] shapes: `start_time`/`end_time` in seconds or milliseconds (0 while live); metrics may
come as strings; an unknown `error` string is an HTTP error carrying it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from collector.api import (
    FieldProblem,
    HttpError,
    LoginWall,
    NotFound,
    Outcome,
    ParseFailure,
    PollContext,
    PollError,
    PollResult,
    RateLimited,
    RawResponse,
    Transient,
)
from schemas.types import LIVE_STATUS_CODE, LiveStatus, Metric, ParseResult, Reading, SessionObservation
from schemas.types import Provenance as P
from scrapers.extract import MetricSpec, load_json, readings_from
from scrapers.normalise import NumberFormatError, to_utc

DETAIL_PATH = "/api/v2/livestream/get_session_detail"
METRIC_PATH = "/api/v2/livestream/get_session_metric"
STATUS = {0: LiveStatus.SCHEDULED, 1: LiveStatus.LIVE, 2: LiveStatus.ENDED}
AUTH_ERRORS = (
    "error_sign",
    "error_auth",
    "invalid_access_token",
    "invalid_acceess_token",
    "error_permission",
)
METRICS = tuple(
    MetricSpec(metric, ((key,),), P.REPORTED)
    for metric, key in (
        (Metric.ORDERS, "orders"),
        (Metric.VIEWERS, "ccu"),
        (Metric.PEAK_VIEWERS, "peak_ccu"),
        (Metric.VIEWS, "views"),
        (Metric.LIKES, "likes"),
        (Metric.COMMENTS, "comments"),
        (Metric.SHARES, "shares"),
    )
)


def sign_shop_request(
    partner_key: str, partner_id: str, path: str, timestamp: str, token: str, shop_id: str
) -> str:
    message = f"{partner_id}{path}{timestamp}{token}{shop_id}"
    return hmac.new(partner_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def _response(body: bytes, what: str) -> dict[str, Any]:
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", f"{what} is not an object")
    error = doc.get("error")
    if error:
        text = f"{what}: {str(error)[:60]} {str(doc.get('message') or '')[:120]}".strip()
        if error in AUTH_ERRORS:
            raise LoginWall(text)
        if "too_many" in str(error) or "rate" in str(error):
            raise RateLimited(text)
        if error in ("error_not_found", "error_data_not_exist"):
            raise NotFound(text)
        if error in ("error_server", "error_inner", "error_busy"):
            raise Transient(Outcome.HTTP_ERROR, text)
        raise HttpError(text)
    response = doc.get("response")
    if not isinstance(response, dict):
        raise ParseFailure("missing_keys", f"{what} without response")
    return response


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip("0 "):
        return None
    try:
        return to_utc(value)
    except NumberFormatError:
        return None


def parse_session(detail: bytes, metric: bytes, currency: str) -> ParseResult:
    """`get_session_detail` and `get_session_metric` -> the session's reported counters."""
    info = _response(detail, "get_session_detail")
    numbers = _response(metric, "get_session_metric")
    status = STATUS.get(info.get("status"), LiveStatus.UNKNOWN)  # type: ignore[arg-type]
    readings = readings_from(numbers, METRICS)
    if (gmv := numbers.get("gmv")) is not None:
        try:
            amount = float(gmv) if isinstance(gmv, int | float | str) and not isinstance(gmv, bool) else -1.0
        except ValueError:
            amount = -1.0
        if not 0 <= amount < 1e15:
            raise ParseFailure("bad_number", f"gmv: {str(gmv)[:40]!r}")
        readings.append(Reading(Metric.REVENUE, amount, P.REPORTED, currency))
    readings.append(Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[status]), P.REPORTED))
    key = str(info.get("session_id") or "").strip()
    title = info.get("title")
    session = SessionObservation(
        key,
        status,
        title if isinstance(title, str) else None,
        _time(info.get("start_time")),
        _time(info.get("end_time")) if status is LiveStatus.ENDED else None,
    )
    return ParseResult(readings, session if key.isdigit() else None)


def check_open(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    if not params.get("session_id", "").strip().isdigit():
        yield FieldProblem("session_id", "the Open Platform takes the numeric session id")
    currency = params.get("currency", "VND")
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        yield FieldProblem("currency", f"{currency[:10]!r} is not an ISO 4217 code like TWD, IDR, THB")


def _redacted(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


async def _get(ctx: PollContext[None], path: str, session_id: str) -> RawResponse:
    secrets = ctx.target.secrets
    partner_id, shop_id = secrets["partner_id"].reveal(), secrets["shop_id"].reveal()
    token, stamp = secrets["access_token"].reveal(), str(int(time.time()))
    params = {
        "partner_id": partner_id,
        "timestamp": stamp,
        "access_token": token,
        "shop_id": shop_id,
        "sign": sign_shop_request(secrets["partner_key"].reveal(), partner_id, path, stamp, token, shop_id),
        "session_id": session_id,
    }
    kept = len(ctx.http.responses)
    try:
        await ctx.http.get(ctx.base_urls["open"].rstrip("/") + path, params=params)
    except PollError as exc:
        exc.detail = _redacted(exc.detail, token)
        exc.url = _redacted(exc.url, token) if exc.url else exc.url
        exc.args = (exc.detail,)
        raise
    finally:
        # The query carries the access token: what the collector keeps shows it as ***.
        ctx.http.responses[kept:] = [
            dataclasses.replace(raw, url=_redacted(raw.url, token)) for raw in ctx.http.responses[kept:]
        ]
    return ctx.http.responses[-1]


async def poll_open(ctx: PollContext[None]) -> PollResult:
    session_id = ctx.target.params["session_id"].strip()
    detail = await _get(ctx, DETAIL_PATH, session_id)
    metric = await _get(ctx, METRIC_PATH, session_id)
    parsed = parse_session(detail.body, metric.body, ctx.target.params.get("currency", "VND"))
    live = parsed.session is not None and parsed.session.status is LiveStatus.LIVE
    return PollResult(Outcome.OK if live else Outcome.NOT_LIVE, parsed)
