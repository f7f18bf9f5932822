"""CPU per TikTok live poll end to end, against a bare aiohttp + orjson loop on the same endpoint.

The simulator runs in its own process (`collector simulate`, clock frozen while an account is live), so
only the client side is timed. The collector variant is the service's path for a live room: `Poller`
(limiter, `HttpFetcher` with retries, the adapter's parse, samples, live state and self-metrics) handing
each record to `BatchWriter.submit` with a spool (the database write is the writer row's business). The
baseline requests the same room/info URL with the same parameters and headers through one aiohttp
session and decodes the JSON with orjson. Both send the same number of requests at the same paced rate
with the same number in flight; rounds alternate and the medians of process CPU per request are printed,
with the median of each collector round's ratio to the bare round after it.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson

from collector.adapters import registered_adapters
from collector.config import Config, build_config
from collector.heap import startup_heap_frozen
from collector.http import HttpClient
from collector.metrics import LiveState, SelfMetrics
from collector.poller import Poller
from collector.spool import Spool
from collector.store import Store
from collector.writer import BatchWriter

ACCOUNT = "nongsanlaichau_official"  # live from before the frozen instant for hours (demo scenario)
TARGETS = 200
POLLS = 1500
RATE = 300.0  # requests per second, both variants
IN_FLIGHT = 16
ROUNDS = 7


@asynccontextmanager
async def simulator() -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "simulate", "--listen", "127.0.0.1:0", "--freeze-at", "60",
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            if not line:
                raise SystemExit("the simulator did not start")
            if match := re.search(r"listening on (http://\S+)", line):
                url = match.group(1)
        yield url
    finally:
        proc.terminate()
        await proc.wait()


def bench_config(sim: str) -> Config:
    targets = [
        {"name": f"live-{i}", "platform": "tiktok", "kind": "live", "account": ACCOUNT, "interval": "15s"}
        for i in range(TARGETS)
    ]
    platform = {
        "base_urls": {"web": f"{sim}/www.tiktok.com", "webcast": f"{sim}/webcast.tiktok.com"},
        "requests_per_second": 1e6,  # the pacing below sets the rate; the limiter only takes its slots
        "max_concurrency": IN_FLIGHT,
    }
    data = {"platforms": {"tiktok": platform}, "targets": targets}
    return build_config(data, source="bench", adapters=registered_adapters(), env={})


async def paced(one: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """POLLS calls of `one` started at RATE per second, at most IN_FLIGHT at once; (wall, CPU) seconds."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def call(i: int) -> None:
        async with gate:
            await one(i)

    wall, cpu = time.perf_counter(), time.process_time()
    tasks = []
    for i in range(POLLS):
        await asyncio.sleep(max(0.0, wall + i / RATE - time.perf_counter()))
        tasks.append(asyncio.create_task(call(i)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - wall, time.process_time() - cpu


async def through_collector(config: Config) -> tuple[float, float]:
    live = LiveState(config.targets)
    metrics = SelfMetrics(live)
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder), max_bytes=1 << 30)
        store = Store(f"sqlite+aiosqlite:///{folder}/unused.db")  # submit only: never flushed here
        writer = BatchWriter(store, metrics, flush_interval=60.0, batch_size=POLLS * 2,
                             pending_limit=POLLS * 2, raw_retention=3600.0, spool=spool)  # fmt: skip
        async with HttpClient(config.http) as http:
            poller = Poller(config, http, live, metrics, writer.submit)
            for target in config.targets:  # resolves each target's room once, as a running service has
                await poller.poll(target)
            targets = config.targets
            outcomes = []

            async def one(i: int) -> None:
                outcomes.append((await poller.poll(targets[i % len(targets)])).outcome.value)

            with startup_heap_frozen():  # as `collector run` polls
                took = await paced(one)
        spool.close()
        await store.close()
    if set(outcomes) != {"ok"}:
        raise SystemExit(f"collector polls were not all ok: {sorted(set(outcomes))}")
    return took


async def bare_loop(config: Config) -> tuple[float, float]:
    urls = config.platforms["tiktok"].base_urls
    web, webcast = urls["web"], urls["webcast"]
    base = {"aid": "1988", "app_name": "tiktok_web", "device_platform": "web_pc"}
    headers = {"Referer": f"{web}/", "Origin": web}
    async with aiohttp.ClientSession() as session:
        lookup = {**base, "uniqueId": ACCOUNT, "sourceType": "54"}
        async with session.get(f"{web}/api-live/user/room/", params=lookup, headers=headers) as resp:
            room = orjson.loads(await resp.read())["data"]["user"]["roomId"]
        params = {**base, "room_id": room}
        counts = []

        async def one(_i: int) -> None:
            async with session.get(f"{webcast}/webcast/room/info/", params=params, headers=headers) as resp:
                counts.append(orjson.loads(await resp.read())["data"]["user_count"])

        took = await paced(one)
    if len(counts) != POLLS:
        raise SystemExit("the bare loop lost requests")
    return took


async def measure() -> None:
    async with simulator() as sim:
        config = bench_config(sim)
        results: dict[str, list[tuple[float, float]]] = {"collector": [], "bare": []}
        for _ in range(ROUNDS):
            results["collector"].append(await through_collector(config))
            results["bare"].append(await bare_loop(config))
    cpu = {name: statistics.median(c for _, c in runs) / POLLS * 1000 for name, runs in results.items()}
    # Each collector round beside the bare round that follows it: a machine shared with other work
    # changes pace over minutes, and a pair sees the same pace where medians taken apart may not.
    paired = statistics.median(
        c / b for (_, c), (_, b) in zip(results["collector"], results["bare"], strict=True)
    )
    print(
        f"CPU per TikTok live poll ({POLLS:,} requests at {RATE:g}/s, {IN_FLIGHT} in flight, {TARGETS} targets)"
    )
    print(f"{'collector (poller … writer submit)':42s} {cpu['collector']:8.3f} ms CPU per poll")
    print(f"{'baseline: bare aiohttp + orjson':42s} {cpu['bare']:8.3f} ms CPU per request")
    print(f"{'ratio':42s} {cpu['collector'] / cpu['bare']:8.2f}x")
    print(f"{'ratio, median of the paired rounds':42s} {paired:8.2f}x")


def main() -> None:
    asyncio.run(measure())


if __name__ == "__main__":
    main()
