"""The Shopee adapter: pure parse functions against fixtures (shapes: shared/platforms.md 3.1, 3.2, 6),
the live-bag sales estimate, property tests that only PollErrors escape, and `poll` end to end against
the simulator over real HTTP (and, when Chromium is installed, through a real browser).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api import PollResult, RawResponse, Transient
from collector.browser import BrowserCapture
from collector.config import HttpSettings, TargetConfig
from collector.http import HttpClient, HttpFetcher
from collector.outcomes import Blocked, HttpError, LoginWall, NotFound, Outcome, ParseFailure, PollError
from collector.secrets import Secret
from schemas.types import LiveStatus, Metric, ParseResult, Provenance, Reading, SessionObservation
from scrapers.shopee import (
    DashboardSession,
    Item,
    LiveState,
    adapter,
    classify_share_page,
    estimate_sales,
    newest_session,
    parse_joinv2,
    parse_more_items,
    parse_overview,
    parse_session_list,
    parse_session_ref,
    session_from_url,
)
from simulator import shopee as sim
from simulator.app import PLATFORMS, build_app
from simulator.clock import SimClock
from simulator.faults import FaultRule
from simulator.keys import FAULTS, REQUEST_LOG
from simulator.scenario import demo
from tests.fuzzing import DELETE, json_values, mutate, paths
from tests.polling import poll_kind

FIXTURES = Path(__file__).parent / "fixtures" / "shopee"
SESSION = "165432987"
TITLE = "Chè Shan Tuyết - giờ vàng giá sốc 🍵"
STARTED = datetime(2024, 11, 18, 6, 50, tzinfo=UTC)
OBS, R, E = Provenance.OBSERVED, Provenance.REPORTED, Provenance.ESTIMATED


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def raises(cls: type[PollError], call: Callable[[], object], reason: str | None = None) -> PollError:
    """`call` raises exactly `cls` (and, for ParseFailure, `reason`)."""
    with pytest.raises(PollError) as info:
        call()
    assert type(info.value) is cls, f"expected {cls.__name__}, got {info.value!r}"
    if reason is not None:
        assert isinstance(info.value, ParseFailure) and info.value.reason == reason
    return info.value


def table(result: ParseResult) -> dict[Metric, tuple[float, Provenance, str | None]]:
    metrics = [r.metric for r in result.readings]
    assert len(metrics) == len(set(metrics)), "a metric was read twice"
    return {r.metric: (r.value, r.provenance, r.currency) for r in result.readings}


# --- joinv2 -----------------------------------------------------------------------------------------


def test_joinv2_live() -> None:
    result = parse_joinv2(fixture("joinv2_live.json"))
    assert table(result) == {
        Metric.VIEWERS: (812, OBS, None),
        Metric.VIEWS: (23456, OBS, None),
        Metric.LIKES: (98765, OBS, None),
        Metric.ITEMS_ON_SALE: (4, OBS, None),
        Metric.LIVE_STATUS: (2, OBS, None),
    }
    assert result.session == SessionObservation(SESSION, LiveStatus.LIVE, TITLE, STARTED)


def test_joinv2_ended() -> None:
    result = parse_joinv2(fixture("joinv2_ended.json"))
    assert table(result) == {
        Metric.VIEWERS: (0, OBS, None),
        Metric.VIEWS: (61204, OBS, None),
        Metric.LIKES: (402551, OBS, None),
        Metric.ITEMS_ON_SALE: (4, OBS, None),
        Metric.LIVE_STATUS: (4, OBS, None),
    }
    ended = datetime(2024, 11, 18, 9, 50, tzinfo=UTC)
    assert result.session == SessionObservation(SESSION, LiveStatus.ENDED, TITLE, STARTED, ended)


def test_joinv2_missing_keys_and_error_envelope() -> None:
    raises(ParseFailure, lambda: parse_joinv2(fixture("joinv2_missing_keys.json")), "missing_keys")
    raises(NotFound, lambda: parse_joinv2(fixture("joinv2_error.json")))


def _join(**session: Any) -> bytes:
    base = {"session_id": 1, "status": 1, "viewer_count": 5}
    return json.dumps({"err_code": 0, "data": {"session": {**base, **session}}}).encode()


JOINV2_INLINE = [
    (_join(status="1", session_id="77"), ("77", LiveStatus.LIVE)),
    (_join(status=0), ("1", LiveStatus.SCHEDULED)),
    (_join(status=9), ("1", LiveStatus.UNKNOWN)),
    (_join(status=1, end_time=1731923400000), ("1", LiveStatus.ENDED)),  # end_time > 0 wins
    (_join(status=1, end_time=-1, start_time="soon", title=5), ("1", LiveStatus.LIVE)),
]


@pytest.mark.parametrize(("body", "expected"), JOINV2_INLINE)
def test_joinv2_status_variants(body: bytes, expected: tuple[str, LiveStatus]) -> None:
    session = parse_joinv2(body).session
    assert session is not None and (session.key, session.status) == expected


JOINV2_ERRORS = [
    (b"", ParseFailure, "bad_json"),
    (b"[]", ParseFailure, "unexpected_shape"),
    # The gateway's verification challenge is a block, even with is_login false (module docstring).
    (b'{"error":90309999,"is_login":false,"action_type":2}', Blocked, None),
    (b'{"0":2,"1":"x","2":true,"3":90309999,"5":false,"error":90309999}', Blocked, None),
    (b'{"is_login":false}', LoginWall, None),
    (b'{"err_code":1001,"err_msg":"please login first","data":null}', LoginWall, None),
    (b'{"err_code":7,"err_msg":"busy","data":{"session":{}}}', ParseFailure, "api_error"),
    (b'{"err_code":0,"data":{"usersig":"x"}}', ParseFailure, "missing_keys"),
    (_join(session_id="0"), ParseFailure, "missing_keys"),
    (_join(viewer_count="many"), ParseFailure, "bad_number"),
    (_join(like_cnt={"n": 1}), ParseFailure, "bad_number"),
]


@pytest.mark.parametrize(("body", "cls", "reason"), JOINV2_ERRORS)
def test_joinv2_errors(body: bytes, cls: type[PollError], reason: str | None) -> None:
    raises(cls, lambda: parse_joinv2(body), reason)


# --- more_items ---------------------------------------------------------------------------------------


def test_more_items_normal() -> None:
    assert parse_more_items(fixture("more_items_normal.json")) == [
        Item("22583912345", 1200, 189000, "VND", "Chè Shan Tuyết Lai Châu 200g"),
        Item("22583912346", 845, 320000, "VND", "Mật ong bạc hà Tam Đường 500ml"),
        Item("22583912347", 3021, 165000, "VND", "Gạo Séng Cù Mường Than 5kg"),
        Item("22583912348", 410, 65000, "VND", "Miến dong Bình Lư 500g"),
    ]


def test_more_items_empty() -> None:
    assert parse_more_items(fixture("more_items_empty.json")) == []
    assert parse_more_items(b'{"err_code":0,"data":{"items":null}}') == []


def test_more_items_string_and_scaled_prices() -> None:
    assert parse_more_items(fixture("more_items_prices.json")) == [
        # "189.000" is Vietnamese grouping; "1,2k" is a rounded display count.
        Item("22583912345", 1200, 189000, "VND", "Chè Shan Tuyết Lai Châu 200g"),
        # A numeric price >= 10^9 and a multiple of 100000 is the ×100000 shape.
        Item("22583912349", 57, 120000, "VND", "Thảo quả sấy khô Phong Thổ 300g"),
        # No price: original_price (×100000) stands in; no currency: VND.
        Item("22583912350", 130, 95000, "VND", "Hạt dổi rừng Lai Châu 100g"),
        # A plain numeric price is in currency units; a null sold is unknown.
        Item("22583912351", None, 390000, "VND", "Sâm Lai Châu lát khô 20g"),
        # "-1" and -1 are "no price"; a lower-case currency is not an ISO code.
        Item("22583912352", 12, None, "VND", "Quà tặng kèm"),
        # The entry without item_id and the string entry are skipped.
    ]


MORE_ITEMS_ERRORS = [
    (b"{", ParseFailure, "bad_json"),
    (b'"items"', ParseFailure, "unexpected_shape"),
    (b'{"err_code":0,"data":{"items":{"a":1}}}', ParseFailure, "missing_keys"),
    (b'{"err_code":0,"data":[]}', ParseFailure, "missing_keys"),
    (b'{"err_code":4040001,"err_msg":"session not found","data":null}', NotFound, None),
    (b'{"err_code":"12","data":{"items":[]}}', ParseFailure, "api_error"),
]


@pytest.mark.parametrize(("body", "cls", "reason"), MORE_ITEMS_ERRORS)
def test_more_items_errors(body: bytes, cls: type[PollError], reason: str | None) -> None:
    raises(cls, lambda: parse_more_items(body), reason)


# --- share page and session references ---------------------------------------------------------


def test_share_page_before_javascript_is_no_joinv2() -> None:
    page = fixture("share_page.html")
    assert b"viewer_count" not in page and b"165432987" not in page  # nothing to parse without JS
    error = classify_share_page(page)
    assert type(error) is ParseFailure and error.reason == "no_joinv2"
    assert type(classify_share_page(b"<html><div id='captcha-verify'></div></html>")) is Blocked
    assert type(classify_share_page(b'<a href="/buyer/login?next=/share">Login</a>')) is LoginWall


SESSION_REFS = [
    ("165432987", "165432987"),
    (" 165432987 ", "165432987"),
    ("https://live.shopee.vn/share?from=live&session=165432987&share_user_id=12", "165432987"),
    ("https://live.shopee.vn/pc/live?session=802458", "802458"),
    ("https://shopee.vn/universal-link?redir=https%3A%2F%2Flive.shopee.vn%2Fshare%3Fsession%3D42", "42"),
    ("https://vn.shp.ee/AbC123x", None),
    ("AbC123x", None),
    ("https://live.shopee.vn/share?from=live&session=0", None),
    ("https://live.shopee.vn/share?xsession=5", None),
    ("0", None),
    ("", None),
]


@pytest.mark.parametrize(("ref", "expected"), SESSION_REFS)
def test_session_references(ref: str, expected: str | None) -> None:
    assert parse_session_ref(ref) == expected


def test_session_from_url_reads_redirect_targets() -> None:
    assert session_from_url("http://127.0.0.1:1/live.shopee.vn/share?from=live&session=9&x=1") == "9"
    assert session_from_url("https://shopee.vn/") is None


# --- estimated sales -----------------------------------------------------------------------------


def test_estimate_sales_takes_the_first_seen_sold_as_baseline() -> None:
    items = [Item("1", 100, 189_000), Item("2", 40, 320_000)]
    assert estimate_sales({}, items) == (0, 0, {"1": 100, "2": 40})
    later = [Item("1", 103, 189_000), Item("2", 45, 320_000)]
    assert estimate_sales({"1": 100, "2": 40}, later) == (8, 3 * 189_000 + 5 * 320_000, {"1": 100, "2": 40})


def test_estimate_sales_new_items_join_the_baseline_without_adding() -> None:
    sold, revenue, baseline = estimate_sales({"1": 100}, [Item("1", 101, 50_000), Item("3", 900, 99_000)])
    assert (sold, revenue, baseline) == (1, 50_000, {"1": 100, "3": 900})
    sold, revenue, baseline = estimate_sales(baseline, [Item("1", 101, 50_000), Item("3", 902, 99_000)])
    assert (sold, revenue) == (3, 50_000 + 2 * 99_000)


def test_estimate_sales_clamps_decreasing_sold_and_skips_unknowns() -> None:
    baseline = {"1": 100, "2": 50}
    items = [Item("1", 97, 10_000), Item("2", 52, None), Item("4", None, 1)]
    # A drop (rounding, a correction) is zero, not negative; no price: counted, no revenue; no sold: ignored.
    assert estimate_sales(baseline, items) == (2, 0, {"1": 100, "2": 50})
    assert baseline == {"1": 100, "2": 50}  # the input is not modified


def test_estimate_sales_revenue_arithmetic_and_duplicates() -> None:
    baseline = {"a": 10, "b": 1_000}
    items = [Item("a", 15, 189_000), Item("b", 1_250, 65_000), Item("a", 17, 189_000)]
    sold, revenue, _ = estimate_sales(baseline, items)
    assert sold == 7 + 250 and revenue == 7 * 189_000 + 250 * 65_000 == 17_573_000


# --- creator dashboard ----------------------------------------------------------------------------


LISTED = [
    DashboardSession(SESSION, TITLE, STARTED, 2700),
    DashboardSession("165000111", "Mật ong bạc hà - phiên sáng", STARTED - timedelta(days=1), 5400),
]


def test_session_list() -> None:
    assert parse_session_list(fixture("creator_session_list.json")) == LISTED
    assert newest_session(LISTED) == LISTED[0]
    assert newest_session(LISTED[::-1]) == LISTED[0]
    assert newest_session(LISTED, "165000111") == LISTED[1]
    assert newest_session(LISTED, "5") == DashboardSession("5")
    assert newest_session([]) is None
    assert newest_session([DashboardSession("8")]) == DashboardSession("8")


def test_overview_live() -> None:
    result = parse_overview(fixture("creator_overview_live.json"), LISTED[0])
    assert table(result) == {
        Metric.VIEWERS: (1234, R, None),
        Metric.PEAK_VIEWERS: (2100, R, None),
        Metric.VIEWS: (80000, R, None),
        Metric.ORDERS: (310, R, None),
        Metric.ITEMS_SOLD: (450, R, None),
        Metric.REVENUE: (56_780_000, R, "VND"),
        Metric.ORDERS_CONFIRMED: (290, R, None),
        Metric.ITEMS_SOLD_CONFIRMED: (421, R, None),
        Metric.REVENUE_CONFIRMED: (53_000_001, R, "VND"),  # 53000000.5 rounds half up
        Metric.LIKES: (9876, R, None),
        Metric.COMMENTS: (1500, R, None),
        Metric.SHARES: (120, R, None),
        Metric.NEW_FOLLOWERS: (300, R, None),
        Metric.LIVE_STATUS: (2, R, None),
    }
    assert result.session == SessionObservation(SESSION, LiveStatus.LIVE, TITLE, STARTED)


def test_overview_ended() -> None:
    result = parse_overview(fixture("creator_overview_ended.json"), LISTED[0])
    values = {metric: value for metric, (value, _, _) in table(result).items()}
    assert values == {
        Metric.VIEWERS: 0,
        Metric.PEAK_VIEWERS: 2480,
        Metric.VIEWS: 152300,
        Metric.ORDERS: 760,
        Metric.ITEMS_SOLD: 1090,
        Metric.REVENUE: 140_512_000,
        Metric.ORDERS_CONFIRMED: 712,
        Metric.ITEMS_SOLD_CONFIRMED: 1021,
        Metric.REVENUE_CONFIRMED: 131_870_250,
        Metric.LIKES: 402551,
        Metric.COMMENTS: 4120,
        Metric.SHARES: 388,
        Metric.NEW_FOLLOWERS: 905,
        Metric.LIVE_STATUS: 4,
    }
    ended = STARTED + timedelta(seconds=2700)  # startTime + duration (seconds)
    assert result.session == SessionObservation(SESSION, LiveStatus.ENDED, TITLE, STARTED, ended)


def test_not_logged_in_answer_is_a_login_wall_everywhere() -> None:
    body = fixture("creator_not_logged_in.json")
    raises(LoginWall, lambda: parse_session_list(body))
    raises(LoginWall, lambda: parse_overview(body, LISTED[0]))
    raises(LoginWall, lambda: parse_joinv2(body))


DASHBOARD_ERRORS = [
    (b'{"code":40400,"msg":"session not found","data":null}', ParseFailure, "api_error"),
    (b'{"error":500,"error_msg":"server busy"}', ParseFailure, "api_error"),
    (b'{"code":0,"msg":"success","data":null}', ParseFailure, "missing_keys"),
    (b'{"code":0,"data":{"placedGmv":"lots"}}', ParseFailure, "bad_number"),
    (b'{"code":0,"data":{"placedGmv":-5.0}}', ParseFailure, "bad_number"),
    (b'{"code":0,"data":{"confirmedGmv":[1]}}', ParseFailure, "bad_number"),
    (b'{"code":0,"data":{"pcu":1.5}}', ParseFailure, "bad_number"),
    (b'{"code":0,"msg":"token expired, login again","data":null}', LoginWall, None),
]


@pytest.mark.parametrize(("body", "cls", "reason"), DASHBOARD_ERRORS)
def test_overview_errors(body: bytes, cls: type[PollError], reason: str | None) -> None:
    raises(cls, lambda: parse_overview(body, LISTED[0]), reason)


def test_overview_tolerates_missing_fields_and_string_gmv() -> None:
    body = b'{"code":"0","data":{"status":"1","placedGmv":"56.780.000","engagementData":{"views":7}}}'
    result = parse_overview(body, DashboardSession("9"))
    assert table(result) == {
        Metric.VIEWS: (7, R, None),
        Metric.REVENUE: (56_780_000, R, "VND"),
        Metric.LIVE_STATUS: (2, R, None),
    }
    assert result.session == SessionObservation("9", LiveStatus.LIVE)
    assert parse_session_list(b'{"code":0,"data":{"total":0,"list":null}}') == []
    raises(ParseFailure, lambda: parse_session_list(b'{"code":0,"data":{"list":{}}}'), "missing_keys")


# --- robustness: only PollError may escape --------------------------------------------------------

PARSERS: dict[str, Callable[[bytes], object]] = {
    "joinv2": parse_joinv2,
    "more_items": parse_more_items,
    "session_list": parse_session_list,
    "overview": lambda body: parse_overview(body, LISTED[0]),
}


def only_poll_errors(kind: str, body: bytes) -> None:
    try:
        result = PARSERS[kind](body)
    except PollError:
        return
    if isinstance(result, ParseResult):
        assert all(isinstance(r.value, float) and r.value == r.value for r in result.readings)
        assert result.session is None or result.session.key.isdigit()
    else:
        assert isinstance(result, list)
        for entry in result:
            assert isinstance(entry, Item | DashboardSession)
            if isinstance(entry, Item):
                assert entry.item_id.isdigit() and (entry.price is None or entry.price >= 0)
                float((entry.sold or 0) * (entry.price or 0))  # the estimate can always be stored


KEYS = st.sampled_from(
    ["err_code", "err_msg", "error", "error_msg", "is_login", "code", "msg", "data", "session", "session_id",
     "status", "start_time", "end_time", "viewer_count", "member_cnt", "like_cnt", "items_cnt", "title",
     "items", "item_id", "price", "original_price", "currency", "sold", "name", "list", "sessionId",
     "startTime", "duration", "ccu", "pcu", "views", "placedGmv", "confirmedGmv", "placedOrder",
     "engagementData", "likes", "newFollowers"]
) | st.text(max_size=6)  # fmt: skip
JSON_VALUES = json_values(
    KEYS,
    [0, 1, 2, 90309999, 1731912600000, -1, 2**63 - 1, 12000000000, 1e308],
    ["1", "0", "", "189.000", "1,2k", "not login", "VND", "²", "-1", SESSION],
)


@pytest.mark.parametrize("kind", PARSERS)
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_poll_errors(kind: str, body: bytes) -> None:
    only_poll_errors(kind, body)


@pytest.mark.parametrize("kind", PARSERS)
@given(value=JSON_VALUES)
def test_arbitrary_json_only_raises_poll_errors(kind: str, value: Any) -> None:
    only_poll_errors(kind, json.dumps(value, ensure_ascii=False).encode())


@given(text=st.text(max_size=200), body=st.binary(max_size=256))
def test_references_and_share_pages_never_raise(text: str, body: bytes) -> None:
    assert parse_session_ref(text) is None or parse_session_ref(text).isdigit()  # type: ignore[union-attr]
    assert session_from_url(text) is None or session_from_url(text).isdigit()  # type: ignore[union-attr]
    assert isinstance(classify_share_page(body), PollError)


def _kind(fixture_name: str) -> str:
    """The parser a JSON fixture is for; creator_not_logged_in goes to the overview parser."""
    for prefix, kind in (
        ("joinv2", "joinv2"),
        ("more_items", "more_items"),
        ("creator_session_list", "session_list"),
    ):
        if fixture_name.startswith(prefix):
            return kind
    return "overview"


DOCUMENTS = [(_kind(path.name), json.loads(path.read_bytes())) for path in sorted(FIXTURES.glob("*.json"))]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures_only_raise_poll_errors(data: st.DataObject) -> None:
    kind, doc = data.draw(st.sampled_from(DOCUMENTS), label="fixture")
    path = data.draw(st.sampled_from(list(paths(doc))), label="path")
    value = data.draw(st.just(DELETE) | JSON_VALUES, label="value")
    only_poll_errors(kind, json.dumps(mutate(doc, path, value), ensure_ascii=False).encode())


@pytest.mark.parametrize("kind", PARSERS)
def test_deeply_nested_values_only_raise_poll_errors(kind: str) -> None:
    nested = "[" * 1000 + "]" * 1000
    for template in (
        '{"err_code":NESTED,"data":null}',
        '{"err_code":0,"error":NESTED,"msg":NESTED,"data":{"session":{"session_id":NESTED,"status":NESTED}}}',
        '{"err_code":0,"data":{"session":{"session_id":1,"status":1,"title":NESTED,"viewer_count":NESTED}}}',
        '{"data":{"items":[{"item_id":1,"sold":NESTED,"price":NESTED,"original_price":NESTED}]}}',
        '{"code":0,"data":{"list":[{"sessionId":NESTED}],"placedGmv":NESTED,"status":NESTED}}',
        '{"code":0,"data":{"list":[{"sessionId":1,"startTime":NESTED,"duration":NESTED}]}}',
    ):
        only_poll_errors(kind, template.replace("NESTED", nested).encode())


# --- poll, end to end against the simulator -------------------------------------------------------

START = 1_725_850_000.0
COOKIES = Secret("SPC_F=abc; SPC_EC=session-token; SPC_U=42", "test")


@dataclasses.dataclass
class Sim:
    clock: SimClock
    app: web.Application
    base: str
    client: HttpClient
    name: str

    @property
    def base_urls(self) -> dict[str, str]:
        hosts = {"live": "live.shopee.vn", "creator": "creator.shopee.vn", "short": "vn.shp.ee"}
        return {key: f"{self.base}/{host}" for key, host in hosts.items()}

    def truth(self, session_id: int) -> dict:
        scenario = dataclasses.replace(demo(1), name=self.name)
        return sim.truth(scenario, self.clock.elapsed(), START)["sessions"][str(session_id)]

    def paths(self) -> list[str]:
        return [entry["path"] for entry in self.app[REQUEST_LOG]]


@asynccontextmanager
async def simulator(name: str = "demo", at: float = 0.0) -> AsyncIterator[Sim]:
    clock = SimClock(freeze_at=at, start=START)
    app = build_app(dataclasses.replace(demo(1), name=name), clock)
    if sim not in PLATFORMS:  # until simulator/app.py lists it
        sim.register(app)
    async with TestServer(app) as server, HttpClient(HttpSettings(timeout=10)) as client:
        yield Sim(clock, app, str(server.make_url("")).rstrip("/"), client, name)


def live_target(session_id: str, **params: str) -> TargetConfig:
    return TargetConfig("shopee-live", "shopee", "live", 30.0, {"session_id": session_id, **params})


def dashboard_target(secret: Secret = COOKIES, **params: str) -> TargetConfig:
    return TargetConfig("shopee-shop", "shopee", "shop_dashboard", 30.0, params, secrets={"cookies": secret})


async def poll(
    s: Sim, target: TargetConfig, state: LiveState | None = None, browser: Any = None
) -> tuple[PollResult, HttpFetcher]:
    fetcher = HttpFetcher(s.client)
    return await poll_kind(adapter, target, s.base_urls, fetcher, browser, state), fetcher


def values(result: PollResult) -> dict[Metric, float]:
    return {metric: value for metric, (value, _, _) in table(result.parsed).items()}


def sold_since(before: dict, after: dict) -> tuple[int, int]:
    gained = [b["sold"] - a["sold"] for a, b in zip(before["items"], after["items"], strict=True)]
    return sum(gained), sum(n * item["price"] for n, item in zip(gained, after["items"], strict=True))


def demo_live() -> sim.LiveSession:
    return next(s for s in sim.sessions_for("demo", 1) if s.start <= 0 < s.end)


async def test_poll_live_over_http_estimates_sales_and_freezes_them_at_the_end() -> None:
    live = demo_live()
    state = LiveState()
    async with simulator(at=600.0) as s:
        target = live_target(str(live.session_id), fetch="http")
        first, _ = await poll(s, target, state)
        truth = s.truth(live.session_id)
        assert first.outcome is Outcome.OK
        assert values(first) == {
            Metric.VIEWERS: truth["viewer_count"],
            Metric.VIEWS: truth["member_cnt"],
            Metric.LIKES: truth["like_cnt"],
            Metric.ITEMS_ON_SALE: 4,
            Metric.LIVE_STATUS: 2,
            Metric.ITEMS_SOLD: 0,  # the first poll sets the baseline
            Metric.REVENUE: 0,
        }
        started = datetime.fromtimestamp(START + live.start, UTC)
        assert first.parsed.session == SessionObservation(
            str(live.session_id), LiveStatus.LIVE, live.title, started
        )
        assert table(first.parsed)[Metric.REVENUE] == (0, E, "VND")

        s.clock.freeze_at = 2400.0
        second, fetcher = await poll(s, target, state)
        items, revenue = sold_since(truth, s.truth(live.session_id))
        assert items > 0 and revenue > 0
        assert table(second.parsed)[Metric.ITEMS_SOLD] == (items, E, None)
        assert table(second.parsed)[Metric.REVENUE] == (revenue, E, "VND")
        assert [r.url.rsplit("/", 1)[-1] for r in fetcher.responses] == ["joinv2", "more_items"]

        s.clock.freeze_at = live.end + 600
        ended, fetcher = await poll(s, target, state)
        assert ended.outcome is Outcome.NOT_LIVE
        assert values(ended)[Metric.LIVE_STATUS] == 4 and values(ended)[Metric.VIEWERS] == 0
        assert (values(ended)[Metric.ITEMS_SOLD], values(ended)[Metric.REVENUE]) == (items, revenue)
        assert len(fetcher.responses) == 1  # no live bag read after the end
        assert ended.parsed.session is not None and ended.parsed.session.ended_at == datetime.fromtimestamp(
            START + live.end, UTC
        )


async def test_estimate_from_the_session_start_equals_the_dashboard() -> None:
    first_day = sim.sessions_for("event-week", 1)[0]
    state = LiveState()
    async with simulator("event-week", at=first_day.start) as s:
        target = live_target(str(first_day.session_id), fetch="http")
        await poll(s, target, state)
        s.clock.freeze_at = first_day.start + 3000
        estimated, _ = await poll(s, target, state)
        reported, _ = await poll(s, dashboard_target(session_id=str(first_day.session_id)))
    assert reported.outcome is Outcome.OK
    assert values(estimated)[Metric.ITEMS_SOLD] == values(reported)[Metric.ITEMS_SOLD] > 0
    assert values(estimated)[Metric.REVENUE] == values(reported)[Metric.REVENUE] > 0
    assert table(reported.parsed)[Metric.REVENUE][1:] == (R, "VND")


@pytest.mark.parametrize("form", ["simulator-url", "real-host", "bare-code", "share-url"])
async def test_poll_live_resolves_short_links_and_share_urls_once(form: str) -> None:
    live = demo_live()
    async with simulator(at=60.0) as s:
        ref = {
            "simulator-url": f"{s.base}/vn.shp.ee/{live.short_code}",
            "real-host": f"https://vn.shp.ee/{live.short_code}",
            "bare-code": live.short_code,
            "share-url": f"https://live.shopee.vn/share?from=live&session={live.session_id}&share_user_id=7",
        }[form]
        state = LiveState()
        for _ in range(2):
            result, _ = await poll(s, live_target(ref, fetch="http"), state)
            assert result.parsed.session is not None and result.parsed.session.key == str(live.session_id)
        short_hits = [p for p in s.paths() if p.startswith("/vn.shp.ee/")]
        assert len(short_hits) == (0 if form == "share-url" else 1)
        assert state.session_ref == (ref, str(live.session_id))


async def test_poll_live_errors() -> None:
    async with simulator(at=60.0) as s:
        raises_async = [
            (live_target("999", fetch="http"), NotFound, None),
            (live_target(f"{s.base}/vn.shp.ee/nope", fetch="http"), HttpError, None),
            (live_target("not a link!", fetch="http"), NotFound, None),
        ]
        for target, cls, reason in raises_async:
            with pytest.raises(PollError) as info:
                await poll(s, target)
            assert type(info.value) is cls, target
            assert reason is None or getattr(info.value, "reason", None) == reason


async def test_poll_live_scheduled_session_is_not_live_without_sales() -> None:
    first_day = sim.sessions_for("event-week", 1)[0]
    async with simulator("event-week", at=0.0) as s:
        result, fetcher = await poll(s, live_target(str(first_day.session_id)))  # no browser: HTTP
    assert result.outcome is Outcome.NOT_LIVE and len(fetcher.responses) == 1
    assert values(result) == {
        Metric.VIEWERS: 0,
        Metric.VIEWS: 0,
        Metric.LIKES: 0,
        Metric.ITEMS_ON_SALE: len(first_day.items),
        Metric.LIVE_STATUS: 1,
    }


class ScriptedBrowser:
    """Does what the share page's script does (POST joinv2, GET more_items), or nothing when `fire` is off."""

    def __init__(self, s: Sim, *, fire: bool = True) -> None:
        self.s, self.fire = s, fire
        self.calls: list[tuple[str, tuple[str, ...], str | None]] = []

    async def capture(
        self, url: str, *, wait_for: Sequence[str] = (), click: str | None = None, **_: Any
    ) -> BrowserCapture:
        self.calls.append((url, tuple(wait_for), click))
        page = await self.s.client.request("GET", url)
        responses: dict[str, RawResponse] = {}
        if self.fire:
            session_id = url.rsplit("session=", 1)[1]
            api = f"{self.s.base}/live.shopee.vn/api/v1/session/{session_id}"
            for method, raw_url in (("POST", f"{api}/joinv2"), ("GET", f"{api}/more_items")):
                raw = await self.s.client.request(method, raw_url, json={} if method == "POST" else None)
                responses.update({w: raw for w in wait_for if w in raw.url})
        return BrowserCapture(page, responses)


async def test_poll_live_through_the_browser_path() -> None:
    live = demo_live()
    async with simulator(at=900.0) as s:
        browser = ScriptedBrowser(s)
        result, _ = await poll(s, live_target(str(live.session_id)), None, browser)
        share = f"{s.base}/live.shopee.vn/share?from=live&session={live.session_id}"
        wanted = (f"/api/v1/session/{live.session_id}/joinv2", "/more_items")
        assert browser.calls == [(share, wanted, "video")]
        assert result.outcome is Outcome.OK
        assert values(result)[Metric.VIEWERS] == s.truth(live.session_id)["viewer_count"]
        assert values(result)[Metric.ITEMS_SOLD] == 0
        # fetch = "http" skips the browser even when one is there.
        http_only = ScriptedBrowser(s)
        await poll(s, live_target(str(live.session_id), fetch="http"), None, http_only)
        assert http_only.calls == []
        # The page never called joinv2: the page is classified, not parsed.
        with pytest.raises(ParseFailure) as info:
            await poll(s, live_target(str(live.session_id)), None, ScriptedBrowser(s, fire=False))
        assert info.value.reason == "no_joinv2"


CHROMIUM = next(
    (p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None
)


@asynccontextmanager
async def real_browser() -> AsyncIterator[Any]:
    """A Chromium pool (20 s navigation timeout) and the simulator at 15 min into the demo."""
    from collector.browser import BrowserPool
    from collector.config import BrowserSettings
    from collector.metrics import LiveState, SelfMetrics

    assert CHROMIUM is not None
    pool = BrowserPool(
        BrowserSettings(executable_path=CHROMIUM, navigation_timeout=20.0),
        HttpSettings(),
        SelfMetrics(LiveState([])),
    )
    await pool.start()
    try:
        async with simulator(at=900.0) as s:
            yield pool, s
    finally:
        await pool.close()


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found")
async def test_poll_live_in_a_real_browser_runs_the_share_page_script() -> None:
    live = demo_live()
    async with real_browser() as (pool, s):
        target = live_target(str(live.session_id))
        fetcher = HttpFetcher(s.client)
        browser = pool.fetcher(target, fetcher.responses)
        result = await poll_kind(adapter, target, s.base_urls, fetcher, browser)
        truth = s.truth(live.session_id)
    assert result.outcome is Outcome.OK
    assert values(result)[Metric.VIEWERS] == truth["viewer_count"]
    assert values(result)[Metric.ITEMS_SOLD] == 0
    page = next(r for r in fetcher.responses if "/share?" in r.url)
    assert page.body == sim.SHARE_PAGE.encode()  # as served: every wanted call answered, no DOM needed
    assert [r.url.rsplit("/", 1)[1] for r in fetcher.responses[1:]] == [
        "joinv2",
        "more_items",
    ]  # the script's


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found")
async def test_a_joinv2_call_that_fails_in_the_browser_is_a_network_error_at_once() -> None:
    live = demo_live()
    async with real_browser() as (pool, s):
        s.app[FAULTS].append(FaultRule("reset", "/joinv2"))
        target = live_target(str(live.session_id))
        fetcher = HttpFetcher(s.client)
        started = time.monotonic()
        with pytest.raises(Transient) as info:
            await poll_kind(adapter, target, s.base_urls, fetcher, pool.fetcher(target, fetcher.responses))
        took = time.monotonic() - started
    assert info.value.outcome is Outcome.NETWORK_ERROR and "joinv2" in str(info.value)
    assert took < 10  # not the 20 s navigation timeout


async def test_poll_dashboard_reads_the_newest_session() -> None:
    ended, live = sim.sessions_for("demo", 1)
    async with simulator(at=1800.0) as s:
        result, fetcher = await poll(s, dashboard_target())
        board = s.truth(live.session_id)["dashboard"]
        sent = fetcher.responses
    assert result.outcome is Outcome.OK
    assert values(result) == {
        Metric.VIEWERS: board["ccu"],
        Metric.PEAK_VIEWERS: board["pcu"],
        Metric.VIEWS: board["views"],
        Metric.ORDERS: board["placedOrder"],
        Metric.ITEMS_SOLD: board["placedItemsSold"],
        Metric.REVENUE: board["placedGmv"],
        Metric.ORDERS_CONFIRMED: board["confirmedOrder"],
        Metric.ITEMS_SOLD_CONFIRMED: board["confirmedItemsSold"],
        Metric.REVENUE_CONFIRMED: board["confirmedGmv"],
        Metric.LIKES: board["engagementData"]["likes"],
        Metric.COMMENTS: board["engagementData"]["comments"],
        Metric.SHARES: board["engagementData"]["shares"],
        Metric.NEW_FOLLOWERS: board["engagementData"]["newFollowers"],
        Metric.LIVE_STATUS: 2,
    }
    assert all(r.provenance is R for r in result.parsed.readings)
    started = datetime.fromtimestamp(START + live.start, UTC)
    assert result.parsed.session == SessionObservation(
        str(live.session_id), LiveStatus.LIVE, live.title, started
    )
    assert "sessionList?page=1&pageSize=10" in sent[0].url and sent[1].url.endswith(
        f"sessionId={live.session_id}"
    )
    assert ended.session_id != live.session_id


async def test_poll_dashboard_pinned_ended_session_and_no_session() -> None:
    ended, _ = sim.sessions_for("demo", 1)
    async with simulator(at=1800.0) as s:
        result, _ = await poll(s, dashboard_target(session_id=str(ended.session_id)))
        board = s.truth(ended.session_id)["dashboard"]
    assert result.outcome is Outcome.NOT_LIVE
    assert (
        values(result)[Metric.REVENUE] == board["placedGmv"] > 0 and values(result)[Metric.LIVE_STATUS] == 4
    )
    session = result.parsed.session
    assert session is not None and session.ended_at == datetime.fromtimestamp(START + ended.end, UTC)
    async with simulator("event-week", at=0.0) as s:
        result, fetcher = await poll(s, dashboard_target())
    assert result.outcome is Outcome.NOT_LIVE and len(fetcher.responses) == 1
    assert result.parsed.readings == [Reading(Metric.LIVE_STATUS, 0.0, R)] and result.parsed.session is None


async def test_poll_dashboard_without_a_valid_cookie_is_a_login_wall() -> None:
    async with simulator(at=60.0) as s:
        for secret in (Secret("SPC_F=abc", "test"), Secret("SPC_EC=", "test")):
            with pytest.raises(LoginWall):
                await poll(s, dashboard_target(secret))
