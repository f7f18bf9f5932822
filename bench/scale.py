"""One instance at event scale: N TikTok live targets every 15 s, scraped every 15 s.

The service's parts as `collector run` wires them (scheduler, poller, writer with its spool into SQLite,
the /metrics listener), in this process, against the simulator in its own process. Every 15 s `curl`
(another process) fetches the whole /metrics page. The schedule lag is the scheduler's own (how late each
poll started after it was due, `collector_schedule_lag_seconds`), after a warm-up; polls due but not
started show as polls/s short of those due. Printed: polls/s, p50/p99/max lag, the cores of this process
and of the simulator, each with its run-queue wait (seconds per second its event loop was ready to run
but had no core: on a shared machine that, not the code, can be what holds a process back), this
process's peak RSS and the writer's backlog (records in memory and spool) at the end.
There is no baseline to alternate with: the row answers "does one instance keep up".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.fleet import cpu_seconds, runqueue_wait_seconds
from bench.poll import ACCOUNT, simulator
from collector.adapters import registered_adapters
from collector.config import Config, build_config
from collector.heap import startup_heap_frozen
from collector.http import HttpClient
from collector.metrics import LiveState, SelfMetrics, start_metrics_server
from collector.poller import Poller
from collector.scheduler import Scheduler
from collector.spool import Spool
from collector.store import Store
from collector.writer import BatchWriter

INTERVAL = 15.0
WARMUP = 30.0  # the first polls (room lookups, the first-poll spread) are not the steady state
DURATION = 60.0
SIZES = (10_000, 20_000)


def scale_config(sim: str, folder: Path, targets: int, port: int) -> Config:
    data = {
        "collector": {
            "database_url": f"sqlite+aiosqlite:///{folder}/scale.db",
            "spool_dir": str(folder / "spool"),
            "metrics_listen": f"127.0.0.1:{port}",
            "jitter": 0,
            "max_concurrency": 256,
        },
        "platforms": {
            "tiktok": {
                "base_urls": {"web": f"{sim}/www.tiktok.com", "webcast": f"{sim}/webcast.tiktok.com"},
                "requests_per_second": 5000.0,
                "max_concurrency": 256,
            }
        },
        "targets": [
            {
                "name": f"live-{i}",
                "platform": "tiktok",
                "kind": "live",
                "account": ACCOUNT,
                "interval": f"{INTERVAL:g}s",
            }
            for i in range(targets)
        ],
    }
    return build_config(data, source="bench", adapters=registered_adapters(), env={})


class Usage:
    """CPU seconds of a process (all its threads) and run-queue wait of its main thread (the event loop)
    since the mark."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu, self.wait = cpu_seconds(pid), runqueue_wait_seconds(pid)

    def per_second(self, seconds: float) -> str:
        cpu, wait = cpu_seconds(self.pid) - self.cpu, runqueue_wait_seconds(self.pid) - self.wait
        return f"{cpu / seconds:4.2f} cores (run-queue wait {wait / seconds:4.2f})"


def simulator_pid() -> int:
    """The `collector simulate` child of this process."""
    for line in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
        if b"simulate" in Path(f"/proc/{line}/cmdline").read_bytes():
            return int(line)
    raise SystemExit("the simulator process is not a child of this one")


async def scrape_every(url: str, stop: asyncio.Event, took: list[float]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        proc = await asyncio.create_subprocess_exec("curl", "-sf", "-o", "/dev/null", url)
        if await proc.wait() != 0:
            raise SystemExit(f"scrape of {url} failed")
        took.append(time.perf_counter() - began)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL)


async def one_size(sim: str, sim_pid: int, size: int, port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = scale_config(sim, folder, size, port)
        targets = config.active_targets()
        live = LiveState(targets)
        metrics = SelfMetrics(live)
        store = Store(config.collector.database_url, targets)
        await store.prepare()
        spool = Spool(folder / "spool", max_bytes=1 << 32)
        c = config.collector
        writer = BatchWriter(store, metrics, flush_interval=c.flush_interval, batch_size=c.batch_size,
                             pending_limit=c.pending_limit, raw_retention=c.raw_retention, spool=spool)  # fmt: skip
        lags: list[float] = []
        since = until = float("inf")
        async with HttpClient(config.http) as http:
            poller = Poller(config, http, live, metrics, writer.submit)

            def lag(seconds: float) -> None:
                if since <= time.monotonic() < until:
                    lags.append(seconds)

            scheduler = Scheduler(targets, poller.poll, max_concurrency=c.max_concurrency, jitter=0.0,
                                  on_skip=lambda t: metrics.skipped.labels(t.name).inc(), hold_off=poller.hold_off,
                                  on_lag=lag)  # fmt: skip
            server = await start_metrics_server(c.metrics_listen, metrics, lambda: None, writer.readiness)
            with startup_heap_frozen():  # as `collector run` polls
                stop, scrapes = asyncio.Event(), []
                tasks = [
                    asyncio.create_task(writer.run()),
                    asyncio.create_task(scheduler.run(stop)),
                    asyncio.create_task(scrape_every(f"http://{c.metrics_listen}/metrics", stop, scrapes)),
                ]
                await asyncio.sleep(WARMUP)
                since, wall = time.monotonic(), time.perf_counter()
                until = since + DURATION
                usage = {"collector": Usage(os.getpid()), "simulator": Usage(sim_pid)}
                await asyncio.sleep(DURATION)
                took = time.perf_counter() - wall
                cores = ", ".join(f"{name} {u.per_second(took)}" for name, u in usage.items())
                backlog = len(writer.pending) + spool.depth
                stop.set()
                await asyncio.gather(tasks[1], tasks[2])
                await scheduler.drain(5.0)
            tasks[0].cancel()
            await writer.flush(time.monotonic() + 30)
            await server.cleanup()
        spool.close()
        await store.close()
    lags.sort()
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")  # noqa: E731
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{size:>6,} targets: {len(lags) / DURATION:6.0f} polls/s of {size / INTERVAL:.0f} due, lag p50 {p(0.5):5.2f} s p99 {p(0.99):5.2f} s "
          f"max {lags[-1] if lags else 0:5.2f} s, {cores}, peak RSS {rss:4.0f} MB, "
          f"backlog at the end {backlog:,} records, /metrics fetch {statistics.median(scrapes):.2f} s")  # fmt: skip


async def measure(sizes: tuple[int, ...]) -> None:
    print(f"one instance, TikTok live targets every {INTERVAL:g} s, /metrics every {INTERVAL:g} s, "
          f"measured for {DURATION:g} s after {WARMUP:g} s")  # fmt: skip
    async with simulator() as sim:
        sim_pid = simulator_pid()
        for size in sizes:
            with socket.socket() as probe:  # a free port for the /metrics listener
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            await one_size(sim, sim_pid, size, port)


def main() -> None:
    sizes = tuple(int(a) for a in sys.argv[1:]) or SIZES
    asyncio.run(measure(sizes))


if __name__ == "__main__":
    main()
