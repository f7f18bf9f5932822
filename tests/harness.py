"""Helpers for tests that run the real CLI against the real simulator in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.app import build_app
from simulator.clock import SimClock
from simulator.scenario import Scenario

CLI = [sys.executable, "-m", "collector"]

DEMO_TARGETS = """
[[targets]]
name = "lai-chau-shop"
platform = "tiktok"
kind = "live"
account = "shop_vn"
campaign = "mega-livestream-lai-chau-2025"

[[targets]]
name = "nongsan-lai-chau"
platform = "tiktok"
kind = "live"
account = "nongsanlaichau_official"

[[targets]]
name = "offline-shop"
platform = "tiktok"
kind = "live"
account = "offline_shop"

[[targets]]
name = "age-restricted-room"
platform = "tiktok"
kind = "live"
account = "adult_room_vn"

[[targets]]
name = "ghost"
platform = "tiktok"
kind = "live"
account = "ghost_user"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def simulator(*args: str) -> Iterator[str]:
    """Run `collector simulate` on a free port; yields its base URL."""
    proc = subprocess.Popen(
        [*CLI, "simulate", "--listen", "127.0.0.1:0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        url = None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
            if not line and proc.poll() is not None:
                break
        assert url, "simulator did not start"
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def truth(sim_url: str) -> dict:
    status, body = http_get(f"{sim_url}/_sim/truth")
    assert status == 200
    return json.loads(body)


def write_config(
    path: Path,
    *,
    database_url: str,
    sim_url: str,
    metrics_port: int,
    targets: str = DEMO_TARGETS,
    fleet_lease: float | None = None,
) -> Path:
    """A config polling the simulator; with `fleet_lease`, a fleet replica holding leases that long."""
    fleet = f'[fleet]\nenabled = true\nlease = "{fleet_lease:g}s"\n' if fleet_lease is not None else ""
    path.write_text(
        f"""
[collector]
database_url = "{database_url}"
spool_dir = "{path.parent / "spool"}"
metrics_listen = "127.0.0.1:{metrics_port}"
default_interval = "1s"
flush_interval = "200ms"
shutdown_grace = "5s"
{fleet}
[http]
timeout = "3s"

[platforms.tiktok]
base_urls = {{ web = "{sim_url}/www.tiktok.com", webcast = "{sim_url}/webcast.tiktok.com" }}
min_interval = "1s"
requests_per_second = 50.0
{targets}
""",
        encoding="utf-8",
    )
    return path


def run_cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in (env or os.environ).items() if k != "COLLECTOR_DATABASE_URL"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


@contextmanager
def service(
    config: Path, *, env: dict[str, str] | None = None, log_level: str = "info"
) -> Iterator[subprocess.Popen[str]]:
    """`collector run` in the background; stopped with SIGTERM if the test did not stop it."""
    proc = subprocess.Popen(
        [*CLI, "--log-level", log_level, "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def scrape(port: int) -> str:
    """The service's /metrics, or "" while it is not listening (yet)."""
    try:
        return http_get(f"http://127.0.0.1:{port}/metrics")[1]
    except OSError:
        return ""


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the first series of `name` whose labels include `labels`."""
    for line in exposition.splitlines():
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def wait_for(predicate, timeout: float, interval: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def polled_since(port: int, names: list[str], since: float | dict[str, float]) -> dict[str, float] | None:
    """Each target's last successful poll once every one ended after `since` (one instant, or one per
    target); None until then."""
    body = scrape(port)
    last = {n: metric_value(body, "collector_last_success_timestamp_seconds", target=n) or 0 for n in names}
    after = since if isinstance(since, dict) else dict.fromkeys(names, since)
    return last if all(last[n] > after[n] for n in names) else None


def wait_for_polls_started_after(port: int, names: list[str], since: float, timeout: float = 60) -> bool:
    """Every target has finished a poll that started after `since`, so what it stored was served after it.

    A poll that merely ends after `since` may have read its page before (a browser poll takes seconds on
    a busy machine), and only the end is exposed; but a target's polls never overlap, so the poll after
    the first one to end after `since` began after it."""
    first = wait_for(lambda: polled_since(port, names, since), timeout, interval=0.5)
    return bool(first) and bool(wait_for(lambda: polled_since(port, names, first), timeout, interval=0.5))


@asynccontextmanager
async def simulator_in_process(scenario: Scenario, clock: SimClock) -> AsyncIterator[str]:
    """The simulator app on a free loopback port of this event loop; yields its base URL."""
    server = TestServer(build_app(scenario, clock))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


class ForwardProxy:
    """A plain-HTTP forward proxy; a banned one answers 403 like a platform blocking its address."""

    def __init__(self, banned: bool) -> None:
        self.banned = banned
        self.seen: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(str(request.url))
        if self.banned:
            return web.Response(status=403, text="Access denied")
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(request.method, str(request.url), data=await request.read()) as upstream,
        ):
            return web.Response(
                status=upstream.status, body=await upstream.read(), content_type=upstream.content_type
            )


@contextmanager
def proxies(*banned: bool) -> Iterator[list[ForwardProxy]]:
    """Run forward proxies in a thread of their own, so the test can drive subprocesses meanwhile."""
    servers = [ForwardProxy(b) for b in banned]
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        runners = []
        for server in servers:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", server.handle)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            runners.append(runner)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for runner in runners:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield servers
    finally:
        stop.set()
        thread.join(10)
