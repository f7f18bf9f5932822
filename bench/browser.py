"""Shopee live pages through Chromium: throughput, the cost of a failed JSON call, and memory over time.

The simulator runs in its own process (`collector simulate`, clock frozen while the demo's Shopee session
is live); everything else runs here. Three figures, each next to a baseline measured in the same run:

1. pages per minute at IN_FLIGHT pages in flight on clean pages, through the service's own path: the
   `BrowserPool` that `collector run` starts (`service.browser_pool`: the outbound guard's route, the
   configured recycle) and `Poller.poll` on Shopee `live` targets in browser mode (the share page
   loaded, the video clicked if the page made no call by itself, joinv2 and more_items captured, parsed
   into samples; records go to a list, the writer is not part of this row). The baseline is a bare Playwright loop on the same Chromium
   with the same launch flags: one context per target, a new page per load, `goto` the same share URL and
   wait for the same two JSON responses and read their bodies. Rounds alternate; medians are printed.
2. wall time per poll, one at a time, when the simulator resets every joinv2 connection (the page's
   wanted call fails: what one call in nine did in event-week runs) against clean polls; alternating.
3. memory every 100 pages: this process's RSS, the Playwright driver's and Chromium's (PSS summed over
   its processes, so shared pages count once), over the throughput rounds, or over `--rss-pages N`
   pages in one run (`python -m bench.browser --rss-pages 1000`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Route, async_playwright

from bench.poll import simulator
from collector.adapters import registered_adapters
from collector.browser import LAUNCH_ARGS, BrowserPool, find_chromium, maybe_internal_pattern
from collector.config import Config, build_config
from collector.http import HttpClient, is_internal
from collector.metrics import LiveState, SelfMetrics
from collector.poller import Poller
from collector.service import browser_pool
from simulator.shopee import demo_world

SESSION = str(demo_world(0)[1].session_id)  # live through the frozen instant (ids ignore the seed)
TARGETS = 8  # contexts kept by the pool (one per target) and by the bare loop alike
IN_FLIGHT = 4
PAGES = 120  # per throughput round
ROUNDS = 2
FAULT_POLLS = 8  # per fault round, one poll at a time
FAULT_ROUNDS = 2
SAMPLE_EVERY = 100  # pages between memory samples
RECYCLE_AFTER = 100  # the pool's default: Chromium is replaced after this many pages


def bench_config(sim: str) -> Config:
    targets = [
        {"name": f"shopee-live-{i}", "platform": "shopee", "kind": "live", "session_id": SESSION}
        for i in range(TARGETS)
    ]
    platform = {
        "base_urls": {
            "live": f"{sim}/live.shopee.vn",
            "creator": f"{sim}/creator.shopee.vn",
            "short": f"{sim}/vn.shp.ee",
        },
        "requests_per_second": 1e6,  # the pages in flight set the pace; the limiter only takes its slots
        "max_concurrency": IN_FLIGHT,
    }
    browser = {
        "executable_path": find_chromium(None),
        "max_pages": IN_FLIGHT,
        "recycle_after": RECYCLE_AFTER,
        "navigation_timeout": "10s",
    }
    data = {"platforms": {"shopee": platform}, "browser": browser, "targets": targets}
    return build_config(data, source="bench", adapters=registered_adapters(), env={})


def _share_url(sim: str) -> str:
    return f"{sim}/live.shopee.vn/share?from=live&session={SESSION}"


def _descendants() -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _kib(pid: int | str, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass  # the process ended between listing and reading
    return 0


def memory_mib() -> tuple[float, float, float]:
    """(this process RSS, Playwright driver RSS, Chromium PSS) in MiB."""
    driver = chromium = 0
    for pid in _descendants():
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if "chrom" in name:
            chromium += _kib(pid, "smaps_rollup", "Pss:")
        elif name.startswith("node"):  # "node-MainThread"
            driver += _kib(pid, "status", "VmRSS:")
    return _kib("self", "status", "VmRSS:") / 1024, driver / 1024, chromium / 1024


async def in_flight(
    pages: int, one: Callable[[int], Awaitable[None]], sample: Callable[[int], None]
) -> float:
    """`pages` calls of `one` by IN_FLIGHT workers; `sample(done)` every SAMPLE_EVERY pages; wall seconds."""
    counter = iter(range(pages))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in counter:
            await one(i)
            done += 1
            if done % SAMPLE_EVERY == 0:
                sample(done)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - started


class Collector:
    """The service's browser path: `browser_pool` + `Poller` on Shopee live targets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = SelfMetrics(LiveState(config.targets))
        self.outcomes: list[str] = []

    async def __aenter__(self) -> Collector:
        self._http = await HttpClient(self.config.http).__aenter__()
        self._pool_cm = browser_pool(self.config, self.metrics)
        pool = await self._pool_cm.__aenter__()
        assert isinstance(pool, BrowserPool)
        self.poller = Poller(self.config, self._http, LiveState(self.config.targets), self.metrics,
                             lambda record: self.outcomes.append(record.outcome.value), browser=pool)  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pool_cm.__aexit__(None, None, None)
        await self._http.__aexit__(None, None, None)

    async def poll(self, i: int) -> str:
        return (await self.poller.poll(self.config.targets[i % TARGETS])).outcome.value

    async def run(self, pages: int, sample: Callable[[int], None]) -> float:
        for i in range(TARGETS):  # each target's context exists before the clock starts, as in service
            await self.poll(i)
        self.outcomes.clear()

        async def one(i: int) -> None:
            await self.poll(i)

        took = await in_flight(pages, one, sample)
        if set(self.outcomes) != {"ok"}:
            raise SystemExit(f"collector polls were not all ok: {sorted(set(self.outcomes))}")
        return took


# What the collector does per page beyond the bare loop, each addable to it alone (`--attribute`).
ADDITIONS = {
    "route": "the outbound guard's Python route handler on every request",
    "click": "a click on the video element",
    "content": "page.content() (the DOM serialised)",
    "listeners": "listeners on request, requestfinished and requestfailed",
}
# What it could do instead.
ALTERNATIVES = {
    "guard pattern": "the route handler only for IP-literal and localhost hosts (maybe_internal_pattern)",
    "page reuse": "each target's page kept and navigated again, not a new page per load",
}


async def _guard_route(route: Route) -> None:
    # What the pool's handler did per request before issue 9: a round trip through Python for each.
    host = (urlsplit(route.request.url).hostname or "").lower()
    if is_internal(host) and host != "127.0.0.1":  # the simulator is allowed
        await route.abort("blockedbyclient")
    else:
        await route.continue_()


async def bare_loop(sim: str, pages: int, additions: frozenset[str] = frozenset()) -> float:
    url = _share_url(sim)
    bodies: list[int] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=find_chromium(None), headless=True, args=LAUNCH_ARGS
        )
        contexts = [await browser.new_context() for _ in range(TARGETS)]
        for context in contexts:
            if "route" in additions:
                await context.route("**/*", _guard_route)
            if "guard pattern" in additions:
                await context.route(maybe_internal_pattern(frozenset({"127.0.0.1"})), _guard_route)
        idle: list[list[Page]] = [[] for _ in contexts]

        async def one(i: int) -> None:
            kept = idle[i % TARGETS]
            page = kept.pop() if kept else await contexts[i % TARGETS].new_page()
            if "listeners" in additions:
                in_flight: set[Request] = set()
                page.on("request", lambda request: in_flight.add(request))
                page.on("requestfinished", lambda request: in_flight.discard(request))
                page.on("requestfailed", lambda request: in_flight.discard(request))
            try:
                async with (
                    page.expect_response(lambda r: "/joinv2" in r.url) as joined,
                    page.expect_response(lambda r: "/more_items" in r.url) as bag,
                ):
                    await page.goto(url, wait_until="domcontentloaded")
                    if "click" in additions:
                        with suppress(PlaywrightError):
                            await page.click("video", timeout=10_000)
                for response in (await joined.value, await bag.value):
                    bodies.append(len(await response.body()))
                if "content" in additions:
                    await page.content()
            finally:
                if "page reuse" in additions:
                    kept.append(page)
                else:
                    await page.close()

        for i in range(TARGETS):
            await one(i)
        bodies.clear()
        took = await in_flight(pages, one, lambda _done: None)
        await browser.close()
    if len(bodies) != 2 * pages or not all(bodies):
        raise SystemExit("the bare loop lost responses")
    return took


async def attribute(sim: str, config: Config, pages: int, rounds: int) -> None:
    """The bare loop, the bare loop plus each addition alone, and the collector; rounds alternate."""
    variants: dict[str, Callable[[], Awaitable[float]]] = {"bare": lambda: bare_loop(sim, pages)}
    for name in [*ADDITIONS, *ALTERNATIVES]:
        variants[f"bare + {name}"] = lambda name=name: bare_loop(sim, pages, frozenset({name}))
    variants["bare + all four"] = lambda: bare_loop(sim, pages, frozenset(ADDITIONS))

    async def collector() -> float:
        async with Collector(config) as pool:
            return await pool.run(pages, lambda _done: None)

    variants["collector"] = collector
    took: dict[str, list[float]] = {name: [] for name in variants}
    loads = [os.getloadavg()[0]]
    for _ in range(rounds):
        for name, run in variants.items():
            took[name].append(await run())
        loads.append(os.getloadavg()[0])
    per_min = {name: pages / statistics.median(runs) * 60 for name, runs in took.items()}
    print(f"what each addition costs: {pages} pages per round, {IN_FLIGHT} in flight, {TARGETS} targets, "
          f"median of {rounds} alternating rounds; 1-min load {min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
    for name, rate in per_min.items():
        what = {**ADDITIONS, **ALTERNATIVES}.get(name.removeprefix("bare + "), "")
        print(f"  {name:22s} {rate:6.0f} pages/min {rate / per_min['bare']:6.2f}x  {what}")


async def set_fault(session: aiohttp.ClientSession, sim: str, on: bool) -> None:
    rules = [{"mode": "reset", "match": f"/session/{SESSION}/joinv2"}] if on else []
    async with session.post(f"{sim}/_sim/faults", json=rules) as resp:
        resp.raise_for_status()


async def fault_rounds(sim: str, config: Config) -> dict[str, list[float]]:
    """Wall seconds per poll, one at a time, clean and with joinv2 reset; rounds alternate."""
    times: dict[str, list[float]] = {"clean": [], "failed": []}
    expected = {"clean": "ok", "failed": "network_error"}
    async with aiohttp.ClientSession() as session, Collector(config) as collector:
        await collector.poll(0)
        for _ in range(FAULT_ROUNDS):
            for kind in ("clean", "failed"):
                await set_fault(session, sim, kind == "failed")
                for i in range(FAULT_POLLS):
                    started = time.perf_counter()
                    outcome = await collector.poll(i)
                    times[kind].append(time.perf_counter() - started)
                    if outcome != expected[kind]:
                        raise SystemExit(f"a {kind} poll ended {outcome}, not {expected[kind]}")
        await set_fault(session, sim, False)
    return times


def _print_memory_header() -> None:
    print(f"memory every {SAMPLE_EVERY} pages through the pool (recycle_after = {RECYCLE_AFTER}):")
    print(f"  {'pages':>6s} {'collector RSS':>14s} {'driver RSS':>11s} {'Chromium PSS':>13s}")


def _print_memory_row(pages: int, own: float, driver: float, chromium: float) -> None:
    print(f"  {pages:6d} {own:11.0f} MiB {driver:7.0f} MiB {chromium:9.0f} MiB", flush=True)


async def measure(rss_pages: int | None, attribution: tuple[int, int] | None) -> None:
    logging.getLogger("collector").setLevel(logging.ERROR)  # the fault rounds' expected failures
    async with simulator() as sim:
        config = bench_config(sim)
        if attribution:
            await attribute(sim, config, *attribution)
            return
        if rss_pages:
            _print_memory_header()  # row by row: a long run is worth reading before it ends
            async with Collector(config) as collector:
                _print_memory_row(0, *memory_mib())
                await collector.run(rss_pages, lambda done: _print_memory_row(done, *memory_mib()))
            return
        took: dict[str, list[float]] = {"collector": [], "bare": []}
        samples: list[tuple[int, float, float, float]] = []
        for r in range(ROUNDS):
            async with Collector(config) as collector:
                took["collector"].append(
                    await collector.run(
                        PAGES, lambda done, base=r * PAGES: samples.append((base + done, *memory_mib()))
                    )
                )
            took["bare"].append(await bare_loop(sim, PAGES))
        per_min = {name: PAGES / statistics.median(runs) * 60 for name, runs in took.items()}
        print(f"Shopee live through Chromium: {PAGES} pages per round, {IN_FLIGHT} in flight, "
              f"{TARGETS} targets, median of {ROUNDS} alternating rounds")  # fmt: skip
        print(f"{'collector (browser_pool + Poller.poll)':42s} {per_min['collector']:8.0f} pages/min")
        print(f"{'baseline: bare Playwright loop':42s} {per_min['bare']:8.0f} pages/min")
        print(f"{'ratio':42s} {per_min['collector'] / per_min['bare']:8.2f}x")
        times = await fault_rounds(sim, config)
        clean, failed = (statistics.median(times[k]) for k in ("clean", "failed"))
        print(f"wall time per poll, one at a time, median of {FAULT_POLLS * FAULT_ROUNDS}:")
        print(f"{'  joinv2 connection reset (network_error)':42s} {failed:8.3f} s")
        print(f"{'  baseline: clean poll (ok)':42s} {clean:8.3f} s")
        _print_memory_header()
        for row in samples:
            _print_memory_row(*row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__.splitlines()[0])
    parser.add_argument("--rss-pages", type=int, help="only the memory row, over this many pages")
    parser.add_argument(
        "--attribute",
        nargs=2,
        type=int,
        metavar=("PAGES", "ROUNDS"),
        help="only what each of the collector's additions to the bare loop costs",
    )
    args = parser.parse_args(argv)
    asyncio.run(measure(args.rss_pages, tuple(args.attribute) if args.attribute else None))


if __name__ == "__main__":
    main()
