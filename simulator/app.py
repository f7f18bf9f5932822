"""Simulator application: platform routes, ground truth, a request log, and a runnable server."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from simulator import facebook, lazada, sendo, shopee, shopee_open, tiki, tiktok, tiktok_shop
from simulator.clock import SimClock
from simulator.faults import FaultRule, inject_faults
from simulator.faults import register as register_faults
from simulator.keys import CLOCK, REQUEST_LOG, SCENARIO, json_response
from simulator.scenario import SCENARIOS, Scenario

# Each platform module offers NAME, register(app) and truth(scenario, elapsed, epoch), and DEMO_ENV
# where the demo needs credentials; a new platform (simulator/shopee.py, ...) only needs adding here.
PLATFORMS = (tiktok, tiktok_shop, shopee, shopee_open, facebook, tiki, sendo, lazada)
REQUEST_LOG_SIZE = 10_000
SIM_PREFIX = "/_sim/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every platform request (not /_sim/ ones) and its status so tests can check timing."""
    if request.path.startswith(SIM_PREFIX):
        return await handler(request)
    entry = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "time": time.time(),  # wall clock: what a collector's scheduler runs on
        "scenario_time": request.app[CLOCK].now(),
        "status": 0,  # stays 0 when the connection was dropped
    }
    request.app[REQUEST_LOG].append(entry)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        entry["status"], entry["done"] = exc.status, time.time()
        raise
    entry["status"], entry["done"] = response.status, time.time()
    return response


async def handle_truth(request: web.Request) -> web.Response:
    """GET /_sim/truth: every platform's ground truth at one instant."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    elapsed = clock.elapsed()
    body: dict = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "now": clock.epoch() + elapsed,
        "elapsed": elapsed,
    }
    for platform in PLATFORMS:
        body[platform.NAME] = platform.truth(scenario, elapsed, clock.epoch())
    return json_response(body)


async def handle_clock(request: web.Request) -> web.Response:
    """POST /_sim/clock {"freeze_at": seconds}: hold (or move) the scenario clock; null lets it run."""
    clock = request.app[CLOCK]
    payload = await request.json()
    if "freeze_at" in payload:
        clock.freeze_at = None if payload["freeze_at"] is None else float(payload["freeze_at"])
    return json_response({"elapsed": clock.elapsed(), "now": clock.now()})


async def handle_requests(request: web.Request) -> web.Response:
    """GET /_sim/requests[?since=UNIX]: the logged platform requests, oldest first."""
    since = float(request.query.get("since", "-inf"))
    entries = [entry for entry in request.app[REQUEST_LOG] if entry["time"] >= since]
    return json_response({"requests": entries})


async def handle_clear_requests(request: web.Request) -> web.Response:
    """DELETE /_sim/requests: forget logged requests (between test phases)."""
    request.app[REQUEST_LOG].clear()
    return json_response({"cleared": True})


def build_app(
    scenario: Scenario,
    clock: SimClock,
    *,
    request_log_size: int = REQUEST_LOG_SIZE,
    faults: list[FaultRule] | None = None,
) -> web.Application:
    """The simulator app serving every platform's routes for one scenario and clock."""
    # Requests are logged before faults apply, so tests see every attempt, answered or not.
    app = web.Application(middlewares=[log_requests, inject_faults])
    register_faults(app, list(faults or ()))
    app[SCENARIO] = scenario
    app[CLOCK] = clock
    app[REQUEST_LOG] = deque(maxlen=request_log_size)
    for platform in PLATFORMS:
        platform.register(app)
    app.router.add_get(SIM_PREFIX + "truth", handle_truth)
    app.router.add_get(SIM_PREFIX + "requests", handle_requests)
    app.router.add_delete(SIM_PREFIX + "requests", handle_clear_requests)
    app.router.add_post(SIM_PREFIX + "clock", handle_clock)
    return app


def demo_env() -> dict[str, str]:
    """The environment variables the demo configuration names for its credentials: values only this
    simulator accepts."""
    env: dict[str, str] = {}
    for platform in PLATFORMS:
        env.update(getattr(platform, "DEMO_ENV", {}))
    return env


def base_url(host: str, port: int) -> str:
    """http://HOST:PORT, bracketing IPv6 literals."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    host: str,
    port: int,
    *,
    scenario: str = "demo",
    seed: int = 1,
    speed: float = 1.0,
    freeze_at: float | None = None,
    start: float | None = None,
    faults: list[FaultRule] | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the simulator until cancelled; port 0 binds a free port, reported via `ready`."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    clock = SimClock(speed=speed, freeze_at=freeze_at, start=start)
    runner = web.AppRunner(build_app(SCENARIOS[scenario](seed), clock, faults=faults), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]  # the real port, also when asked for port 0
        url = base_url(host, bound_port)
        if ready is not None:
            ready(url)
        else:
            print(f"simulator listening on {url}", flush=True)
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
