"""The TikTok `hashtag` kind: pure parsers against fixtures (platforms.md 2.2 and 6), fuzzing (only PollError
subclasses may escape), the adapter's source order with stand-in fetchers, and end-to-end polls against
the simulator over plain HTTP and, where Chromium is installed, through the real browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api import RawResponse
from collector.browser import BrowserCapture
from collector.config import HttpSettings, TargetConfig
from collector.http import HttpClient, HttpFetcher
from collector.outcomes import (
    Blocked,
    LoginWall,
    NotFound,
    Outcome,
    ParseFailure,
    PollError,
    RateLimited,
    Transient,
)
from schemas.types import Metric, ParseResult, Provenance
from scrapers.normalise import parse_count
from scrapers.tiktok import adapter, normalise_tag, parse_challenge_detail, parse_tag_page
from simulator.app import build_app
from simulator.clock import SimClock
from simulator.counters import compact_count
from simulator.keys import SCENARIO
from simulator.scenario import demo
from simulator.tiktok import hashtags_truth
from tests.fuzzing import DELETE, json_values, mutate, paths
from tests.polling import poll_kind

FIXTURES = Path(__file__).parent / "fixtures" / "tiktok"
START = 1_725_850_000.0
VIEWS, POSTS = Metric.HASHTAG_VIEWS, Metric.HASHTAG_POSTS


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def values(result: ParseResult) -> dict[Metric, float]:
    """Readings as {metric: value}, after checking the invariants every hashtag result has."""
    metrics = [r.metric for r in result.readings]
    assert len(metrics) == len(set(metrics)), "a metric was read twice"
    assert all(r.provenance is Provenance.OBSERVED and r.currency is None for r in result.readings)
    assert result.session is None  # hashtags have no session
    return {r.metric: r.value for r in result.readings}


@dataclass(frozen=True)
class Raises:
    """The exact PollError subclass expected, its outcome and, for ParseFailure, its reason."""

    cls: type[PollError]
    reason: str | None = None

    def check(self, call: Callable[[], object]) -> None:
        with pytest.raises(PollError) as info:
            call()
        assert type(info.value) is self.cls, f"expected {self.cls.__name__}, got {info.value!r}"
        assert info.value.outcome is self.cls.outcome
        if self.reason is not None:
            assert isinstance(info.value, ParseFailure) and info.value.reason == self.reason


def check(parse: Callable[[bytes], ParseResult], body: bytes, expected: dict[Metric, float] | Raises) -> None:
    if isinstance(expected, Raises):
        expected.check(lambda: parse(body))
    else:
        assert values(parse(body)) == expected


# --- api/challenge/detail ------------------------------------------------------------------------

DETAIL_CASES = [
    ("hashtag_detail.json", {VIEWS: 8_214_530, POSTS: 1_642}),
    ("hashtag_detail_statsv2_only.json", {VIEWS: 25_873_001, POSTS: 6_021}),
    # videoCount 0 beside a viewCount is a legal reading (drawrowfly/tiktok-scraper#375).
    ("hashtag_detail_zero_videos.json", {VIEWS: 48_210, POSTS: 0}),
    ("hashtag_detail_not_found.json", Raises(NotFound)),
    # A challengeInfo without `challenge` means no such tag (davidteather/TikTok-Api#373).
    ("hashtag_detail_no_challenge.json", Raises(NotFound)),
]


@pytest.mark.parametrize(("name", "expected"), DETAIL_CASES, ids=[c[0] for c in DETAIL_CASES])
def test_parse_challenge_detail_fixtures(name: str, expected: dict[Metric, float] | Raises) -> None:
    check(parse_challenge_detail, fixture(name), expected)


def _detail(info: Any, **top: Any) -> bytes:
    return json.dumps({"statusCode": 0, "challengeInfo": info, **top}).encode()


CHALLENGE = {"id": "1", "title": "t"}

DETAIL_INLINE = [
    # Empty answers are what unsigned or bot-flagged callers get: a block, not a layout change.
    (b"", Raises(Blocked)),
    (b" \n", Raises(Blocked)),
    (b"<html>", Raises(ParseFailure, "bad_json")),
    (b"[]", Raises(ParseFailure, "unexpected_shape")),
    (b"{}", Raises(NotFound)),
    (b'{"statusCode":10000,"statusMsg":""}', Raises(Blocked)),  # e.g. a verify/captcha code [U]
    (b'{"statusCode":12345,"statusMsg":"challenge does not exist"}', Raises(NotFound)),
    (b'{"status_code":10205}', Raises(NotFound)),
    (_detail([1, 2]), Raises(ParseFailure, "unexpected_shape")),
    (_detail({"challenge": "x", "stats": {"viewCount": 1}}), Raises(ParseFailure, "unexpected_shape")),
    (_detail({"challenge": {}, "stats": {"viewCount": 1}}), Raises(NotFound)),
    (_detail({"challenge": CHALLENGE}), Raises(ParseFailure, "missing_keys")),
    (_detail({"challenge": CHALLENGE, "stats": {}}), Raises(ParseFailure, "missing_keys")),
    # statsV2 wins where both have a count: stats.videoCount has been seen at 0 beside a real statsV2.
    (
        _detail(
            {
                "challenge": CHALLENGE,
                "stats": {"videoCount": 0, "viewCount": 5},
                "statsV2": {"videoCount": "7"},
            }
        ),
        {VIEWS: 5, POSTS: 7},
    ),
    # An unreadable statsV2 value falls back to stats; unreadable in both is a failure.
    (
        _detail({"challenge": CHALLENGE, "stats": {"viewCount": 9}, "statsV2": {"viewCount": "n/a"}}),
        {VIEWS: 9},
    ),
    (
        _detail({"challenge": CHALLENGE, "stats": {"viewCount": "x"}, "statsV2": {"viewCount": "n/a"}}),
        Raises(ParseFailure, "bad_number"),
    ),
    (_detail({"challenge": CHALLENGE, "stats": {"viewCount": -1}}), Raises(ParseFailure, "bad_number")),
    (_detail({"challenge": CHALLENGE, "stats": {"viewCount": True}}), Raises(ParseFailure, "bad_number")),
    (_detail({"challenge": CHALLENGE, "stats": {"viewCount": 1.5}}), Raises(ParseFailure, "bad_number")),
    (_detail({"challenge": CHALLENGE, "stats": {"viewCount": 10**16}}), Raises(ParseFailure, "bad_number")),
    (_detail({"challenge": CHALLENGE, "statsV2": {"viewCount": "1.2B"}}), {VIEWS: 1_200_000_000}),
    # A non-zero code with a challenge still has usable counts.
    (_detail({"challenge": CHALLENGE, "stats": {"viewCount": 3}}, statusCode=7), {VIEWS: 3}),
]


@pytest.mark.parametrize(("body", "expected"), DETAIL_INLINE)
def test_parse_challenge_detail_inline_variants(body: bytes, expected: dict[Metric, float] | Raises) -> None:
    check(parse_challenge_detail, body, expected)


# --- /tag/{name} HTML --------------------------------------------------------------------------------

PAGE_CASES = [
    ("hashtag_page_posts.html", {POSTS: 1_100_000}),  # newer header: posts only
    ("hashtag_page_views.html", {VIEWS: 12_300_000_000}),  # older header: <strong>12.3B</strong> views
    # Legacy SIGI_STATE.ChallengePage has both counts and wins over the abbreviated header.
    ("hashtag_page_sigi.html", {VIEWS: 123_000_000, POSTS: 15_000}),
    ("hashtag_page_not_found.html", Raises(NotFound)),
    ("hashtag_page_waf.html", Raises(Blocked)),
]


@pytest.mark.parametrize(("name", "expected"), PAGE_CASES, ids=[c[0] for c in PAGE_CASES])
def test_parse_tag_page_fixtures(name: str, expected: dict[Metric, float] | Raises) -> None:
    check(parse_tag_page, fixture(name), expected)


def test_tag_page_fixtures_are_realistic_pages() -> None:
    for name, _ in PAGE_CASES:
        assert fixture(name).lstrip().lower().startswith(b"<!doctype html>"), name
    for name in ("hashtag_page_posts.html", "hashtag_page_views.html", "hashtag_page_sigi.html"):
        page = fixture(name)
        assert len(page) > 4096 and page.count(b"challenge-vvcount") == 1, name
        assert re.search(rb"snssdk\d*://challenge/detail/\d+", page), name
    # Every page carries the i18n table with the not-found text: only visible text may count.
    assert b"Couldn't find this hashtag" in fixture("hashtag_page_posts.html")


POSTS_PAGE = fixture("hashtag_page_posts.html")
HEADER_RE = re.compile(rb'<h2 data-e2e="challenge-vvcount".*?</h2>', re.S)


def _with_header(header: str) -> bytes:
    return HEADER_RE.sub(header.encode().replace(b"\\", b"\\\\"), POSTS_PAGE)


def _sigi(state: str) -> bytes:
    return b'<html><script id="SIGI_STATE" type="application/json">' + state.encode() + b"</script></html>"


PAGE_INLINE = [
    # Vietnamese locale without a title attribute: the words decide.
    (_with_header('<h2 data-e2e="challenge-vvcount">1,2 Tr bài đăng</h2>'), {POSTS: 1_200_000}),
    (
        _with_header('<h2 data-e2e="challenge-vvcount"><strong>3,4 Tỷ</strong> lượt xem</h2>'),
        {VIEWS: 3_400_000_000},
    ),
    (_with_header("<h2 data-e2e='challenge-vvcount' title='posts'>856 posts</h2>"), {POSTS: 856}),
    # The title attribute wins over the words.
    (_with_header('<h2 data-e2e="challenge-vvcount" title="views">12K posts</h2>'), {VIEWS: 12_000}),
    (_with_header('<h2 data-e2e="challenge-vvcount">12K</h2>'), Raises(ParseFailure, "unknown_header")),
    (
        _with_header('<h2 data-e2e="challenge-vvcount" title="posts">many posts</h2>'),
        Raises(ParseFailure, "bad_number"),
    ),
    # A tag page that lost its header is a layout change, even with the not-found text in a script.
    (_with_header(""), Raises(ParseFailure, "missing_header")),
    (b"", Raises(Blocked)),
    (b"<html><body>Access denied</body></html>", Raises(Blocked)),
    (b'<html><head><meta http-equiv="refresh" content="0;url=/login"></head></html>', Raises(LoginWall)),
    (b"<p>Couldn&#x27;t find this hashtag</p>", Raises(NotFound)),
    ("<p>KHÔNG TÌM THẤY HASHTAG</p>".encode(), Raises(NotFound)),
    ("<p>Không tìm thấy hashtag</p>".encode(), Raises(NotFound)),
    (b'<script>var t="Couldn\'t find this hashtag"</script>', Raises(Blocked)),
    # Legacy state: no challenge means no such tag; broken state with a header still reads the header.
    (_sigi('{"ChallengePage":{"challengeInfo":{}}}'), Raises(NotFound)),
    (_sigi('{"ChallengePage":{"challengeInfo":[]}}'), Raises(ParseFailure, "unexpected_shape")),
    (
        _sigi('{"ChallengePage":{"challengeInfo":{"challenge":{"id":"1"}}}}'),
        Raises(ParseFailure, "missing_keys"),
    ),
    (
        _sigi('{"ChallengePage":{"challengeInfo":{"challenge":{"id":"1"},"statsV2":{"viewCount":"77"}}}}'),
        {VIEWS: 77},
    ),
    (_sigi("{broken"), Raises(ParseFailure, "bad_json")),
    (
        _sigi("{broken") + b'<h2 data-e2e="challenge-vvcount" title="posts">15K posts</h2>',
        {POSTS: 15_000},
    ),
]


@pytest.mark.parametrize(("body", "expected"), PAGE_INLINE)
def test_parse_tag_page_inline_variants(body: bytes, expected: dict[Metric, float] | Raises) -> None:
    check(parse_tag_page, body, expected)


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("nongsanlaichau", "nongsanlaichau"),
        ("#NongSanLaiChau", "nongsanlaichau"),
        ("  #OCOPLaiChau ", "ocoplaichau"),
    ],
)
def test_normalise_tag(raw: str, tag: str) -> None:
    assert normalise_tag(raw) == tag


def test_the_kind_is_declared_with_its_browser_need() -> None:
    spec = adapter.kinds["hashtag"]
    assert spec.required == ("tag",) and spec.uses_browser
    assert not adapter.kinds["live"].uses_browser


# --- robustness: only PollError may escape -----------------------------------------------------------

PARSERS = {"detail": parse_challenge_detail, "page": parse_tag_page}


def only_poll_errors(kind: str, body: bytes) -> None:
    try:
        result = PARSERS[kind](body)
    except PollError:
        return
    assert isinstance(result, ParseResult)
    assert result.session is None and result.readings
    for reading in result.readings:
        assert reading.metric in (VIEWS, POSTS)
        assert isinstance(reading.value, float) and 0 <= reading.value <= 10**15


KEYS = st.sampled_from(
    ["statusCode", "status_code", "statusMsg", "challengeInfo", "challenge", "stats", "statsV2",
     "videoCount", "viewCount", "id", "title", "shareMeta", "ChallengePage"]
) | st.text(max_size=6)  # fmt: skip
JSON_VALUES = json_values(KEYS, [0, 10205, 10000, -1, 2**64, "1.1M", "12,3 Tr", "not found", "", "²"])


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _as_page(state: str) -> bytes:
    """The SIGI fixture page with its state replaced (escaped like TikTok does)."""
    page = fixture("hashtag_page_sigi.html")
    start = page.index(b">", page.index(b'id="SIGI_STATE"')) + 1
    end = page.index(b"</script>", start)
    return page[:start] + state.replace("</", "<\\/").encode() + page[end:]


@pytest.mark.parametrize("kind", PARSERS)
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_poll_errors(kind: str, body: bytes) -> None:
    only_poll_errors(kind, body)


@given(value=JSON_VALUES)
def test_arbitrary_json_only_raises_poll_errors(value: Any) -> None:
    only_poll_errors("detail", _dumps(value).encode())
    only_poll_errors("page", _as_page(_dumps({"ChallengePage": value})))


HEADER_PARTS = st.sampled_from(
    ["<strong>", "</strong>", " views", " posts", " lượt xem", "1.1M", "12,3 Tỷ", "-5", "1e9", "&amp;", "<b>",
     "</h2>", "<!--", "'", '"', "couldn't find this hashtag"]
) | st.text(max_size=8)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=10), parts=st.lists(HEADER_PARTS, max_size=8))
def test_arbitrary_header_markup_only_raises_poll_errors(title: str, parts: list[str]) -> None:
    inner = "".join(parts)
    only_poll_errors("page", f'<h2 data-e2e="challenge-vvcount" title="{title}">{inner}</h2>'.encode())
    only_poll_errors("page", _with_header(f'<h2 data-e2e="challenge-vvcount">{inner}</h2>'))


DOCUMENTS = [json.loads(fixture(p.name)) for p in sorted(FIXTURES.glob("hashtag_detail*.json"))]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures_only_raise_poll_errors(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(DOCUMENTS), label="fixture")
    path = data.draw(st.sampled_from(list(paths(doc))), label="path")
    value = data.draw(st.just(DELETE) | JSON_VALUES, label="value")
    mutated = mutate(doc, path, value)
    only_poll_errors("detail", _dumps(mutated).encode())
    info = mutated.get("challengeInfo") if isinstance(mutated, dict) else mutated
    only_poll_errors("page", _as_page(_dumps({"ChallengePage": {"challengeInfo": info}})))


def _nested(template: str, depth: int = 1000) -> str:
    return template.replace("NESTED", "[" * depth + "]" * depth)


@pytest.mark.parametrize(
    "text",
    [
        _nested('{"statusCode":NESTED}'),
        _nested('{"statusMsg":NESTED}'),
        _nested('{"challengeInfo":NESTED}'),
        _nested('{"challengeInfo":{"challenge":NESTED}}'),
        _nested('{"challengeInfo":{"challenge":{"id":"1"},"stats":{"viewCount":NESTED}}}'),
        _nested(
            '{"challengeInfo":{"challenge":{"id":"1"},"statsV2":{"videoCount":NESTED},"stats":NESTED}}', 500
        ),
        _nested('{"statusCode":3,"challengeInfo":{"challenge":{}}}'),
        '{"challengeInfo":{"challenge":{"id":"1"},"stats":{"viewCount":1e308}}}',
        '{"challengeInfo":{"challenge":{"id":"1"},"stats":{"viewCount":184467440737095516160000}}}',
    ],
)
def test_adversarial_documents_only_raise_poll_errors(text: str) -> None:
    only_poll_errors("detail", text.encode())
    only_poll_errors("page", _as_page('{"ChallengePage":' + text + "}"))


# --- the adapter's source order, with stand-in fetchers ------------------------------------------------

WEB = "https://www.tiktok.com"
TAG_URL = f"{WEB}/tag/nongsanlaichau"
DETAIL = (
    b'{"statusCode":0,"challengeInfo":{"challenge":{"id":"1"},"stats":{"videoCount":12,"viewCount":3456}}}'
)


def _raw(url: str, body: bytes, status: int = 200) -> RawResponse:
    return RawResponse(url, status, "text/html", body, datetime.now(UTC))


@dataclass
class FakeBrowser:
    """Stands in for collector.browser.BrowserFetcher: one canned capture (or error) per call."""

    result: BrowserCapture | PollError
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def capture(self, url: str, *, wait_for: tuple[str, ...] = (), **_: Any) -> BrowserCapture:
        self.calls.append((url, tuple(wait_for)))
        if isinstance(self.result, PollError):
            raise self.result
        return self.result


@dataclass
class FakeHttp:
    """Stands in for HttpFetcher: answers every GET with `body`, recording the URL."""

    body: bytes
    calls: list[str] = field(default_factory=list)

    async def get(self, url: str, **_: Any) -> RawResponse:
        self.calls.append(url)
        return _raw(url, self.body)


def _capture(page: bytes, detail: bytes | None, status: int = 200) -> BrowserCapture:
    responses = (
        {}
        if detail is None
        else {"/api/challenge/detail": _raw(f"{WEB}/api/challenge/detail/?x", detail, status)}
    )
    return BrowserCapture(_raw(TAG_URL, page), responses)


async def _poll(
    browser: FakeBrowser | None, http: FakeHttp, tag: str = "#NongSanLaiChau"
) -> dict[Metric, float]:
    result = await poll_kind(
        adapter,
        TargetConfig("t", "tiktok", "hashtag", 30.0, {"tag": tag}),
        {"web": WEB, "webcast": "https://webcast.tiktok.com"},
        http,  # type: ignore[arg-type]
        browser,  # type: ignore[arg-type]
    )
    assert result.outcome is Outcome.OK
    return values(result.parsed)


async def test_browser_json_is_used_first_and_http_is_not_touched() -> None:
    browser, http = FakeBrowser(_capture(POSTS_PAGE, DETAIL)), FakeHttp(b"")
    assert await _poll(browser, http) == {VIEWS: 3456, POSTS: 12}
    assert browser.calls == [(TAG_URL, ("/api/challenge/detail",))]  # '#' and case normalised
    assert http.calls == []


@pytest.mark.parametrize(
    ("detail", "status"),
    [(None, 200), (b"", 200), (b"{oops", 200), (DETAIL, 403)],
    ids=["not captured", "empty (unsigned)", "bad json", "http error"],
)
async def test_without_usable_json_the_captured_page_is_read(detail: bytes | None, status: int) -> None:
    http = FakeHttp(b"")
    assert await _poll(FakeBrowser(_capture(POSTS_PAGE, detail, status)), http) == {POSTS: 1_100_000}
    assert http.calls == []


@pytest.mark.parametrize(
    "browser",
    [
        FakeBrowser(_capture(fixture("hashtag_page_waf.html"), b"")),  # neither JSON nor header
        FakeBrowser(Transient(Outcome.TIMEOUT, "no page within 30s")),
        FakeBrowser(Blocked("HTTP 403")),
    ],
    ids=["unusable capture", "browser timeout", "browser blocked"],
)
async def test_plain_http_is_the_last_resort(browser: FakeBrowser) -> None:
    http = FakeHttp(fixture("hashtag_page_views.html"))
    assert await _poll(browser, http) == {VIEWS: 12_300_000_000}
    assert http.calls == [TAG_URL]


async def test_without_a_browser_the_page_comes_over_http() -> None:
    http = FakeHttp(POSTS_PAGE)
    assert await _poll(None, http, tag="nongsanlaichau") == {POSTS: 1_100_000}
    assert http.calls == [TAG_URL]


@pytest.mark.parametrize(
    ("capture", "error"),
    [
        (_capture(POSTS_PAGE, fixture("hashtag_detail_not_found.json")), NotFound),  # JSON is trusted
        (_capture(fixture("hashtag_page_not_found.html"), None), NotFound),
        (RateLimited("HTTP 429", retry_after=60), RateLimited),  # no second request to a limiting site
    ],
    ids=["json not found", "page not found", "rate limited"],
)
async def test_clear_answers_end_the_poll(
    capture: BrowserCapture | PollError, error: type[PollError]
) -> None:
    http = FakeHttp(POSTS_PAGE)
    with pytest.raises(error):
        await _poll(FakeBrowser(capture), http)
    assert http.calls == []


async def test_an_empty_tag_is_not_found() -> None:
    with pytest.raises(NotFound):
        await _poll(None, FakeHttp(POSTS_PAGE), tag=" # ")


async def test_tags_are_url_quoted() -> None:
    http = FakeHttp(POSTS_PAGE)
    await _poll(None, http, tag="#Nông/Sản?")
    assert http.calls == [f"{WEB}/tag/n%C3%B4ng%2Fs%E1%BA%A3n%3F"]


# --- end to end against the simulator -----------------------------------------------------------------


@dataclass
class Sim:
    server: TestServer
    clock: SimClock

    @property
    def base_urls(self) -> Mapping[str, str]:
        root = str(self.server.make_url("")).rstrip("/")
        return {"web": f"{root}/www.tiktok.com", "webcast": f"{root}/webcast.tiktok.com"}

    def truth(self) -> dict[str, Any]:
        """The simulator's hashtag truth at its (frozen) instant, as /_sim/truth reports it."""
        return hashtags_truth(self.server.app[SCENARIO], self.clock.elapsed())


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Sim]:
    clock = SimClock(freeze_at=1_800.0, start=START)
    server = TestServer(build_app(demo(1), clock))
    await server.start_server()
    yield Sim(server, clock)
    await server.close()


async def _poll_sim(sim: Sim, tag: str, browser: Any = None) -> dict[Metric, float]:
    async with HttpClient(HttpSettings()) as client:
        result = await poll_kind(
            adapter,
            TargetConfig(f"tag-{tag}", "tiktok", "hashtag", 30.0, {"tag": tag}),
            sim.base_urls,
            HttpFetcher(client),
            browser,
        )
    assert result.outcome is Outcome.OK
    return values(result.parsed)


def _shown(count: int) -> float:
    """What the header's abbreviated text is worth: the simulator truncates like TikTok ("1.5K")."""
    return float(parse_count(compact_count(count)))


async def test_http_poll_reads_the_posts_header_the_simulator_serves(sim: Sim) -> None:
    readings = await _poll_sim(sim, "nongsanlaichau")
    truth = sim.truth()["nongsanlaichau"]
    assert truth["markup"] == "posts" and truth["header"].endswith(" posts")
    assert readings == {POSTS: _shown(truth["posts"])} == {POSTS: float(parse_count(truth["header"]))}
    assert 0.9 * truth["posts"] < readings[POSTS] <= truth["posts"]


async def test_http_poll_reads_exact_posts_below_a_thousand_and_ignores_case(sim: Sim) -> None:
    truth = sim.truth()["lienketvunglaichau"]
    assert truth["posts"] < 1000
    assert await _poll_sim(sim, "#LienKetVungLaiChau") == {POSTS: truth["posts"]}


async def test_http_poll_reads_the_older_views_header(sim: Sim) -> None:
    truth = sim.truth()["ocoplaichau"]
    assert truth["markup"] == "views"
    assert await _poll_sim(sim, "ocoplaichau") == {VIEWS: _shown(truth["views"])}


async def test_http_poll_of_an_unknown_tag_is_not_found(sim: Sim) -> None:
    with pytest.raises(NotFound):
        await _poll_sim(sim, "khongtontai")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest_asyncio.fixture
async def browser_fetcher() -> AsyncIterator[Callable[[str], Any]]:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium not found (install Debian's chromium package)")
        pytest.skip("Chromium not found")
    from collector.browser import BrowserPool
    from collector.config import BrowserSettings
    from collector.metrics import LiveState, SelfMetrics

    pool = BrowserPool(
        BrowserSettings(executable_path=CHROMIUM, navigation_timeout=15.0),
        HttpSettings(),
        SelfMetrics(LiveState([])),
    )
    await pool.start()
    kept: list[RawResponse] = []
    yield lambda tag: pool.fetcher(TargetConfig(f"tag-{tag}", "tiktok", "hashtag", 30.0, {"tag": tag}), kept)
    await pool.close()


@pytest.mark.integration
async def test_browser_poll_captures_the_pages_signed_call_and_reads_exact_counts(
    sim: Sim, browser_fetcher: Callable[[str], Any]
) -> None:
    for tag in ("nongsanlaichau", "ocoplaichau"):
        truth = sim.truth()[tag]
        readings = await _poll_sim(sim, tag, browser_fetcher(tag))
        # JSON has both exact counts (ocoplaichau's stats.videoCount is 0; statsV2 has the count).
        assert readings == {VIEWS: truth["views"], POSTS: truth["posts"]}, tag
    with pytest.raises(NotFound):
        await _poll_sim(sim, "khongtontai", browser_fetcher("khongtontai"))
