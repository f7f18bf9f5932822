"""TikTok Shop Partner API: an authorised shop's live sessions with reported orders and GMV, the
`shop_lives` kind (shapes, signing and limits: shared/platforms.md section 5b).

Every call is signed (`sign_request`) with the app secret; the access token goes in the
`x-tts-access-token` header and is refreshed with the refresh token before it expires (or when the API
says it has). The session list (`shop_lives/performance`) gives each broadcast's reported totals; after
a broadcast, `performance_per_minutes` gives its minute-level history (`backfill history`).

The shop's live id is not the public room id: the session carries the account (`username`) and its
times, and the store links it to the public room of the same account broadcasting at the same time.

Tolerated [U] shapes: a session still live has an empty or "0" `end_time`; the per-minute answer is
`data.intervals[]` with `start_time` (epoch seconds), `gmv{amount,currency}`, `sku_orders`,
`items_sold`, `customers` and `next_page_token` (platforms.md names its contents, not its keys).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from collector.api import (
    MEMORY_ONLY,
    FieldProblem,
    HistoryGap,
    HistoryPoint,
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
from scrapers.extract import MetricSpec, first, load_json, readings_from
from scrapers.tiktok.common import brief
from scrapers.tiktok.live import account_handle

SESSIONS_PATH = "/analytics/202509/shop_lives/performance"
MINUTES_PATH = "/analytics/202510/shop_lives/{live_id}/performance_per_minutes"
REFRESH_PATH = "/api/v2/token/refresh"
PAGE_SIZE = "100"
MAX_PAGES = 50  # 5,000 sessions in a window: far beyond any shop; bounds a looping page_token
WINDOW_DAYS = 30  # the API answers at most 30 days per query
REFRESH_AHEAD = timedelta(minutes=30)  # refresh a token this long before it expires

# Error codes (platforms.md 5b; the token codes as public clients report them [U]).
BAD_SIGNATURE = 106001
TOKEN_INVALID, TOKEN_EXPIRED = 105001, 105002
RATE_LIMITED = 36009002
LOOK_BACK_EXCEEDED = 28001022
INTERNAL_ERROR = 98001001

SALES = (
    MetricSpec(Metric.ORDERS, (("sales_performance", "sku_orders"),), P.REPORTED),
    MetricSpec(Metric.ITEMS_SOLD, (("sales_performance", "items_sold"),), P.REPORTED),
    MetricSpec(Metric.BUYERS, (("sales_performance", "customers"),), P.REPORTED),
)
INTERACTION = tuple(
    MetricSpec(metric, (("interaction_performance", key),), P.REPORTED)
    for metric, key in (
        (Metric.VIEWS, "views"),
        (Metric.UNIQUE_VIEWERS, "viewers"),  # distinct viewers, not the concurrent count
        (Metric.LIKES, "likes"),
        (Metric.COMMENTS, "comments"),
        (Metric.SHARES, "shares"),
        (Metric.NEW_FOLLOWERS, "new_followers"),
    )
)
MINUTE_COUNTS = tuple(
    MetricSpec(metric, ((key,),), P.REPORTED)
    for metric, key in (
        (Metric.ORDERS, "sku_orders"),
        (Metric.ITEMS_SOLD, "items_sold"),
        (Metric.BUYERS, "customers"),
    )
)


def sign_request(secret: str, path: str, params: Mapping[str, str], body: bytes = b"") -> str:
    """The Partner API signature of one request (platforms.md 5b): HMAC-SHA256 keyed by the app secret
    over secret + path + sorted key+value pairs (without `sign` and `access_token`) + body + secret."""
    pairs = "".join(f"{k}{params[k]}" for k in sorted(params) if k not in ("sign", "access_token"))
    message = secret.encode() + path.encode() + pairs.encode() + body + secret.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShopSession:
    """One broadcast in the session list, with its reported totals."""

    live_id: str
    account: str | None
    title: str | None
    started_at: datetime | None
    ended_at: datetime | None
    readings: tuple[Reading, ...]

    @property
    def status(self) -> LiveStatus:
        return LiveStatus.ENDED if self.ended_at is not None else LiveStatus.LIVE

    def observation(self) -> SessionObservation:
        return SessionObservation(
            self.live_id, self.status, self.title, self.started_at, self.ended_at, account=self.account
        )

    def parsed(self) -> ParseResult:
        status = Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[self.status]), P.REPORTED)
        return ParseResult([*self.readings, status], self.observation())


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[ShopSession]
    next_page_token: str | None


def _envelope(body: bytes, url: str) -> Any:
    """`data` of a Partner API answer; an error code becomes the outcome it stands for."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", "Partner API answer is not an object")
    code, message = doc.get("code"), brief(doc.get("message"))
    if code == 0:
        return doc.get("data")
    if code == BAD_SIGNATURE:
        raise LoginWall(f"Partner API refused the signature (code {code}): check app_key/app_secret", url=url)
    if code in (TOKEN_INVALID, TOKEN_EXPIRED):
        raise LoginWall(f"Partner API refused the access token (code {code}, {message})", url=url)
    if code == RATE_LIMITED:
        raise RateLimited(f"Partner API rate limit (code {code})", url=url)
    if code == LOOK_BACK_EXCEEDED:
        raise HttpError(f"dates older than the API's look-back (code {code}, {message})", url=url)
    if code == INTERNAL_ERROR:
        raise Transient(Outcome.HTTP_ERROR, f"Partner API internal error (code {code})", url=url)
    # Anything else is a request the API will not serve (a bad parameter, a clock outside the
    # timestamp window, a cipher of another shop): its code and message say which.
    raise HttpError(f"Partner API code {brief(code)}: {message}", url=url)


def _epoch(value: object) -> datetime | None:
    """An epoch-seconds string or number; empty, "0" or junk is None (a session still live)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) <= 0 or len(text) > 12:
        return None
    return datetime.fromtimestamp(int(text), UTC)


def _money(value: object, what: str) -> Reading | None:
    if not isinstance(value, dict) or value.get("amount") in (None, ""):
        return None
    amount, currency = value.get("amount"), value.get("currency")
    try:
        number = Decimal(str(amount)) if isinstance(amount, str | int | float) else Decimal("NaN")
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number < 0:
        raise ParseFailure("bad_number", f"{what}: {brief(amount)}")
    code = currency if isinstance(currency, str) and len(currency) == 3 and currency.isalpha() else None
    return Reading(Metric.REVENUE, float(number), P.REPORTED, code.upper() if code else None)


def _session(raw: dict[str, Any]) -> ShopSession | None:
    live_id = raw.get("id")
    if isinstance(live_id, int) and not isinstance(live_id, bool):
        live_id = str(live_id)
    if not isinstance(live_id, str) or not live_id.strip():
        return None
    readings = readings_from(raw, SALES) + readings_from(raw, INTERACTION)
    if (gmv := _money(first(raw, ("sales_performance", "gmv")), "gmv")) is not None:
        readings.append(gmv)
    username = raw.get("username")
    title = raw.get("title")
    return ShopSession(
        live_id.strip(),
        account_handle(username.lower()) if isinstance(username, str) else None,
        title if isinstance(title, str) else None,
        _epoch(raw.get("start_time")),
        _epoch(raw.get("end_time")),
        tuple(readings),
    )


def parse_sessions(body: bytes, url: str = "") -> SessionPage:
    """`shop_lives/performance` -> the sessions of one page and the next page's token."""
    data = _envelope(body, url)
    rows = data.get("live_stream_sessions") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(rows, list | None):
        raise ParseFailure("missing_keys", "performance without data.live_stream_sessions")
    sessions = [s for row in rows or () if isinstance(row, dict) and (s := _session(row)) is not None]
    token = data.get("next_page_token")
    return SessionPage(sessions, token if isinstance(token, str) and token else None)


@dataclass(frozen=True, slots=True)
class MinutePage:
    points: list[tuple[datetime, dict[Metric, float], str | None]]  # minute start, values, currency
    next_page_token: str | None


def parse_minutes(body: bytes, url: str = "") -> MinutePage:
    """`performance_per_minutes` -> each minute's orders, items, buyers and GMV (not cumulative)."""
    data = _envelope(body, url)
    rows = data.get("intervals") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(rows, list | None):
        raise ParseFailure("missing_keys", "performance_per_minutes without data.intervals")
    points = []
    for row in rows or ():
        if not isinstance(row, dict) or (start := _epoch(row.get("start_time"))) is None:
            continue
        values = {r.metric: r.value for r in readings_from(row, MINUTE_COUNTS)}
        gmv = _money(row.get("gmv"), "gmv")
        if gmv is not None:
            values[Metric.REVENUE] = gmv.value
        points.append((start, values, gmv.currency if gmv else None))
    token = data.get("next_page_token")
    return MinutePage(sorted(points, key=lambda p: p[0]), token if isinstance(token, str) and token else None)


def minute_history(
    session: ShopSession, points: Sequence[tuple[datetime, dict[Metric, float], str | None]]
) -> Iterator[HistoryPoint]:
    """Running totals at the end of each minute before the session's end (where its final totals
    stand): the reported series of the broadcast, minute by minute."""
    totals: dict[Metric, float] = {}
    observation = session.observation()
    for start, values, currency in points:
        at = start + timedelta(minutes=1)
        for metric, value in values.items():
            totals[metric] = totals.get(metric, 0.0) + value
        if session.ended_at is not None and at >= session.ended_at:
            break
        readings = [
            Reading(metric, value, P.REPORTED, currency if metric is Metric.REVENUE else None)
            for metric, value in totals.items()
        ]
        yield HistoryPoint(ParseResult(readings, observation), at)


# --- fields and credentials ---------------------------------------------------------------------


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def check_shop(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    for name in ("start_date", "end_date"):
        if name in params and _date(params[name]) is None:
            yield FieldProblem(name, f"{params[name][:40]!r} is not a date (YYYY-MM-DD)")
    first_day, last_day = _date(params.get("start_date", "")), _date(params.get("end_date", ""))
    if first_day and last_day and last_day < first_day:
        yield FieldProblem("end_date", "is before start_date")
    if "access_token_expires" in params and _expiry(params["access_token_expires"]) is None:
        yield FieldProblem("access_token_expires", "not an ISO date-time or epoch seconds")


def _expiry(value: str) -> datetime | None:
    text = value.strip()
    if text.isdigit():
        return _epoch(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(slots=True)
class ShopState:
    """A shop target's live credentials: the access token in use (refreshed ones replace the
    configured one) and when it expires, where known.

    Memory only: tokens never go to the database, where every report reader could read them. A restarted
    or moved target starts again from the configured tokens (see README, "Target state").
    """

    access_token: str | None = field(default=None, metadata=MEMORY_ONLY)
    expires_at: datetime | None = field(default=None, metadata=MEMORY_ONLY)
    refresh_token: str | None = field(default=None, metadata=MEMORY_ONLY)
    loaded: bool = field(default=False, metadata=MEMORY_ONLY)


def _secret(ctx: PollContext[ShopState], name: str) -> str | None:
    secret = ctx.target.secrets.get(name)
    return secret.reveal() if secret is not None else None


def _load_credentials(ctx: PollContext[ShopState]) -> None:
    state = ctx.state
    if state.loaded:
        return
    state.access_token = _secret(ctx, "access_token")
    state.refresh_token = _secret(ctx, "refresh_token")
    state.expires_at = _expiry(ctx.target.params.get("access_token_expires", ""))
    state.loaded = True


async def refresh_token(ctx: PollContext[ShopState]) -> None:
    """Trade the refresh token for a new access token (documented token refresh endpoint)."""
    state = ctx.state
    if not state.refresh_token:
        raise LoginWall("access token missing or expired and no refresh_token configured")
    params = {
        "app_key": _secret(ctx, "app_key") or "",
        "app_secret": _secret(ctx, "app_secret") or "",
        "refresh_token": state.refresh_token,
        "grant_type": "refresh_token",
    }
    kept = len(ctx.http.responses)
    try:
        raw = await ctx.http.get(ctx.base_urls["auth"].rstrip("/") + REFRESH_PATH, params=params)
        data = _envelope(raw.body, "")
    except PollError as exc:
        # The refresh URL carries the app secret in its query: name the step, never the URL.
        raise LoginWall(f"token refresh failed: {exc.outcome.value}") from None
    finally:
        del ctx.http.responses[kept:]  # its body holds the new tokens: never stored
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise LoginWall("token refresh answered without an access_token")
    state.access_token = token
    state.expires_at = _epoch(data.get("access_token_expire_in"))
    if isinstance(new_refresh := data.get("refresh_token"), str) and new_refresh:
        state.refresh_token = new_refresh


async def _call(ctx: PollContext[ShopState], path: str, query: Mapping[str, str]) -> RawResponse:
    """One signed GET; a token the API calls expired is refreshed once and the call repeated."""
    _load_credentials(ctx)
    state = ctx.state
    soon = datetime.now(UTC) + REFRESH_AHEAD
    if state.access_token is None or (state.expires_at is not None and state.expires_at <= soon):
        await refresh_token(ctx)
    raw = await _signed_get(ctx, path, query)
    if state.refresh_token and _code(raw.body) in (TOKEN_EXPIRED, TOKEN_INVALID):
        await refresh_token(ctx)
        raw = await _signed_get(ctx, path, query)
    _envelope(raw.body, raw.url)  # the outcome of any other error code
    return raw


def _code(body: bytes) -> object:
    try:
        doc = load_json(body)
    except ParseFailure:
        return None  # not JSON: _envelope says so
    return doc.get("code") if isinstance(doc, dict) else None


async def _signed_get(ctx: PollContext[ShopState], path: str, query: Mapping[str, str]) -> RawResponse:
    params = {
        **query,
        "app_key": _secret(ctx, "app_key") or "",
        "shop_cipher": _secret(ctx, "shop_cipher") or "",
        "timestamp": str(int(time.time())),
    }
    params["sign"] = sign_request(_secret(ctx, "app_secret") or "", path, params)
    headers = {"x-tts-access-token": ctx.state.access_token or "", "content-type": "application/json"}
    return await ctx.http.get(ctx.base_urls["partner"].rstrip("/") + path, params=params, headers=headers)


# --- polling and history ------------------------------------------------------------------------


def _windows(params: Mapping[str, str]) -> list[tuple[date, date]]:
    """[start, end) date windows of at most WINDOW_DAYS covering the target's dates (default: yesterday
    and today, UTC)."""
    today = datetime.now(UTC).date()
    first_day = _date(params.get("start_date", "")) or today - timedelta(days=1)
    last_day = _date(params.get("end_date", "")) or today
    windows, start = [], first_day
    while start <= last_day:
        end = min(start + timedelta(days=WINDOW_DAYS), last_day + timedelta(days=1))
        windows.append((start, end))
        start = end
    return windows


async def list_sessions(ctx: PollContext[ShopState]) -> list[ShopSession]:
    sessions: dict[str, ShopSession] = {}
    for start, end in _windows(ctx.target.params):
        query = {
            "start_date_ge": start.isoformat(),
            "end_date_lt": end.isoformat(),
            "page_size": PAGE_SIZE,
            "currency": "LOCAL",
        }
        for _ in range(MAX_PAGES):
            raw = await _call(ctx, SESSIONS_PATH, query)
            page = parse_sessions(raw.body, raw.url)
            sessions.update({s.live_id: s for s in page.sessions})
            if page.next_page_token is None:
                break
            query = {**query, "page_token": page.next_page_token}
    return list(sessions.values())


def current_session(sessions: Sequence[ShopSession]) -> ShopSession | None:
    """The broadcast on air, else the one that started last."""
    live = [s for s in sessions if s.status is LiveStatus.LIVE]
    dated = [s for s in live or sessions if s.started_at is not None]
    if dated:
        return max(dated, key=lambda s: s.started_at)  # type: ignore[arg-type, return-value]
    return next(iter(live or sessions), None)


async def poll_shop(ctx: PollContext[ShopState]) -> PollResult:
    session = current_session(await list_sessions(ctx))
    expiry = ctx.state.expires_at
    if session is None:
        status = Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[LiveStatus.UNKNOWN]), P.REPORTED)
        return PollResult(Outcome.NOT_LIVE, ParseResult([status]), credentials_expire_at=expiry)
    outcome = Outcome.OK if session.status is LiveStatus.LIVE else Outcome.NOT_LIVE
    return PollResult(outcome, session.parsed(), credentials_expire_at=expiry)


async def shop_history(
    ctx: PollContext[ShopState], _keys: Sequence[str]
) -> AsyncIterator[ParseResult | HistoryPoint | HistoryGap]:
    """Every finished session in the target's dates: its final totals at its end time, then its
    minute-by-minute running totals; a session whose minutes the API will not give is a gap."""
    for session in await list_sessions(ctx):
        if session.status is not LiveStatus.ENDED:
            continue
        yield session.parsed()
        try:
            points = await _minutes(ctx, session.live_id)
        except (Transient, HttpError, ParseFailure, NotFound) as exc:
            if session.started_at is not None and session.ended_at is not None:
                detail = f"per-minute history of live {session.live_id} not available: {exc.detail}"
                yield HistoryGap(session.started_at, session.ended_at, detail[:300])
            continue
        for point in minute_history(session, points):
            yield point


async def _minutes(
    ctx: PollContext[ShopState], live_id: str
) -> list[tuple[datetime, dict[Metric, float], str | None]]:
    path = MINUTES_PATH.format(live_id=live_id)
    query: dict[str, str] = {"currency": "LOCAL"}
    points = []
    for _ in range(MAX_PAGES):
        raw = await _call(ctx, path, query)
        page = parse_minutes(raw.body, raw.url)
        points += page.points
        if page.next_page_token is None:
            break
        query = {**query, "page_token": page.next_page_token}
    return sorted(points, key=lambda p: p[0])


def reparse_shop(raw: RawResponse) -> ParseResult | None:
    """A stored session list back to its current (or latest) session's totals."""
    if SESSIONS_PATH not in raw.url:
        return None
    session = current_session(parse_sessions(raw.body, raw.url).sessions)
    return session.parsed() if session is not None else None
