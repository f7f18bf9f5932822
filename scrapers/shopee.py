"""Shopee Vietnam live sessions (shapes: shared/platforms.md 3.1, 3.2, 5b and 6).

Kind `live`, the public viewer side: the share page calls `POST /api/v1/session/{id}/joinv2` and
`GET /api/v1/session/{id}/more_items`; they are intercepted in a browser (default) or called directly
(`fetch = "http"`, or with no browser). `session_id` is a numeric id, a share URL (`…&session=ID`) or a
short link (`vn.shp.ee/…`, resolved once by following its redirects, cached in the target's state).
Kind `shop_dashboard`: the shop's own creator-dashboard cookies read `realtime/sessionList` and
`realtime/dashboard/overview` (placed and confirmed orders, items, GMV). The Open Platform livestream API
(5b) is documented for TW/ID/TH only, so VN shops use this cookie route.

Estimated sales, as commercial trackers do it: the first lifetime `sold` seen per live-bag item in a
session is its baseline; `items_sold`/`revenue` (provenance `estimated`) are the summed increases since,
times the item price. Limits: lifetime `sold` also counts sales made outside the live, so this is an upper
bound of live sales; sales before the first poll are missed; `sold` may be rounded ("1,2k") or lag;
cancellations and returns are never subtracted. An item leaving the bag keeps its last increase, and the
estimate is frozen once the session has ended.

The gateway's anti-bot answer `{"error": 90309999, "action_type": 2, "is_login": false, "tracking_id": …}`
(real pastes, shared/real-captures/shopee, one with its keys obfuscated to numbers: `{"0": 2, …,
"error": 90309999}`) is Blocked on every host and kind, even with `is_login: false` in it. It is a
verification challenge (action_type 2: solve a captcha / prove a browser) raised for traffic that looks
automated (missing `af-ac-enc-dat` signed headers, a flagged address, too fast), and it is what an anonymous
client gets for the public live API, which needs no login. The operator's fix is that of a block (slow
down, another address, the browser route), not new cookies: a LoginWall would send someone to renew
cookies that are fine, and stop the proxy rotation and breaker that help. [U] other `action_type` values
are unseen and treated the same; a real expired-cookie answer is `is_login: false` without 90309999, or
HTTP 401 / a login redirect on the dashboard.

Tolerated [U] shapes:
- joinv2 envelope `{err_code, err_msg, data}`: non-zero `err_code` without data = no such session
  (NotFound); `is_login: false` or a message mentioning login = LoginWall;
- `viewer_count` is read as current viewers and `member_cnt` as cumulative members (`views`); the web
  example (`viewer_count 1`, `member_cnt 0`) leaves this unconfirmed;
- status 0/1/2 = scheduled/live/ended (Open Platform codes) for joinv2 and the dashboard overview;
  `end_time > 0` also means ended; other codes are UNKNOWN;
- live-bag `price` is a currency-unit string [V]; a number counts as units too unless it is a multiple
  of 100000 and >= 10^9 (then ×100000); without a usable `price`, `original_price` (×100000, pre-discount:
  revenue overstated) stands in; items without any price add to `items_sold` only; the first item's
  `currency` (default VND) is the revenue currency;
- dashboard GMV floats are whole VND (rounded half up); sessionList `startTime` is ms and `duration`
  seconds; HTTP 401, like a redirect to a login page, is a LoginWall; other non-zero `code`/`error`
  values are ParseFailure("api_error");
- a short link's redirects must stay on configured hosts (the HTTP guard refuses others); a final URL
  without `session=` is NotFound;
- before JavaScript the share page has no data; when joinv2 never fired, the page is classified (captcha
  -> Blocked, login -> LoginWall, else ParseFailure("no_joinv2")) and its body kept.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from collector.api import (
    NO_MARKERS,
    Blocked,
    FieldProblem,
    HttpError,
    KindSpec,
    LoginWall,
    NotFound,
    Outcome,
    ParseFailure,
    PollContext,
    PollError,
    PollResult,
    RawResponse,
    check_status,
)
from schemas.types import LIVE_STATUS_CODE, LiveStatus, Metric, ParseResult, Reading, SessionObservation
from schemas.types import Provenance as P
from scrapers.extract import MetricSpec, first, load_json, readings_from
from scrapers.normalise import NumberFormatError, parse_count, parse_money, shopee_price, to_utc
from scrapers.shopee_open import check_open, poll_open

SESSION_STATUS = {0: LiveStatus.SCHEDULED, 1: LiveStatus.LIVE, 2: LiveStatus.ENDED}
ANTI_BOT_ERROR = 90309999  # the gateway's verification challenge (platforms.md 3.3; module docstring)
CURRENCY = "VND"
PRICE_SCALE = 100_000
SCALED_PRICE_MIN = 10**9  # a numeric `price` this large (and a multiple of 100000) is ×100000 [U]
DEFAULT_SHORT = "https://vn.shp.ee"
MAX_NUMBER = 10**15  # larger counts or prices are junk: they would overflow float revenue sums
SESSION_LIST_QUERY = {"page": "1", "pageSize": "10", "name": "", "orderBy": "", "sort": "desc"}

JOIN_METRICS = (
    MetricSpec(Metric.VIEWERS, (("viewer_count",),)),
    MetricSpec(Metric.VIEWS, (("member_cnt",),)),
    MetricSpec(Metric.LIKES, (("like_cnt",),)),
    MetricSpec(Metric.ITEMS_ON_SALE, (("items_cnt",),)),
)
OVERVIEW_METRICS = (
    MetricSpec(Metric.VIEWERS, (("ccu",),), P.REPORTED),
    MetricSpec(Metric.PEAK_VIEWERS, (("pcu",),), P.REPORTED),
    MetricSpec(Metric.VIEWS, (("views",), ("engagementData", "views")), P.REPORTED),
    MetricSpec(Metric.ORDERS, (("placedOrder",),), P.REPORTED),
    MetricSpec(Metric.ITEMS_SOLD, (("placedItemsSold",),), P.REPORTED),
    MetricSpec(Metric.ORDERS_CONFIRMED, (("confirmedOrder",),), P.REPORTED),
    MetricSpec(Metric.ITEMS_SOLD_CONFIRMED, (("confirmedItemsSold",),), P.REPORTED),
    MetricSpec(Metric.LIKES, (("engagementData", "likes"),), P.REPORTED),
    MetricSpec(Metric.COMMENTS, (("engagementData", "comments"),), P.REPORTED),
    MetricSpec(Metric.SHARES, (("engagementData", "shares"),), P.REPORTED),
    MetricSpec(Metric.NEW_FOLLOWERS, (("engagementData", "newFollowers"),), P.REPORTED),
)
OVERVIEW_MONEY = ((Metric.REVENUE, "placedGmv"), (Metric.REVENUE_CONFIRMED, "confirmedGmv"))

_SESSION_PARAM = re.compile(r"[?&#]session=(\d{1,20})(?!\d)")
_SHORT_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_INT = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Item:
    """One live-bag item: lifetime `sold` and price in whole currency units (None where unreadable)."""

    item_id: str
    sold: int | None
    price: int | None
    currency: str = CURRENCY
    name: str | None = None


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """One row of the creator dashboard's session list."""

    session_id: str
    title: str | None = None
    started_at: datetime | None = None
    duration: int | None = None  # seconds [U]


def _brief(value: object) -> str:
    return repr(value)[:80] if isinstance(value, str | int | float | None) else type(value).__name__


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _id(value: object) -> str | None:
    """A numeric id as a string; only str/int (str() of deep nesting fails), ASCII digits, not all zeros."""
    if not _scalar(value) or isinstance(value, float):
        return None
    text = str(value).strip() if isinstance(value, str) or 0 < value < 10**20 else ""  # type: ignore[operator]
    return text if text.isascii() and text.isdigit() and text.strip("0") and len(text) <= 20 else None


def _code(value: object) -> int | None:
    """An envelope code as an int: None when absent or zero, -1 when unreadable."""
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        value = int(value)
    if value is None or isinstance(value, bool) or value in ("", 0):
        return None
    return value if isinstance(value, int) else -1


def _count(value: object) -> int | None:
    try:
        number = parse_count(value) if _scalar(value) else -1  # type: ignore[arg-type]
    except NumberFormatError:
        return None
    return number if 0 <= number <= MAX_NUMBER else None


def _time(value: object) -> datetime | None:
    try:
        return to_utc(value) if value and _scalar(value) else None  # type: ignore[arg-type]
    except NumberFormatError:
        return None


def _status(value: object) -> LiveStatus:
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        value = int(value)
    return SESSION_STATUS.get(value, LiveStatus.UNKNOWN) if type(value) is int else LiveStatus.UNKNOWN


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _object(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object of an answer; the anti-bot challenge raises Blocked, not-logged-in LoginWall."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", f"{what} is not an object")
    if any(_code(doc.get(k)) == ANTI_BOT_ERROR for k in ("error", "code")):
        action = doc.get("action_type", doc.get("0"))
        raise Blocked(
            f"Shopee {what}: anti-bot verification challenge (error 90309999, action_type {_brief(action)})"
        )
    if doc.get("is_login") is False:
        raise LoginWall(f"Shopee {what}: not logged in (cookies missing or expired)")
    for key in ("err_msg", "error_msg", "msg"):
        if "login" in (message := _text(doc.get(key)) or "").lower():
            raise LoginWall(f"Shopee {what}: {message[:80]}")
    return doc


def _live_data(body: bytes, what: str) -> Any:
    """`data` of a live.shopee answer; a non-zero `err_code` without data is an unknown session."""
    doc = _object(body, what)
    code = _code(doc.get("err_code"))
    if code is not None and not doc.get("data"):
        raise NotFound(f"Shopee live session not found ({what} err_code {code})")
    if code is not None or _code(doc.get("error")) is not None:
        raise ParseFailure("api_error", f"{what} err_code {_brief(doc.get('err_code'))}")
    return doc.get("data")


def _status_reading(status: LiveStatus, provenance: P = P.OBSERVED) -> Reading:
    return Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[status]), provenance)


def parse_joinv2(body: bytes) -> ParseResult:
    """`POST /api/v1/session/{id}/joinv2` -> viewers, members, likes, items on sale, status, session."""
    session = first(_live_data(body, "joinv2"), ("session",))
    if not isinstance(session, dict):
        raise ParseFailure("missing_keys", "joinv2 without data.session")
    key = _id(session.get("session_id"))
    if key is None or "status" not in session:
        raise ParseFailure("missing_keys", "joinv2 session without session_id/status")
    ended_at = _time(session.get("end_time"))
    status = LiveStatus.ENDED if ended_at else _status(session.get("status"))
    readings = [*readings_from(session, JOIN_METRICS), _status_reading(status)]
    started_at = _time(session.get("start_time"))
    return ParseResult(
        readings, SessionObservation(key, status, _text(session.get("title")), started_at, ended_at)
    )


def _price(price: object, original: object) -> int | None:
    if type(price) is int and price >= 0:
        amount = shopee_price(price) if price >= SCALED_PRICE_MIN and price % PRICE_SCALE == 0 else price
        return amount if amount <= MAX_NUMBER else None
    try:
        amount = parse_money(price).amount if _scalar(price) else -1  # type: ignore[arg-type]
    except NumberFormatError:
        amount = -1
    if 0 <= amount <= MAX_NUMBER:
        return amount
    try:  # the pre-discount price, ×100000
        amount = shopee_price(original) if _scalar(original) else -1  # type: ignore[arg-type]
    except NumberFormatError:
        return None
    return amount if 0 <= amount <= MAX_NUMBER else None


def _item(raw: object) -> Item | None:
    if not isinstance(raw, dict) or (item_id := _id(raw.get("item_id"))) is None:
        return None
    currency = _text(raw.get("currency")) or ""
    currency = currency if _CURRENCY_CODE.fullmatch(currency) else CURRENCY
    price = _price(raw.get("price"), raw.get("original_price"))
    return Item(item_id, _count(raw.get("sold")), price, currency, _text(raw.get("name")))


def parse_more_items(body: bytes) -> list[Item]:
    """`GET /api/v1/session/{id}/more_items` -> the live-bag items (entries without an id are skipped)."""
    data = _live_data(body, "more_items")
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(items, list | None):
        raise ParseFailure("missing_keys", "more_items without data.items")
    return [item for raw in items or () if (item := _item(raw)) is not None]


def classify_share_page(body: bytes) -> PollError:
    """Why a share page produced no joinv2 call (its HTML carries no counters before JavaScript runs)."""
    lowered = body[:200_000].lower()
    if b"captcha" in lowered or b"/verify/traffic" in lowered:
        return Blocked("Shopee share page answered with a captcha")
    if b"/buyer/login" in lowered:
        return LoginWall("Shopee share page redirected to login")
    return ParseFailure("no_joinv2", "the share page never called joinv2")


def session_from_url(url: str) -> str | None:
    """The `session=` id in a share/PC/preview URL, also inside URL-encoded redirect parameters."""
    for _ in range(3):
        if match := _SESSION_PARAM.search(url):
            return _id(match[1])
        url, previous = unquote(url), url
        if url == previous:
            break
    return None


def parse_session_ref(value: str) -> str | None:
    """A target's `session_id`: a numeric id or a URL with `session=`; None for a short link."""
    text = value.strip()
    return _id(text) if text.isdigit() else session_from_url(text)


def estimate_sales(baseline: Mapping[str, int], items: Iterable[Item]) -> tuple[int, int, dict[str, int]]:
    """(items sold, revenue, new baseline) since each item's first-seen lifetime `sold`.

    Items seen for the first time join the baseline at their current `sold` (adding nothing now); a
    `sold` below its baseline (rounding, corrections) counts as zero; items without a price add to the
    items sold but not to the revenue; an item listed twice counts once (the last entry).
    """
    new = dict(baseline)
    sold = revenue = 0
    for item_id, item in {item.item_id: item for item in items if item.sold is not None}.items():
        gained = max(0, item.sold - new.setdefault(item_id, item.sold))  # type: ignore[operator]
        sold += gained
        revenue += gained * (item.price or 0)
    return sold, revenue, new


def _sales_readings(sold: int, revenue: int, currency: str) -> list[Reading]:
    return [
        Reading(Metric.ITEMS_SOLD, float(sold), P.ESTIMATED),
        Reading(Metric.REVENUE, float(revenue), P.ESTIMATED, currency),
    ]


@dataclass(slots=True)
class SalesEstimate:
    """One session's live-bag baseline and the estimate it gives; a new session starts a new one."""

    session: str
    baseline: dict[str, int] = field(default_factory=dict)
    seen: dict[str, Item] = field(default_factory=dict)
    currency: str = CURRENCY
    sold: int = 0
    revenue: int = 0

    def update(self, items: list[Item]) -> list[Reading]:
        self.seen.update({item.item_id: item for item in items if item.sold is not None})
        self.sold, self.revenue, self.baseline = estimate_sales(self.baseline, self.seen.values())
        self.currency = items[0].currency if items else self.currency
        return self.readings()

    def readings(self) -> list[Reading]:
        return _sales_readings(self.sold, self.revenue, self.currency)


@dataclass(slots=True)
class LiveState:
    """What a `live` target keeps between polls: its resolved short link and the sales estimate."""

    session_ref: tuple[str, str] | None = None  # (the target's session_id field, the id it names)
    sales: SalesEstimate | None = None


def _dashboard_data(body: bytes, what: str) -> Any:
    doc = _object(body, what)
    for key in ("code", "error"):
        if (code := _code(doc.get(key))) is not None:
            raise ParseFailure("api_error", f"{what} {key} {code}")
    return doc.get("data")


def parse_session_list(body: bytes) -> list[DashboardSession]:
    """`realtime/sessionList` -> the shop's sessions as listed (rows without a session id skipped)."""
    data = _dashboard_data(body, "sessionList")
    rows = data.get("list") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(rows, list | None):
        raise ParseFailure("missing_keys", "sessionList without data.list")
    return [
        DashboardSession(
            key, _text(row.get("title")), _time(row.get("startTime")), _count(row.get("duration"))
        )
        for row in rows or ()
        if isinstance(row, dict) and (key := _id(row.get("sessionId")))
    ]


def newest_session(sessions: list[DashboardSession], pinned: str | None = None) -> DashboardSession | None:
    """The pinned session (listed or not), else the latest start (else the first row)."""
    if pinned:
        return next((s for s in sessions if s.session_id == pinned), DashboardSession(pinned))
    dated = [s for s in sessions if s.started_at is not None]
    return max(dated, key=lambda s: s.started_at) if dated else next(iter(sessions), None)  # type: ignore[arg-type, return-value]


def parse_overview(body: bytes, session: DashboardSession) -> ParseResult:
    """`realtime/dashboard/overview?sessionId=` -> reported counters, orders and GMV of `session`."""
    data = _dashboard_data(body, "overview")
    if not isinstance(data, dict):
        raise ParseFailure("missing_keys", "overview without data")
    readings = readings_from(data, OVERVIEW_METRICS)
    for metric, key in OVERVIEW_MONEY:
        if (raw := data.get(key)) is None:
            continue
        try:
            amount = parse_money(raw).amount if _scalar(raw) else -1
        except NumberFormatError:
            amount = -1
        if amount < 0:
            raise ParseFailure("bad_number", f"{metric}: {_brief(raw)}")
        readings.append(Reading(metric, float(amount), P.REPORTED, CURRENCY))
    status = _status(data.get("status"))
    readings.append(_status_reading(status, P.REPORTED))
    ended_at = None
    if status is LiveStatus.ENDED and session.started_at and session.duration is not None:
        ended_at = session.started_at + timedelta(seconds=session.duration)
    observation = SessionObservation(session.session_id, status, session.title, session.started_at, ended_at)
    return ParseResult(readings, observation)


FETCH_OPTIONS = ("browser", "http")


def _short_link_url(ref: str, short: str) -> str | None:
    """The URL to follow for a short link given as a URL or a bare code; None for anything else."""
    if ref.startswith(DEFAULT_SHORT + "/"):  # the real host, with the short base configured elsewhere
        return short + ref[len(DEFAULT_SHORT) :]
    if ref.startswith(("http://", "https://")):
        return ref
    if _SHORT_CODE.fullmatch(ref):
        return f"{short}/{ref}"
    return None


def check_live(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("session_id", "").strip()
    if ref and parse_session_ref(ref) is None and _short_link_url(ref, DEFAULT_SHORT) is None:
        yield FieldProblem("session_id", f"not a Shopee session id, share URL or short link: {ref[:80]!r}")
    fetch = params.get("fetch", "browser").strip().lower()
    if fetch not in FETCH_OPTIONS:
        yield FieldProblem("fetch", f"must be 'browser' or 'http', not {fetch[:20]!r}")


def check_dashboard(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("session_id", "").strip()
    if ref and parse_session_ref(ref) is None:
        yield FieldProblem("session_id", f"not a Shopee session id or share URL: {ref[:80]!r}")


async def poll_live(ctx: PollContext[LiveState]) -> PollResult:
    session_id = await _session_id(ctx)
    joined, bag = await _fetch_live(ctx, session_id)
    parsed = parse_joinv2(joined.body)
    assert parsed.session is not None
    status, key, sales = parsed.session.status, parsed.session.key, ctx.state.sales
    if status is LiveStatus.LIVE and bag is not None:
        if sales is None or sales.session != key:
            sales = ctx.state.sales = SalesEstimate(key)
        parsed.readings += sales.update(parse_more_items(bag.body))
    elif status is LiveStatus.ENDED and sales is not None and sales.session == key:
        parsed.readings += sales.readings()  # frozen at the end
    return PollResult(Outcome.OK if status is LiveStatus.LIVE else Outcome.NOT_LIVE, parsed)


async def _session_id(ctx: PollContext[LiveState]) -> str:
    ref = ctx.target.params["session_id"].strip()
    cached = ctx.state.session_ref
    if cached is not None and cached[0] == ref:
        return cached[1]
    session_id = parse_session_ref(ref)
    if session_id is None:
        url = _short_link_url(ref, ctx.base_urls["short"].rstrip("/"))
        if url is None:
            raise NotFound(f"not a Shopee session id, share URL or short link: {ref[:80]!r}")
        raw = await ctx.http.get(url)  # redirects are followed; the final URL names the session
        if (session_id := session_from_url(raw.url)) is None:
            raise NotFound(f"short link {ref[:80]!r} did not lead to a live session", url=raw.url)
    ctx.state.session_ref = (ref, session_id)
    return session_id


async def _fetch_live(ctx: PollContext[LiveState], session_id: str) -> tuple[RawResponse, RawResponse | None]:
    live = ctx.base_urls["live"].rstrip("/")
    share = f"{live}/share?from=live&session={session_id}"
    fetch = ctx.target.params.get("fetch", "browser").strip().lower()
    if fetch == "http" or ctx.browser is None:
        api, headers = f"{live}/api/v1/session/{session_id}", {"Referer": share, "Origin": live}
        joined = await ctx.http.post(f"{api}/joinv2", json={}, headers=headers)
        if parse_joinv2(joined.body).session.status is not LiveStatus.LIVE:  # type: ignore[union-attr]
            return joined, None  # no bag needed: the estimate is frozen or not started
        return joined, await ctx.http.get(f"{api}/more_items", headers=headers)
    wanted = (f"/api/v1/session/{session_id}/joinv2", "/more_items")
    capture = await ctx.browser.capture(share, wait_for=wanted, click="video")
    if (joined := capture.responses.get(wanted[0])) is None:
        raise classify_share_page(capture.page.body)
    check_status(joined)
    if (bag := capture.responses.get(wanted[1])) is not None:
        check_status(bag)
    return joined, bag


async def _creator_get(ctx: PollContext[None], url: str, params: Mapping[str, str]) -> RawResponse:
    creator = ctx.base_urls["creator"].rstrip("/")
    headers = {"Cookie": ctx.target.secrets["cookies"].reveal(), "Referer": f"{creator}/"}
    try:
        raw = await ctx.http.get(url, params=params, headers=headers)
    except HttpError as exc:
        if exc.status == 401:
            raise LoginWall(
                "creator dashboard answered HTTP 401 (cookies expired)", url=exc.url, status=401
            ) from None
        raise
    return raw  # a redirect to a login page is a LoginWall in check_status already


async def poll_dashboard(ctx: PollContext[None]) -> PollResult:
    api = ctx.base_urls["creator"].rstrip("/") + "/supply/api/lm/sellercenter/realtime"
    ref = ctx.target.params.get("session_id", "").strip()
    pinned = parse_session_ref(ref) if ref else None
    listed = await _creator_get(ctx, f"{api}/sessionList", SESSION_LIST_QUERY)
    chosen = newest_session(parse_session_list(listed.body), pinned)
    if chosen is None:  # no session yet
        return PollResult(Outcome.NOT_LIVE, ParseResult([_status_reading(LiveStatus.UNKNOWN, P.REPORTED)]))
    raw = await _creator_get(ctx, f"{api}/dashboard/overview", {"sessionId": chosen.session_id})
    parsed = parse_overview(raw.body, chosen)
    live = parsed.session is not None and parsed.session.status is LiveStatus.LIVE
    return PollResult(Outcome.OK if live else Outcome.NOT_LIVE, parsed)


def reparse_live(raw: RawResponse) -> ParseResult | None:
    """joinv2 alone gives the public counters; the sales estimate needs the poll history, not one body."""
    return parse_joinv2(raw.body) if raw.url.rstrip("/").endswith("/joinv2") else None


def reparse_dashboard(raw: RawResponse) -> ParseResult | None:
    if "/dashboard/overview" not in raw.url or (session_id := _query_session(raw.url)) is None:
        return None
    return parse_overview(raw.body, DashboardSession(session_id))


def _query_session(url: str) -> str | None:
    match = re.search(r"[?&]sessionId=(\d{1,20})(?!\d)", url)
    return _id(match[1]) if match else None


async def dashboard_history(ctx: PollContext[None], _keys: Sequence[str]) -> AsyncIterator[ParseResult]:
    """Every session the dashboard lists, with its final reported orders, items and GMV."""
    api = ctx.base_urls["creator"].rstrip("/") + "/supply/api/lm/sellercenter/realtime"
    listed = await _creator_get(ctx, f"{api}/sessionList", SESSION_LIST_QUERY)
    for session in parse_session_list(listed.body):
        raw = await _creator_get(ctx, f"{api}/dashboard/overview", {"sessionId": session.session_id})
        yield parse_overview(raw.body, session)


class ShopeeAdapter:
    name = "shopee"
    kinds = {
        "live": KindSpec(
            poll_live,
            required=("session_id",),
            optional=("fetch",),
            uses_browser=lambda params: params.get("fetch", "browser").strip().lower() != "http",
            check=check_live,
            new_state=LiveState,
            reparse=reparse_live,
            summary="a live session's public counters and estimated sales, by id, share URL or short link",
        ),
        "shop_dashboard": KindSpec(
            poll_dashboard,
            optional=("session_id",),
            required_secrets=("cookies",),
            check=check_dashboard,
            reparse=reparse_dashboard,
            history=dashboard_history,
            history_lists_sessions=True,
            summary="the shop's own creator dashboard: orders, items sold and GMV, placed and confirmed",
        ),
        "open_platform": KindSpec(
            poll_open,
            required=("session_id",),
            optional=("currency",),
            required_secrets=("partner_id", "partner_key", "shop_id", "access_token"),
            check=check_open,
            summary="an authorised shop's session from the Open Platform API (TW/ID/TH; VN unconfirmed)",
        ),
    }
    default_base_urls = {
        "open": "https://partner.shopeemobile.com",
        "live": "https://live.shopee.vn",
        "creator": "https://creator.shopee.vn",
        "short": DEFAULT_SHORT,
    }
    # Shopee answers bots with captcha pages and JSON codes, which the parsers classify themselves.
    markers = NO_MARKERS


adapter = ShopeeAdapter()
