"""A small pool over one headless Chromium, for pages whose numbers only exist after JavaScript runs.

The browser counterpart of `collector.http`: adapters get a `BrowserFetcher` per poll, and every page or
network response it captures is remembered in the poll's `responses` like an HTTP fetch is, and the page
status goes through the same `check_status`. Each target keeps its own BrowserContext, so cookies never
leak between targets; the browser is replaced every `recycle_after` pages (Chromium grows) and after a
crash, with the targets' cookies carried over. A target's page is kept after a good poll and navigated
again by its next one: a new page costs Chromium a new renderer, which made page creation the largest
cost of a poll.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    Frame,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from collector.api import NO_MARKERS, BrowserCapture, PageMarkers, RawResponse, TargetConfig, check_status
from collector.config import BrowserSettings, HttpSettings
from collector.http import MAX_BODY_BYTES, OutboundGuard, is_internal, retry_after_seconds
from collector.limits import HostLimiter
from collector.metrics import SelfMetrics
from collector.outcomes import Outcome, Transient

log = logging.getLogger(__name__)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Flags that keep Chromium from phoning home (updates, sync, field trials): these machines are offline,
# and those requests would only slow start-up and add noise to what a page capture sees.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# A page is clicked when it has made none of the wanted calls CLICK_GRACE seconds after its load event,
# or after CLICK_LOAD_WAIT + CLICK_GRACE if its load event is later than that (slow images).
CLICK_GRACE = 1.0
CLICK_LOAD_WAIT = 3.0

# Idle pages kept for reuse, per page the pool may have in flight: each holds a renderer (~30-100 MiB),
# so the bound follows the pool's size; the least recently used page beyond it is closed.
KEPT_PER_SLOT = 2
PARK_TIMEOUT_MS = 5_000


class _BrowserGone(Exception):
    """The page, its context or the whole browser went away under a capture: worth one retry."""


def _is_gone(exc: PlaywrightError) -> bool:
    # TargetClosedError is not exported by playwright.async_api; its name and messages are stable.
    text = exc.message
    return type(exc).__name__ == "TargetClosedError" or any(
        s in text for s in ("has been closed", "Target crashed", "Browser closed", "Connection closed")
    )


def _first_line(exc: PlaywrightError) -> str:
    # Playwright appends a multi-line call log; the first line says what happened.
    net = re.search(r"net::ERR_[A-Z0-9_]+", exc.message)
    return net.group(0) if net else exc.message.strip().splitlines()[0]


# A URL whose host is an IP literal or a localhost name: every host `is_internal` can call internal is one,
# so the guard's Python handler sees every request it may have to refuse, and the driver passes all
# others (CDNs, the platforms) straight on. Chromium canonicalises hosts before a request is made
# (lowercase; hex, octal and integer IPv4 forms as dotted quads), which is the form matched here.
_MAYBE_INTERNAL = (
    r"^[a-z][a-z0-9+.-]*://(?:[^/?#@]*@)?{allowed}"
    r"(?:\d+(?:\.\d+){{3}}\.?|\[[^\]/?#]*\]|(?:[^/?#:@\[\]]*\.)?localhost\.?)(?::\d*)?(?:[/?#]|$)"
)


def maybe_internal_pattern(internal_ok: frozenset[str]) -> re.Pattern[str]:
    """Requests the outbound guard must look at; hosts in `internal_ok` (the simulator) are left out.

    Serialised to the Playwright driver, which runs it as a JavaScript RegExp: only syntax both share."""
    hosts = sorted(f"\\[{re.escape(h)}\\]" if ":" in h else re.escape(h) for h in internal_ok)
    allowed = f"(?!(?:{'|'.join(hosts)})(?::\\d*)?(?:[/?#]|$))" if hosts else ""
    return re.compile(_MAYBE_INTERNAL.format(allowed=allowed), re.IGNORECASE)


def find_chromium(configured: str | None) -> str:
    path = configured or next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)
    if not path:
        raise RuntimeError(
            "a target needs a browser but no Chromium was found: install Debian's `chromium` package "
            f"or set browser.executable_path (looked for {', '.join(CHROMIUM_NAMES)} on PATH)"
        )
    return path


def _proxy(url: str) -> dict[str, str]:
    # Playwright wants proxy credentials apart from the server address.
    parts = urlsplit(url)
    proxy = {"server": f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")}
    if parts.username:
        proxy["username"] = parts.username
        proxy["password"] = parts.password or ""
    return proxy


def _cookies(header: str, url: str) -> list[Any]:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}/"  # url (not domain) makes them host-only with path "/"
    pairs = (item.strip().partition("=") for item in header.split(";"))
    return [{"name": k.strip(), "value": v.strip(), "url": origin} for k, _, v in pairs if k.strip()]


@dataclass(slots=True)
class BrowserFetcher:
    """The browser step handed to an adapter for one poll."""

    pool: BrowserPool
    target: TargetConfig
    responses: list[RawResponse] = field(default_factory=list)
    limiter: HostLimiter | None = None
    proxy: str | None = None  # the platform's current proxy; None: http.proxy, if any
    markers: PageMarkers = NO_MARKERS

    async def capture(
        self,
        url: str,
        *,
        wait_for: Sequence[str] = (),
        click: str | None = None,
        cookies: str | None = None,
        timeout: float | None = None,
    ) -> BrowserCapture:
        """Load `url` in the target's context; wait (up to `timeout`) for responses matching `wait_for`."""
        if self.pool.guard is not None:
            self.pool.guard.check(url)
        args = (self.target.name, url, tuple(dict.fromkeys(wait_for)), click, cookies, timeout, self.proxy)
        slot = self.limiter.slot(self.target.platform, url) if self.limiter else nullcontext()
        async with slot:
            result = await self._capture_retrying_once(args)
        self.responses.append(result.page)
        self.responses.extend(result.responses.values())
        if self.limiter and result.page.retry_after is not None and result.page.status in (429, 503):
            self.limiter.block(self.target.platform, url, result.page.retry_after)
        try:
            if self.pool.guard is not None and result.page.url != url:
                self.pool.guard.check(result.page.url)  # where the page's redirects ended up
            check_status(result.page, self.markers)
        except BaseException:
            self.pool.discard_kept(self.target.name)  # a refused or blocked page is not loaded again
            raise
        return result

    async def _capture_retrying_once(self, args: tuple[Any, ...]) -> BrowserCapture:
        url = args[1]
        try:
            return await self.pool._capture(*args)
        except _BrowserGone as exc:
            log.warning("browser went away loading %s for %s (%s); retrying once", url, args[0], exc)
            try:
                return await self.pool._capture(*args)
            except _BrowserGone as again:
                raise Transient(
                    Outcome.NETWORK_ERROR, f"browser failed twice loading {url}: {again}", url=url
                ) from None


class BrowserPool:
    def __init__(
        self,
        settings: BrowserSettings,
        http: HttpSettings,
        metrics: SelfMetrics,
        guard: OutboundGuard | None = None,
    ) -> None:
        self.settings, self.http, self.metrics, self.guard = settings, http, metrics, guard
        self._guarded = maybe_internal_pattern(guard.internal_ok) if guard is not None else None
        self._executable = ""
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._suspect: Browser | None = None  # a page or context on it died; replace it before reuse
        self._contexts: dict[str, BrowserContext] = {}  # per target, for the current browser only
        self._applied_cookies: dict[str, str] = {}  # the cookie string last added to each context
        self._saved_state: dict[str, Any] = {}  # storage_state per target, carried over a recycle
        self._context_proxy: dict[str, str | None] = {}  # the proxy each target's context was made with
        self._context_lock = asyncio.Lock()
        # Each target's idle page on the current browser, least recently used first.
        self._kept: OrderedDict[str, Page] = OrderedDict()
        self._kept_bound = KEPT_PER_SLOT * settings.max_pages
        self._closing: set[asyncio.Task[None]] = set()  # pages being closed outside any poll
        self.pages_opened = 0  # on any browser; a reused page is not counted again
        self._slots = asyncio.Semaphore(settings.max_pages)
        self._swap = asyncio.Lock()  # held while a page starts or the browser is replaced
        self._idle = asyncio.Event()  # no page in flight
        self._idle.set()
        self._served = 0  # pages started on the current browser
        self._in_flight = 0
        self._closed = False
        self._driver_error: asyncio.Future[object] | None = None

    def alive(self) -> bool:
        """The pool can still serve pages: open, and its Playwright driver running. A crashed Chromium
        is not death: the next page relaunches it."""
        driver_gone = self._driver_error is not None and self._driver_error.done()
        return not self._closed and self._playwright is not None and not driver_gone

    async def start(self) -> None:
        self._executable = find_chromium(self.settings.executable_path)
        manager = async_playwright()
        self._playwright = await manager.start()
        # Ctrl-C reaches the whole process group, so the Playwright driver dies with the service; the
        # driver's error future is then never awaited and asyncio would log a spurious error at exit.
        transport = getattr(getattr(manager, "_client", None), "_transport", None)
        error_future = getattr(transport, "on_error_future", None)
        if isinstance(error_future, asyncio.Future):
            error_future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._driver_error = error_future
        try:
            self._browser = await self._launch()
        except PlaywrightError as exc:
            await self._playwright.stop()
            raise RuntimeError(f"cannot launch Chromium {self._executable}: {exc.message}") from None
        log.info("browser started: Chromium %s (%s)", self._browser.version, self._executable)

    async def close(self) -> None:
        self._closed = True
        self._kept.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._browser is not None:
            with suppress(PlaywrightError):
                await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
        self._browser = self._playwright = None

    def fetcher(
        self,
        target: TargetConfig,
        responses: list[RawResponse],
        limiter: HostLimiter | None = None,
        proxy: str | None = None,
        markers: PageMarkers = NO_MARKERS,
    ) -> BrowserFetcher:
        return BrowserFetcher(self, target, responses, limiter, proxy, markers)

    async def _launch(self) -> Browser:
        assert self._playwright is not None, "BrowserPool used before start()"
        browser = await self._playwright.chromium.launch(
            executable_path=self._executable,
            headless=True,
            args=LAUNCH_ARGS,
            proxy=_proxy(self.http.proxy) if self.http.proxy else None,  # type: ignore[arg-type]
        )
        browser.on("disconnected", self._on_disconnected)
        self._served = 0
        return browser

    def _on_disconnected(self, browser: Browser) -> None:
        # Only logged: `_begin` sees `is_connected()` false and relaunches before the next page.
        if not self._closed and browser is self._browser:
            log.warning("Chromium disconnected unexpectedly; relaunching on the next page")

    def discard_kept(self, target: str) -> None:
        """Close the target's kept page: its last poll ended on a page that must not be loaded again."""
        if (page := self._kept.pop(target, None)) is not None:
            self._close_later(page)

    def _close_later(self, page: Page) -> None:
        # Not awaited, so a cancelled poll cannot leave a page neither kept nor closed.
        task = asyncio.create_task(_close(page))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _on_idle_crash(self, page: Page) -> None:
        # A renderer that died between polls: loading it again would fail the next poll.
        for target, kept in list(self._kept.items()):
            if kept is page:
                del self._kept[target]
                self._close_later(page)

    def _reusable(self, target: str, context: BrowserContext) -> Page | None:
        page = self._kept.pop(target, None)
        if page is not None and (page.is_closed() or page.context is not context):
            self._close_later(page)  # its context was replaced (a new proxy) or the page died
            return None
        return page

    def _keep(self, target: str, page: Page, browser: Browser) -> None:
        if browser is not self._browser or browser is self._suspect or page.is_closed():
            self._close_later(page)  # a recycle or a crash happened meanwhile
            return
        if (displaced := self._kept.pop(target, None)) is not None:
            self._close_later(displaced)  # two captures of one target at once: keep the later page
        self._kept[target] = page
        while len(self._kept) > self._kept_bound:
            self._close_later(self._kept.popitem(last=False)[1])

    def _forget(self, target: str, context: BrowserContext) -> None:
        # A closed context (its browser died or was recycled) must not be handed out again.
        if self._contexts.get(target) is context:
            del self._contexts[target]
            self._applied_cookies.pop(target, None)

    async def _relaunch(self, reason: str) -> None:
        """Swap in a fresh browser; called with `_swap` held, so no page starts meanwhile."""
        old, self._browser, self._suspect = self._browser, None, None
        if old is not None and old.is_connected():
            for name, context in list(self._contexts.items()):  # closing contexts leave the dict
                try:
                    self._saved_state[name] = await context.storage_state()
                except PlaywrightError as exc:
                    log.warning("could not save cookies of %s before a browser restart: %s", name, exc)
        self._contexts.clear()
        self._applied_cookies.clear()
        self._kept.clear()  # their pages close with the old browser
        if old is not None:
            with suppress(PlaywrightError):
                await old.close()  # also reaps the process of a crashed browser
        self._browser = await self._launch()
        self.metrics.browser_restarts.labels(reason).inc()
        log.info("browser restarted (%s)", reason)

    async def _begin(self) -> Browser:
        """Count a page in; first recycle a browser that has served enough, or replace a dead one."""
        async with self._swap:
            if self._closed:
                raise RuntimeError("browser pool is closed")
            browser = self._browser
            if browser is None or not browser.is_connected() or browser is self._suspect:
                await self._relaunch("crashed")  # pages still in flight there are failing anyway
            elif self._served >= self.settings.recycle_after:
                # Holding `_swap`, no new page starts on the old browser while its last pages finish.
                await self._idle.wait()
                await self._relaunch("recycled")
            assert self._browser is not None
            self._served += 1
            self._in_flight += 1
            self._idle.clear()
            return self._browser

    def _end(self) -> None:
        # Not async, so a cancelled poll cannot skip it and leave a recycle waiting forever.
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def _context(self, target: str, browser: Browser, proxy: str | None) -> BrowserContext:
        async with self._context_lock:
            context = self._contexts.get(target)
            if context is not None and self._context_proxy.get(target) != proxy:
                # The platform moved to its next proxy: same cookies, new route out.
                self._saved_state[target] = await context.storage_state()
                await context.close()
                context = None
            if context is None:
                context = await browser.new_context(
                    user_agent=self.http.user_agent,
                    extra_http_headers=dict(self.http.headers),
                    locale="vi-VN",
                    timezone_id="Asia/Ho_Chi_Minh",
                    storage_state=self._saved_state.get(target),
                    proxy=_proxy(proxy) if proxy else None,  # type: ignore[arg-type]
                )
                self._context_proxy[target] = proxy
                context.on("close", lambda c: self._forget(target, c))
                if self._guarded is not None:
                    await context.route(self._guarded, self._route)
                self._contexts[target] = context
            return context

    async def _route(self, route: Route) -> None:
        # Pages load scripts and images from CDNs, so subresources are not held to the platform hosts;
        # internal addresses are refused unless a platform itself lives there (the simulator). Only
        # requests matching `maybe_internal_pattern` come here. A trailing dot names the same host.
        assert self.guard is not None
        host = (urlsplit(route.request.url).hostname or "").lower().rstrip(".")
        if is_internal(host) and host not in self.guard.internal_ok:
            await route.abort("blockedbyclient")
        else:
            await route.continue_()

    async def _capture(
        self,
        target: str,
        url: str,
        wanted: tuple[str, ...],
        click: str | None,
        cookies: str | None,
        timeout: float | None,
        proxy: str | None,
    ) -> BrowserCapture:
        limit = timeout if timeout is not None else self.settings.navigation_timeout
        async with self._slots:
            try:
                browser = await self._begin()
            except PlaywrightError as exc:
                raise Transient(
                    Outcome.NETWORK_ERROR, f"cannot relaunch Chromium: {_first_line(exc)}"
                ) from None
            try:
                context = await self._context(target, browser, proxy)
                if cookies and self._applied_cookies.get(target) != cookies:
                    await context.add_cookies(_cookies(cookies, url))
                    self._applied_cookies[target] = cookies
                page = self._reusable(target, context)
                if page is None:
                    page = await context.new_page()
                    page.once("crash", self._on_idle_crash)
                    self.pages_opened += 1
                    fresh = True
                else:
                    fresh = False
                try:
                    result = await self._load(page, url, wanted, click, limit, fresh=fresh)
                except BaseException:
                    self._close_later(page)  # a failed load may leave the page in any state
                    raise
                if result.page.status < 400 and not result.failed and await _parked(page):
                    self._keep(target, page, browser)
                else:
                    self._close_later(page)
                return result
            except PlaywrightTimeout:
                raise Transient(Outcome.TIMEOUT, f"no page within {limit:g}s: {url}", url=url) from None
            except PlaywrightError as exc:
                if _is_gone(exc):
                    # The page often reports closing before the browser reports disconnecting, so
                    # mark this browser for replacement now. Failures of other pages on the same dead
                    # browser mark the same one, so one crash costs one relaunch, not one per page.
                    self._suspect = browser
                    raise _BrowserGone(_first_line(exc)) from None
                raise Transient(Outcome.NETWORK_ERROR, f"{_first_line(exc)}: {url}", url=url) from None
            finally:
                self._end()

    async def _load(
        self, page: Page, url: str, wanted: tuple[str, ...], click: str | None, limit: float, *, fresh: bool
    ) -> BrowserCapture:
        loop = asyncio.get_running_loop()
        captured: dict[str, RawResponse] = {}
        claimed: set[str] = set()
        readers: set[asyncio.Task[None]] = set()
        changed = asyncio.Event()

        async def read(response: Response, keys: list[str]) -> None:
            try:
                body = await response.body()
            except PlaywrightError:
                claimed.difference_update(keys)  # body gone (e.g. the page moved on): take the next one
            else:
                captured.update(dict.fromkeys(keys, _raw(response, body[:MAX_BODY_BYTES], response.url)))
            changed.set()

        # A kept page's previous document runs until the new one commits: its requests are not this poll's.
        current = fresh
        ours: set[Request] = set()

        def on_navigated(frame: Frame) -> None:
            nonlocal current
            if frame == page.main_frame:
                current = True

        def on_response(response: Response) -> None:
            if response.request not in ours:
                return
            # A redirect has no body; the response it leads to is the one the adapter wants.
            keys = [w for w in wanted if w not in claimed and w in response.url]
            if keys and not 300 <= response.status < 400:
                claimed.update(keys)
                readers.add(task := asyncio.create_task(read(response, keys)))
                task.add_done_callback(readers.discard)

        failed: dict[str, str] = {}
        in_flight: set[Request] = set()
        called = asyncio.Event()  # the page has made a wanted call

        def on_request(request: Request) -> None:
            if not current:
                return
            ours.add(request)
            in_flight.add(request)
            if not called.is_set() and any(w in request.url for w in wanted):
                called.set()

        def on_request_done(request: Request) -> None:
            in_flight.discard(request)
            changed.set()

        def on_request_failed(request: Request) -> None:
            if request not in ours:
                return
            if keys := [w for w in wanted if w not in claimed and w in request.url]:
                failed.update(dict.fromkeys(keys, request.failure or "request failed"))
            on_request_done(request)

        def settled() -> bool:
            # Everything wanted arrived; or a wanted call failed (reset, refused, blocked) and the page
            # has nothing else in flight, so the calls that follow it will not come either: waiting
            # until the deadline would make a failed call cost the whole navigation timeout.
            return captured.keys() | failed >= set(wanted) or (bool(failed) and not in_flight)

        def on_gone(_: Page) -> None:
            changed.set()

        # Listen before navigating, so a request fired during load is not missed; the listeners go after
        # the poll, so a kept page does not gather one set per poll.
        listeners: list[tuple[str, Callable[..., None]]] = [
            ("framenavigated", on_navigated),
            ("response", on_response),
            ("request", on_request),
            ("requestfinished", on_request_done),
            ("requestfailed", on_request_failed),
            ("close", on_gone),
            ("crash", on_gone),
        ]
        for event, listener in listeners:
            page.on(event, listener)
        clicker = None
        try:
            page.set_default_timeout(limit * 1000)
            deadline = loop.time() + limit
            main = await page.goto(url, wait_until="domcontentloaded", timeout=limit * 1000)
            self.metrics.browser_pages.inc()
            status = main.status if main is not None else 200
            if status < 400:  # an error page will not fire the wanted requests: do not wait for them
                if click and wanted:
                    clicker = asyncio.create_task(_click_unless_called(page, click, called, deadline))
                elif click:
                    clicker = asyncio.create_task(_click(page, click, deadline - loop.time()))
                if not wanted and clicker is not None:
                    await clicker
                # A missing response is not an error here: a page that stopped firing the request is a
                # layout change the adapter names, so it gets what did arrive.
                while not settled() and not page.is_closed():
                    with suppress(TimeoutError):
                        changed.clear()
                        await asyncio.wait_for(changed.wait(), max(0.0, deadline - loop.time()))
                    if loop.time() >= deadline:
                        break
            page_raw = await _page_raw(
                page, main, served_will_do=bool(wanted) and captured.keys() >= set(wanted)
            )
        finally:
            for event, listener in listeners:
                page.remove_listener(event, listener)
            pending = [task for task in (clicker, *readers) if task is not None]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        responses = {w: captured[w] for w in wanted if w in captured}
        return BrowserCapture(
            page_raw, responses, {w: failed[w] for w in wanted if w in failed and w not in responses}
        )


async def _parked(page: Page) -> bool:
    """Empty a page kept for the next poll. Left showing, its document (a live video, its timers and
    calls) would go on loading from the platform between polls, through the proxy and outside every
    politeness limit. Parking costs ~60 ms and the next load from it ~95, against ~200 for a new page."""
    try:
        await page.goto("about:blank", timeout=PARK_TIMEOUT_MS)
    except PlaywrightError:  # a page that cannot even do this is not worth keeping
        return False
    return True


async def _close(page: Page) -> None:
    with suppress(PlaywrightError):
        await page.close()


async def _page_raw(page: Page, main: Response | None, *, served_will_do: bool) -> RawResponse:
    """The page for the status and marker checks, and for a snapshot: the document as served when the
    page's calls gave the adapter everything, else the DOM after JavaScript ran (what a missing call's
    adapter classifies). The DOM costs ~70 ms a page: Playwright builds an isolated world in it first."""
    if served_will_do and main is not None:
        try:
            return _raw(main, (await main.body())[:MAX_BODY_BYTES], page.url)
        except PlaywrightError as exc:
            if _is_gone(exc):
                raise
            # Chromium evicted the body (or never kept it): serialise the DOM instead.
    # content() raises if the page or browser died while we waited. It is the DOM serialised as HTML,
    # whatever the response's own type and charset were.
    body = (await page.content()).encode("utf-8")
    return _raw(main, body, page.url, content_type="text/html; charset=utf-8")


async def _click(page: Page, selector: str, timeout: float) -> None:
    # The control may never appear (autoplay, a new layout); the wanted responses tell whether it mattered.
    with suppress(PlaywrightError):
        await page.click(selector, timeout=max(timeout, 0.001) * 1000)


async def _click_unless_called(page: Page, selector: str, called: asyncio.Event, deadline: float) -> None:
    # Pages that also make their calls on load (Shopee's share page) need no click, and a click costs
    # ~0.2 s of actionability checks, scrolling and mouse events: click only a page that has not made
    # any of the wanted calls by a grace after its load.
    loop = asyncio.get_running_loop()
    with suppress(PlaywrightError):  # the load timed out, or the page went away (then the click fails)
        await page.wait_for_load_state(
            "load", timeout=max(min(CLICK_LOAD_WAIT, deadline - loop.time()), 0.001) * 1000
        )
    with suppress(TimeoutError):
        await asyncio.wait_for(called.wait(), CLICK_GRACE)
        return
    await _click(page, selector, deadline - loop.time())


def _raw(response: Response | None, body: bytes, url: str, content_type: str | None = None) -> RawResponse:
    headers = response.headers if response is not None else {}
    return RawResponse(
        url=url,
        status=response.status if response is not None else 200,
        content_type=content_type or headers.get("content-type", ""),
        body=body,
        fetched_at=datetime.now(UTC),
        retry_after=retry_after_seconds(headers.get("retry-after")),
    )
