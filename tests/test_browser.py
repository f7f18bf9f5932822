"""The browser pool against real Chromium and a local aiohttp server: captures, cookie isolation,
recycling, crash recovery and the outcome errors a page maps to. No mocks: these are the behaviours
adapters rely on, and they only show up with a real browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from collector.api import PageMarkers, RawResponse
from collector.browser import CHROMIUM_NAMES, BrowserPool
from collector.config import BrowserSettings, HttpSettings, TargetConfig
from collector.http import OutboundGuard
from collector.metrics import LiveState, SelfMetrics
from collector.outcomes import Blocked, Outcome, Refused, Transient

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.integration]  # starts Chromium

CHROMIUM = next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)
NOT_FOUND = "Chromium not found (install Debian's chromium package)"

RENDERS_AFTER_LOAD = """<!doctype html><html><body><div id="out">waiting</div><script>
window.addEventListener('load', () => fetch('/api/data').then(r => r.json()).then(d => {
  document.getElementById('out').textContent = 'rendered ' + d.viewers + ' viewers';
}));
</script></body></html>"""
FETCHES_ON_CLICK = """<!doctype html><html><body><button id="play">play</button><div id="out"></div><script>
document.getElementById('play').addEventListener('click', () =>
  fetch('/api/data?via=click').then(r => r.json()).then(d => {
    document.getElementById('out').textContent = 'clicked ' + d.viewers;
  }));
</script></body></html>"""
CALLS_ON_LOAD_OR_CLICK = """<!doctype html><html><body><button id="play">play</button><script>
window.addEventListener('load', () => fetch('/api/late'));
document.getElementById('play').addEventListener('click', () => fetch('/api/data?via=click'));
</script></body></html>"""
FETCHES_AND_FAILS = (
    """<!doctype html><html><body><script>fetch('/api/reset').catch(() => {});</script></body></html>"""
)
FETCHES_SLOWLY = """<!doctype html><html><body><script>fetch('/api/slow');</script></body></html>"""
ECHO = """<!doctype html><html><body><pre id="env"></pre><script>
document.getElementById('env').textContent =
  Intl.DateTimeFormat().resolvedOptions().timeZone + ' ' + navigator.language;
</script><pre id="headers">{headers}</pre></body></html>"""

# 2130706434 and 0x7f000002 are 127.0.0.2 (Chromium rewrites them before the request is made).
LOOPBACK_ALIASES = (
    "127.0.0.2",
    "2130706434",
    "0x7f000002",
    "[::1]",
    "LOCALHOST",
    "localhost.",
    "a.localhost",
)


def html(text: str, status: int = 200):  # type: ignore[no-untyped-def]
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html")

    return handler


def target(name: str) -> TargetConfig:
    return TargetConfig(name, "tiktok", "live", 30.0, {"account": name})


def restarts(metrics: SelfMetrics, reason: str) -> float:
    return metrics.registry.get_sample_value("collector_browser_restarts_total", {"reason": reason}) or 0.0


class Site:
    """The local site the browser loads; counts hits so tests can see what the page really requested."""

    def __init__(self) -> None:
        self.base = ""
        self.hits: dict[str, int] = {}
        self.stalls = 0  # how many more /api/slow requests stall, each announced on `stalled`
        self.stalled: asyncio.Queue[None] = asyncio.Queue()
        self.loads = 0  # /ticker pages served
        app = web.Application()
        app.middlewares.append(self.count)
        app.router.add_get("/live", html(RENDERS_AFTER_LOAD))
        app.router.add_get("/click", html(FETCHES_ON_CLICK))
        app.router.add_get("/slow", html(FETCHES_SLOWLY))
        app.router.add_get("/loads", html(CALLS_ON_LOAD_OR_CLICK))
        app.router.add_get("/api/late", self.api_late)
        app.router.add_get("/quiet", html("<p>no requests</p>"))
        app.router.add_get("/fails", html(FETCHES_AND_FAILS))
        app.router.add_get("/api/reset", self.reset)
        app.router.add_get("/banned", html("Access denied", status=403))
        app.router.add_get("/api/data", self.api_data)
        app.router.add_get("/api/slow", self.api_slow)
        app.router.add_get("/echo", self.echo)
        app.router.add_get("/welcome", self.welcome)
        app.router.add_get("/hang", self.hang)
        app.router.add_get("/leaky", self.leaky)
        app.router.add_get("/api/leak", self.api_data)
        app.router.add_get("/leaks", self.leaks)
        app.router.add_get("/api/leak/{i}", self.api_data)
        app.router.add_get("/ticker", self.ticker)
        app.router.add_get("/api/tick", self.api_tick)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)

    @web.middleware
    async def count(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        return await handler(request)

    async def api_data(self, _request: web.Request) -> web.Response:
        return web.json_response({"viewers": 1234, "title": "Phiên live"})

    async def api_late(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)  # long enough for a needless click to land meanwhile
        return web.json_response({"late": True})

    async def reset(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()  # the connection drops without an answer: the page's call fails
        return web.Response()

    async def echo(self, request: web.Request) -> web.Response:
        seen = {k: request.headers.get(k, "") for k in ("Cookie", "User-Agent", "Accept-Language")}
        return web.Response(text=ECHO.format(headers=json.dumps(seen)), content_type="text/html")

    async def welcome(self, _request: web.Request) -> web.Response:
        response = web.Response(text="<p>welcome</p>", content_type="text/html")
        response.set_cookie("session", "from-server", max_age=3600)
        return response

    async def api_slow(self, _request: web.Request) -> web.Response:
        # A stalled request lets a test kill the browser mid-capture; later ones answer at once.
        if self.stalls > 0:
            self.stalls -= 1
            self.stalled.put_nowait(None)
            await asyncio.sleep(2)
        return web.json_response({"slow": True})

    async def leaky(self, _request: web.Request) -> web.Response:
        # The same server under another name: `localhost` is internal and not a platform host here.
        port = self.base.rsplit(":", 1)[1]
        script = f"<script>fetch('http://localhost:{port}/api/leak').catch(() => {{}})</script>"
        return web.Response(text=f"<p>leaky</p>{script}", content_type="text/html")

    async def leaks(self, _request: web.Request) -> web.Response:
        # Loopback under every name and form Chromium accepts for it; none is the platform host.
        port = self.base.rsplit(":", 1)[1]
        calls = "".join(f"fetch('http://{host}:{port}/api/leak/{i}').catch(() => {{}});"
                        for i, host in enumerate(LOOPBACK_ALIASES))  # fmt: skip
        return web.Response(text=f"<p>leaks</p><script>{calls}</script>", content_type="text/html")

    async def ticker(self, _request: web.Request) -> web.Response:
        # Each load names itself in the calls it keeps making; served slowly, so a kept page's previous
        # document is still calling while the next load is on its way.
        self.loads += 1
        await asyncio.sleep(0.3)
        script = f"<script>setInterval(() => fetch('/api/tick?load={self.loads}'), 30)</script>"
        return web.Response(text=f"<p>load {self.loads}</p>{script}", content_type="text/html")

    async def api_tick(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)  # still in flight when the next load replaces the page: aborted then
        return web.json_response({"load": int(request.query["load"])})

    async def hang(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="too late")

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail(NOT_FOUND)  # CI must exercise the browser path, never skip it silently
        pytest.skip(NOT_FOUND)
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[Site]:
    s = Site()
    await s.start()
    yield s
    await s.runner.cleanup()


async def started(chromium: str, **settings: Any) -> tuple[BrowserPool, SelfMetrics]:
    metrics = SelfMetrics(LiveState([]))
    pool = BrowserPool(BrowserSettings(executable_path=chromium, **settings), HttpSettings(), metrics)
    await pool.start()
    return pool, metrics


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(chromium: str) -> AsyncIterator[tuple[BrowserPool, SelfMetrics]]:
    pool, metrics = await started(chromium, navigation_timeout=10.0)
    yield pool, metrics
    await pool.close()


@pytest.fixture
def pool(shared: tuple[BrowserPool, SelfMetrics]) -> BrowserPool:
    return shared[0]


async def test_capture_returns_the_fetched_json_and_the_page(pool: BrowserPool, site: Site) -> None:
    kept: list[RawResponse] = []
    result = await pool.fetcher(target("a"), kept).capture(f"{site.base}/live", wait_for=["/api/data"])

    data = result.responses["/api/data"]
    assert json.loads(data.body) == {"viewers": 1234, "title": "Phiên live"}
    assert data.status == 200 and data.content_type.startswith("application/json")
    assert data.url == f"{site.base}/api/data"
    assert result.page.status == 200 and result.page.url == f"{site.base}/live"
    # Every wanted call answered: the page body is the HTML the server sent (the DOM is not needed).
    assert result.page.body == RENDERS_AFTER_LOAD.encode()
    assert result.page.content_type.startswith("text/html")
    assert kept == [result.page, data]


async def test_a_page_missing_a_wanted_call_is_the_rendered_dom(pool: BrowserPool, site: Site) -> None:
    result = await pool.fetcher(target("a"), []).capture(
        f"{site.base}/live", wait_for=["/api/data", "/api/never"], timeout=2
    )
    assert "/api/data" in result.responses
    # The adapter classifies what the page shows, so it gets the DOM after JavaScript ran.
    assert b'<div id="out">rendered 1234 viewers</div>' in result.page.body


async def test_the_request_fired_by_a_click_is_captured(pool: BrowserPool, site: Site) -> None:
    result = await pool.fetcher(target("a"), []).capture(
        f"{site.base}/click", wait_for=["/api/data"], click="#play", timeout=5
    )
    assert result.responses["/api/data"].url.endswith("/api/data?via=click")
    assert json.loads(result.responses["/api/data"].body)["viewers"] == 1234


async def test_a_page_that_makes_the_call_on_load_is_not_clicked(pool: BrowserPool, site: Site) -> None:
    clicks = site.hits.get("/api/data", 0)
    result = await pool.fetcher(target("a"), []).capture(
        f"{site.base}/loads", wait_for=["/api/late"], click="#play", timeout=10
    )
    assert json.loads(result.responses["/api/late"].body) == {"late": True}
    assert site.hits.get("/api/data", 0) == clicks


async def test_a_missing_click_target_is_ignored(pool: BrowserPool, site: Site) -> None:
    result = await pool.fetcher(target("a"), []).capture(
        f"{site.base}/live", wait_for=["/api/data"], click="#no-such-button", timeout=5
    )
    assert "/api/data" in result.responses


async def test_a_request_the_page_never_fires_is_left_out_after_the_timeout(
    pool: BrowserPool, site: Site
) -> None:
    started_at = time.monotonic()
    result = await pool.fetcher(target("a"), []).capture(
        f"{site.base}/quiet", wait_for=["/api/data"], timeout=1
    )
    took = time.monotonic() - started_at
    assert result.responses == {}
    assert b"no requests" in result.page.body
    assert 1 <= took < 4


async def test_a_failed_call_is_left_out_without_waiting_for_the_timeout(
    pool: BrowserPool, site: Site
) -> None:
    started_at = time.monotonic()
    result = await pool.fetcher(target("a"), []).capture(
        f"{site.base}/fails", wait_for=["/api/reset"], timeout=20
    )
    assert result.responses == {}
    assert site.hits.get("/api/reset", 0) >= 1
    assert time.monotonic() - started_at < 10


async def test_cookies_go_to_their_own_target_only(pool: BrowserPool, site: Site) -> None:
    shop = pool.fetcher(target("shop"), [])
    seen = await shop.capture(f"{site.base}/echo", cookies="sid=abc123; lang=vi")
    assert "sid=abc123; lang=vi" in seen.page.body.decode()
    # Cookies stay with the target's context: a later capture without `cookies` still sends them ...
    again = await shop.capture(f"{site.base}/echo")
    assert "sid=abc123" in again.page.body.decode()
    # ... and another target's context never has them.
    other = await pool.fetcher(target("other"), []).capture(f"{site.base}/echo")
    assert "sid=abc123" not in other.page.body.decode()
    assert '"Cookie": ""' in other.page.body.decode()


async def test_pages_carry_the_configured_identity(pool: BrowserPool, site: Site) -> None:
    page = (await pool.fetcher(target("a"), []).capture(f"{site.base}/echo")).page.body.decode()
    assert "Asia/Ho_Chi_Minh vi-VN" in page or "Asia/Saigon vi-VN" in page  # ICU's canonical name
    assert HttpSettings().user_agent in page
    # Playwright's `locale` sets Accept-Language and overrides the configured header's value.
    assert '"Accept-Language": "vi-VN' in page


async def test_a_403_page_is_blocked_and_its_body_kept(pool: BrowserPool, site: Site) -> None:
    kept: list[RawResponse] = []
    with pytest.raises(Blocked):
        await pool.fetcher(target("a"), kept).capture(f"{site.base}/banned", wait_for=["/api/data"])
    assert [r.status for r in kept] == [403]
    assert b"Access denied" in kept[0].body


async def test_navigation_failures_map_to_transient_outcomes(pool: BrowserPool, site: Site) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    fetcher = pool.fetcher(target("a"), [])
    with pytest.raises(Transient) as refused:
        await fetcher.capture(f"http://127.0.0.1:{closed_port}/")
    assert refused.value.outcome is Outcome.NETWORK_ERROR
    assert "ERR_CONNECTION_REFUSED" in refused.value.detail
    with pytest.raises(Transient) as slow:
        await fetcher.capture(f"{site.base}/hang", timeout=0.5)
    assert slow.value.outcome is Outcome.TIMEOUT


async def test_pages_are_counted(shared: tuple[BrowserPool, SelfMetrics], site: Site) -> None:
    pool, metrics = shared
    before = metrics.registry.get_sample_value("collector_browser_pages_total") or 0.0
    await pool.fetcher(target("a"), []).capture(f"{site.base}/quiet")
    assert metrics.registry.get_sample_value("collector_browser_pages_total") == before + 1


async def test_the_browser_is_recycled_and_cookies_survive(chromium: str, site: Site) -> None:
    pool, metrics = await started(chromium, recycle_after=2, max_pages=3)
    try:
        fetcher = pool.fetcher(target("shop"), [])
        await fetcher.capture(f"{site.base}/welcome")  # the server sets `session`
        first = pool._browser
        await fetcher.capture(f"{site.base}/quiet")
        assert restarts(metrics, "recycled") == 0
        # Page three starts on a new browser, in a context restored from the old one's cookies.
        seen = await fetcher.capture(f"{site.base}/echo")
        assert pool._browser is not first and first is not None and not first.is_connected()
        assert restarts(metrics, "recycled") == 1
        assert "session=from-server" in seen.page.body.decode()
        # Under load the old browser's last pages finish before it is swapped: none of them fail.
        results = await asyncio.gather(
            *(
                pool.fetcher(target(f"t{i}"), []).capture(f"{site.base}/live", wait_for=["/api/data"])
                for i in range(5)
            )
        )
        assert all("/api/data" in r.responses for r in results)
        assert restarts(metrics, "recycled") == 3
    finally:
        await pool.close()


async def test_a_browser_closed_behind_the_pools_back_is_relaunched(chromium: str, site: Site) -> None:
    pool, metrics = await started(chromium)
    try:
        fetcher = pool.fetcher(target("a"), [])
        await fetcher.capture(f"{site.base}/echo", cookies="sid=abc123")
        assert pool._browser is not None
        await pool._browser.close()  # as if Chromium had died between polls

        result = await fetcher.capture(f"{site.base}/live", wait_for=["/api/data"])
        assert "/api/data" in result.responses
        assert restarts(metrics, "crashed") == 1
        # The fresh context gets the target's cookies again.
        assert (
            "sid=abc123"
            in (await fetcher.capture(f"{site.base}/echo", cookies="sid=abc123")).page.body.decode()
        )
    finally:
        await pool.close()


# Bounds for a hang, not timings: under a load of 20 on two cores a Chromium relaunch alone has taken
# several seconds, and the retried page only reaches /api/slow after it.
HANG = 60


async def kill_browser_when_stalled(pool: BrowserPool, site: Site) -> None:
    await asyncio.wait_for(site.stalled.get(), HANG)
    assert pool._browser is not None
    await pool._browser.close()  # dies while the page waits for /api/slow


async def test_a_crash_mid_capture_is_retried_once(chromium: str, site: Site) -> None:
    pool, metrics = await started(chromium)
    site.stalls, hits = 2, site.hits.get("/api/slow", 0)
    try:
        captures = [
            asyncio.create_task(
                pool.fetcher(target(name), []).capture(
                    f"{site.base}/slow", wait_for=["/api/slow"], timeout=HANG
                )
            )
            for name in ("a", "b")
        ]
        await asyncio.wait_for(site.stalled.get(), HANG)  # both pages are waiting for /api/slow ...
        await kill_browser_when_stalled(pool, site)  # ... when the browser dies under them

        for result in await asyncio.wait_for(asyncio.gather(*captures), HANG):
            assert json.loads(result.responses["/api/slow"].body) == {"slow": True}
        assert site.hits["/api/slow"] == hits + 4
        assert restarts(metrics, "crashed") == 1  # one crash, one relaunch, however many pages it hit
    finally:
        await pool.close()


async def test_a_second_crash_is_a_network_error(chromium: str, site: Site) -> None:
    pool, metrics = await started(chromium)
    site.stalls = 2
    try:
        fetcher = pool.fetcher(target("a"), [])
        capture = asyncio.create_task(
            fetcher.capture(f"{site.base}/slow", wait_for=["/api/slow"], timeout=HANG)
        )
        await kill_browser_when_stalled(pool, site)
        await kill_browser_when_stalled(pool, site)

        with pytest.raises(Transient) as failed:
            await asyncio.wait_for(capture, HANG)
        assert failed.value.outcome is Outcome.NETWORK_ERROR
        assert restarts(metrics, "crashed") == 1
        # The next poll gets a working browser again.
        assert (await fetcher.capture(f"{site.base}/quiet")).page.status == 200
        assert restarts(metrics, "crashed") == 2
    finally:
        await pool.close()


async def test_a_missing_chromium_is_a_clear_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    pool = BrowserPool(BrowserSettings(), HttpSettings(), SelfMetrics(LiveState([])))
    with pytest.raises(RuntimeError, match="no Chromium was found"):
        await pool.start()


async def test_the_guard_refuses_foreign_pages_and_internal_subresources(chromium: str, site: Site) -> None:
    metrics = SelfMetrics(LiveState([]))
    guard = OutboundGuard([site.base])
    pool = BrowserPool(BrowserSettings(executable_path=chromium), HttpSettings(), metrics, guard)
    await pool.start()
    try:
        fetcher = pool.fetcher(target("guarded"), [])
        with pytest.raises(Refused):
            await fetcher.capture("http://platform.example.invalid/live")
        before = site.hits.get("/api/leak", 0)
        capture = await fetcher.capture(f"{site.base}/leaky", wait_for=("/api/leak",), timeout=2)
        assert "/api/leak" not in capture.responses
        assert site.hits.get("/api/leak", 0) == before
    finally:
        await pool.close()


async def test_the_guard_refuses_loopback_under_any_name(chromium: str, site: Site) -> None:
    # Only requests to IP literals and localhost names reach the guard's handler (the rest stay in the
    # driver); every form of an internal host that is not the platform's own must still be refused.
    metrics = SelfMetrics(LiveState([]))
    pool = BrowserPool(
        BrowserSettings(executable_path=chromium), HttpSettings(), metrics, OutboundGuard([site.base])
    )
    await pool.start()
    try:
        wanted = [f"/api/leak/{i}" for i in range(len(LOOPBACK_ALIASES))]
        before = sum(site.hits.get(w, 0) for w in wanted)
        capture = await pool.fetcher(target("guarded"), []).capture(
            f"{site.base}/leaks", wait_for=wanted, timeout=5
        )
        assert capture.responses == {}
        assert capture.failed == dict.fromkeys(wanted, "net::ERR_BLOCKED_BY_CLIENT.Inspector")  # the guard
        assert sum(site.hits.get(w, 0) for w in wanted) == before
    finally:
        await pool.close()


async def test_the_pool_is_alive_from_start_to_close(chromium: str) -> None:
    pool = BrowserPool(BrowserSettings(executable_path=chromium), HttpSettings(), SelfMetrics(LiveState([])))
    assert not pool.alive()
    await pool.start()
    try:
        assert pool.alive()
    finally:
        await pool.close()
    assert not pool.alive()


def kept_page(pool: BrowserPool, name: str) -> Any:
    return pool._kept.get(name)


async def background_closes(pool: BrowserPool) -> None:
    await asyncio.gather(*pool._closing)


async def test_a_targets_page_is_navigated_again_by_its_next_poll(pool: BrowserPool, site: Site) -> None:
    fetcher = pool.fetcher(target("reused"), [])
    first = await fetcher.capture(f"{site.base}/ticker", wait_for=["/api/tick"])
    page, opened = kept_page(pool, "reused"), pool.pages_opened
    second = await fetcher.capture(f"{site.base}/ticker", wait_for=["/api/tick"])

    assert kept_page(pool, "reused") is page and pool.pages_opened == opened  # no new page
    assert len(page.context.pages) == 1
    # None of the previous document's calls (answered, or aborted by the parking) is taken for this load's.
    assert json.loads(first.responses["/api/tick"].body)["load"] == site.loads - 1
    assert json.loads(second.responses["/api/tick"].body)["load"] == site.loads
    assert b"load %d" % site.loads in second.page.body


async def test_a_kept_page_is_parked_and_calls_nothing_between_polls(pool: BrowserPool, site: Site) -> None:
    await pool.fetcher(target("parked"), []).capture(f"{site.base}/ticker", wait_for=["/api/tick"])
    assert kept_page(pool, "parked").url == "about:blank"
    await asyncio.sleep(0.6)  # calls the page had in flight end (aborted) or arrive
    ticks = site.hits["/api/tick"]
    await asyncio.sleep(0.6)  # the ticker calls every 30 ms while it shows
    assert site.hits["/api/tick"] == ticks


async def test_a_failed_polls_page_is_closed_not_reused(pool: BrowserPool, site: Site) -> None:
    fetcher = pool.fetcher(target("failing"), [])
    await fetcher.capture(f"{site.base}/quiet")
    for fail in (
        fetcher.capture(f"{site.base}/banned"),  # 403
        fetcher.capture(f"{site.base}/hang", timeout=0.5),  # timeout
    ):
        page = kept_page(pool, "failing")
        with pytest.raises((Blocked, Transient)):
            await fail
        assert kept_page(pool, "failing") is None
        await background_closes(pool)
        assert page.is_closed()
        await fetcher.capture(f"{site.base}/quiet")  # a new page again
        assert kept_page(pool, "failing") not in (None, page)
    # A wanted call that failed, and a block page the adapter's markers name, end reuse too.
    page = kept_page(pool, "failing")
    await fetcher.capture(f"{site.base}/fails", wait_for=["/api/reset"], timeout=20)
    assert kept_page(pool, "failing") is None
    await fetcher.capture(f"{site.base}/quiet")
    page = kept_page(pool, "failing")
    marked = pool.fetcher(target("failing"), [], markers=PageMarkers(blocked=(re.compile(b"no requests"),)))
    with pytest.raises(Blocked):
        await marked.capture(f"{site.base}/quiet")
    assert kept_page(pool, "failing") is None
    await background_closes(pool)
    assert page.is_closed()


async def test_idle_pages_beyond_the_bound_close_least_recently_used_first(chromium: str, site: Site) -> None:
    pool, _ = await started(chromium, max_pages=1)  # keeps 2 idle pages
    try:
        for name in ("a", "b", "c"):
            await pool.fetcher(target(name), []).capture(f"{site.base}/quiet")
        assert list(pool._kept) == ["b", "c"] and pool.pages_opened == 3
        await pool.fetcher(target("b"), []).capture(f"{site.base}/quiet")  # reused: b is now the newest
        await pool.fetcher(target("a"), []).capture(f"{site.base}/quiet")  # a new page; c goes
        assert list(pool._kept) == ["b", "a"] and pool.pages_opened == 4
        await background_closes(pool)
        assert len(pool._contexts["c"].pages) == 0
    finally:
        await pool.close()


async def test_a_kept_page_does_not_gather_listeners(pool: BrowserPool, site: Site) -> None:
    fetcher = pool.fetcher(target("listened"), [])
    await fetcher.capture(f"{site.base}/live", wait_for=["/api/data"])
    page = kept_page(pool, "listened")
    events = ("request", "response", "requestfinished", "requestfailed", "framenavigated", "close", "crash")
    counts = {e: len(page._impl_obj.listeners(e)) for e in events}
    for _ in range(5):
        result = await fetcher.capture(f"{site.base}/live", wait_for=["/api/data"])
        assert json.loads(result.responses["/api/data"].body)["viewers"] == 1234
    assert kept_page(pool, "listened") is page
    assert {e: len(page._impl_obj.listeners(e)) for e in events} == counts
    assert counts["response"] == counts["request"] == 0  # none of a poll's stays after it


async def test_a_recycle_drops_the_kept_pages(chromium: str, site: Site) -> None:
    pool, metrics = await started(chromium, recycle_after=2)
    try:
        fetcher = pool.fetcher(target("a"), [])
        await fetcher.capture(f"{site.base}/quiet")
        await fetcher.capture(f"{site.base}/quiet")
        page = kept_page(pool, "a")
        await fetcher.capture(f"{site.base}/quiet")  # on a new browser
        assert restarts(metrics, "recycled") == 1
        assert page.is_closed() and kept_page(pool, "a") not in (None, page)
        assert pool.pages_opened == 2
    finally:
        await pool.close()
