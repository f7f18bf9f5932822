"""Backoff, circuit breaker, host limiter, proxy rotation and the outbound guard, each on its own."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp import web

from collector.backoff import CircuitBreaker, CircuitState, TargetBackoff
from collector.clock import ManualClock
from collector.config import HttpSettings
from collector.http import GuardedResolver, HttpClient, HttpFetcher, OutboundGuard, OutboundRefusedError
from collector.limits import HostLimiter, HostRule, ProxyRotation
from collector.outcomes import Outcome, RateLimited, Refused, Transient


def test_backoff_doubles_per_failure_up_to_the_cap_and_resets_on_success() -> None:
    clock = ManualClock()
    backoff = TargetBackoff(max_backoff=100, rng=random.Random(1), clock=clock)
    delays = [backoff.record("t", 10, Outcome.TIMEOUT, None) for _ in range(6)]
    assert delays[0] == 0  # one failure keeps the normal cadence
    for streak, delay in enumerate(delays[1:], start=2):
        assert 0.8 * min(100, 10 * 2 ** (streak - 1)) <= delay <= min(100, 10 * 2 ** (streak - 1))
    assert backoff.wait("t") == delays[-1]  # counted from the last failure
    clock.jump(delays[-1] - 1)
    assert backoff.wait("t") == pytest.approx(1)
    clock.jump(1)
    assert backoff.wait("t") == 0 and backoff.failures("t") == 6
    assert backoff.record("t", 10, Outcome.OK, None) == 0
    assert backoff.wait("t") == 0 and backoff.failures("t") == 0


def test_backoff_jitter_stays_within_its_band_and_varies() -> None:
    backoff = TargetBackoff(max_backoff=1000, rng=random.Random(2), clock=ManualClock())
    second_failures = []
    for _ in range(200):
        backoff.record("t", 10, Outcome.TIMEOUT, None)
        second_failures.append(backoff.record("t", 10, Outcome.TIMEOUT, None))
        backoff.record("t", 10, Outcome.OK, None)
    assert all(16 <= delay <= 20 for delay in second_failures)
    assert min(second_failures) < 16.5 and max(second_failures) > 19.5


def test_retry_after_is_a_floor_for_the_backoff() -> None:
    clock = ManualClock()
    backoff = TargetBackoff(max_backoff=5, clock=clock)
    assert backoff.record("t", 10, Outcome.RATE_LIMITED, 42) == 42
    clock.jump(40)
    assert backoff.wait("t") == 2


def test_circuit_opens_after_consecutive_failures_probes_once_and_closes_on_success() -> None:
    changes: list[tuple[str, CircuitState]] = []
    clock = ManualClock()
    breaker = CircuitBreaker(
        {"tiktok": (3, 20.0)}, on_change=lambda p, s: changes.append((p, s)), clock=clock
    )
    for _ in range(2):
        breaker.record("tiktok", Outcome.NETWORK_ERROR)
    assert breaker.wait("tiktok") == 0
    breaker.record("tiktok", Outcome.TIMEOUT)
    assert breaker.state("tiktok") is CircuitState.OPEN
    assert breaker.wait("tiktok") == 20
    clock.jump(19.5)
    assert breaker.wait("tiktok") == 0.5 and breaker.state("tiktok") is CircuitState.OPEN
    clock.jump(0.5)
    assert breaker.wait("tiktok") == 0  # the half-open probe
    assert breaker.state("tiktok") is CircuitState.HALF_OPEN
    assert breaker.wait("tiktok") == 1.0  # only one probe at a time: others ask again in a second
    breaker.record("tiktok", Outcome.OK)
    assert breaker.state("tiktok") is CircuitState.CLOSED
    assert [s for _, s in changes] == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_a_failed_probe_reopens_the_circuit_and_page_problems_do_not_count() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker({"fb": (2, 5.0)}, clock=clock)
    breaker.record("fb", Outcome.BLOCKED)
    breaker.record("fb", Outcome.PARSE_FAILURE)  # the platform answered: not platform trouble
    breaker.record("fb", Outcome.BLOCKED)
    assert breaker.state("fb") is CircuitState.CLOSED
    breaker.record("fb", Outcome.BLOCKED)
    assert breaker.state("fb") is CircuitState.OPEN
    clock.jump(7.0)
    assert breaker.wait("fb") == 0
    breaker.record("fb", Outcome.RATE_LIMITED)
    assert breaker.state("fb") is CircuitState.OPEN
    assert breaker.wait("fb") == 5.0  # a full wait again, counted from the failed probe


async def test_limiter_spaces_requests_caps_concurrency_and_honours_retry_after() -> None:
    clock = ManualClock()
    waits: list[float] = []
    limiter = HostLimiter(
        {"p": HostRule(requests_per_second=20, max_concurrency=2)}, lambda _p, s: waits.append(s), clock=clock
    )
    starts: list[float] = []
    in_flight = peak = 0

    async def request() -> None:
        nonlocal in_flight, peak
        async with limiter.slot("p", "http://h/x"):
            starts.append(clock.monotonic())
            in_flight += 1
            peak = max(peak, in_flight)
            await clock.sleep(0.1)
            in_flight -= 1

    await clock.run(asyncio.gather(*(request() for _ in range(6))))
    assert peak == 2
    # 0.05 s apart; from the third on each waits for a slot, which frees just as the gap has passed.
    assert starts == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    assert waits == pytest.approx([0.05])  # only the second waited on spacing
    limiter.block("p", "http://h/y", 3.0)
    before = clock.monotonic()
    entered = await clock.run(_enter(limiter, "http://h/z"))
    assert entered == before + 3.0
    # Another host of the same platform is not blocked.
    assert await clock.run(_enter(limiter, "http://other/z")) == entered


async def test_a_cancelled_request_never_keeps_a_host_slot() -> None:
    limiter = HostLimiter({"p": HostRule(requests_per_second=1e6, max_concurrency=1)})
    entered: list[str] = []

    async def request(name: str, hold: asyncio.Event) -> None:
        async with limiter.slot("p", "http://h/x"):
            entered.append(name)
            await hold.wait()

    release = asyncio.Event()
    first = asyncio.create_task(request("first", release))
    waiting = asyncio.create_task(request("cancelled while waiting", release))
    woken = asyncio.create_task(request("cancelled once woken", release))
    last = asyncio.create_task(request("last", asyncio.Event()))
    await asyncio.sleep(0.01)
    waiting.cancel()
    first.cancel()  # leaves its slot: the next waiter is woken...
    await asyncio.sleep(0)
    woken.cancel()  # ...and cancelled before it runs: the wake must go on to the last one
    await asyncio.wait_for(asyncio.wait({last}, timeout=1.0), 2.0)
    assert entered == ["first", "last"]
    last.cancel()
    await asyncio.gather(first, waiting, woken, last, return_exceptions=True)
    async with asyncio.timeout(1.0), limiter.slot("p", "http://h/x"):
        pass  # every slot came back


def test_proxy_rotation_moves_to_the_next_proxy() -> None:
    rotation = ProxyRotation({"tiktok": ("http://a:1", "http://b:2"), "shopee": ()})
    assert rotation.current("tiktok") == "http://a:1"
    assert rotation.rotate("tiktok")
    assert rotation.current("tiktok") == "http://b:2"
    assert rotation.rotate("tiktok") and rotation.current("tiktok") == "http://a:1"
    assert rotation.current("shopee") is None and not rotation.rotate("shopee")
    # Two polls banned on the same proxy move on once when they say which proxy they used.
    assert rotation.rotate("tiktok", past=2) and not rotation.rotate("tiktok", past=2)
    assert rotation.current("tiktok") == "http://b:2"


def test_guard_allows_only_platform_hosts_and_internal_addresses_only_where_configured() -> None:
    guard = OutboundGuard(["https://www.tiktok.com", "http://127.0.0.1:8900/www.tiktok.com"])
    guard.check("https://www.tiktok.com/api-live/user/room/")
    guard.check("http://127.0.0.1:8900/anything")
    for url in ("https://evil.example.com/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(Refused):
            guard.check(url)


async def test_a_public_name_resolving_to_an_internal_address_is_refused() -> None:
    resolver = GuardedResolver(internal_ok=frozenset())
    with pytest.raises(OutboundRefusedError):
        await resolver.resolve("localhost", 80)
    allowed = GuardedResolver(internal_ok=frozenset({"localhost"}))
    assert await allowed.resolve("localhost", 80)
    await resolver.close()
    await allowed.close()


@pytest.fixture
async def redirecting_server():  # type: ignore[no-untyped-def]
    calls: dict[str, int] = {"flaky": 0}

    async def foreign(_r: web.Request) -> web.Response:
        raise web.HTTPFound("http://evil.example.com/steal")

    async def internal(_r: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.1.2.3/")

    async def same(_r: web.Request) -> web.Response:
        raise web.HTTPFound("/final")

    async def final(_r: web.Request) -> web.Response:
        return web.json_response({"ok": 1})

    async def flaky(_r: web.Request) -> web.Response:
        calls["flaky"] += 1
        return web.Response(status=502) if calls["flaky"] < 3 else web.json_response({"ok": 2})

    async def limited(_r: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "1"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        # A big page arriving in pieces, as real 0.5-2 MiB pages do.
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        for _ in range(20):
            await response.write(b"x" * 100_000)
            await asyncio.sleep(0.005)
        await response.write_eof()
        return response

    app = web.Application()
    for path, handler in [
        ("/foreign", foreign),
        ("/internal", internal),
        ("/same", same),
        ("/final", final),
        ("/flaky", flaky),
        ("/limited", limited),
        ("/chunked", chunked),
    ]:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", calls
    await runner.cleanup()


async def test_redirects_are_followed_only_within_the_guard(redirecting_server) -> None:  # type: ignore[no-untyped-def]
    base, _calls = redirecting_server
    settings = HttpSettings(timeout=5, retries=0)
    async with HttpClient(settings, OutboundGuard([base])) as client:
        fetcher = HttpFetcher(client, "p")
        assert (await fetcher.get(f"{base}/same")).url == f"{base}/final"
        with pytest.raises(Refused):
            await fetcher.get(f"{base}/foreign")
        with pytest.raises(Refused):
            await fetcher.get(f"{base}/internal")


async def test_transient_errors_are_retried_with_backoff_and_429_is_not(redirecting_server) -> None:  # type: ignore[no-untyped-def]
    base, calls = redirecting_server
    retries: list[int] = []
    limiter = HostLimiter({"p": HostRule(100, 4)})
    async with HttpClient(HttpSettings(timeout=5, retries=2, retry_backoff=0.01)) as client:
        fetcher = HttpFetcher(client, "p", limiter, on_retry=lambda: retries.append(1))
        assert (await fetcher.get(f"{base}/flaky")).status == 200
        assert calls["flaky"] == 3 and len(retries) == 2
        with pytest.raises(RateLimited) as caught:
            await fetcher.get(f"{base}/limited")
        assert caught.value.retry_after == 1 and len(retries) == 2
        assert limiter.blocked_for("p", f"{base}/other") > 0.5
    calls["flaky"] = 0
    async with HttpClient(HttpSettings(timeout=5, retries=0)) as strict:
        once = HttpFetcher(strict, "p")
        with pytest.raises(Transient):
            await once.get(f"{base}/flaky")
    assert calls["flaky"] == 1 and [r.status for r in once.responses] == [502]


async def test_a_body_arriving_in_chunks_is_read_whole(redirecting_server) -> None:  # type: ignore[no-untyped-def]
    base, _calls = redirecting_server
    async with HttpClient(HttpSettings(timeout=5)) as client:
        raw = await HttpFetcher(client, "p").get(f"{base}/chunked")
    assert len(raw.body) == 2_000_000


async def test_a_retry_after_arriving_while_a_request_waits_is_still_honoured() -> None:
    clock = ManualClock()
    limiter = HostLimiter({"p": HostRule(requests_per_second=2.5, max_concurrency=4)}, clock=clock)
    assert await clock.run(_enter(limiter, "http://h/a")) == 0
    waiter = asyncio.create_task(_enter(limiter, "http://h/c"))
    await clock.advance(0.1)  # the waiter sleeps for the 0.4 s spacing...
    limiter.block("p", "http://h/b", 1.0)  # ...when an in-flight request gets a 429
    assert limiter.blocked_for("p", "http://h/c") == 1.0
    assert await clock.run(waiter) == pytest.approx(1.1)  # re-checked on waking, not let through at 0.4
    limiter.block("p", "http://other-host/x", 2.0)
    assert limiter.platform_blocked_for("p") == 2.0
    clock.jump(0.5)
    assert limiter.platform_blocked_for("p") == 1.5 and limiter.blocked_for("p", "http://h/c") == 0
    assert limiter.platform_blocked_for("another-platform") == 0


async def _enter(limiter: HostLimiter, url: str) -> float:
    async with limiter.slot("p", url):
        return limiter.clock.monotonic()
