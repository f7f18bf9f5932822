"""What the fleet's shared politeness budget adds to each request start, next to the local limiter.

A request start through `HostLimiter.slot` with the budget in PostgreSQL (one autocommitted upsert on
the host's row, the database's clock, over a plain asyncpg connection) against the same limiter alone, in the same process; then three
budget handles taking turns on the same host at once (the row lock they queue on), one start at a time
each and eight at once each (a reservation then takes a block of turns for the starts waiting). The rate limit is
set so high that no start waits for its turn: what is timed is the bookkeeping, not the spacing.
Variants alternate round by round and the medians are printed. Needs Debian's postgresql package (a
throwaway server on 127.0.0.1 is started and removed).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from bench.postgres import fresh_databases, throwaway_postgres
from collector.fleet_budget import FleetBudget
from collector.limits import HostLimiter, HostRule
from collector.metrics import LiveState, SelfMetrics
from collector.store import Store

STARTS = 1_000
ROUNDS = 5
RULES = {"bench": HostRule(requests_per_second=1e9, max_concurrency=8)}


async def through(limiter: HostLimiter, count: int) -> None:
    for _ in range(count):
        async with limiter.slot("bench", "http://host.example/page"):
            pass


async def local(_url: str) -> tuple[float, float]:
    limiter = HostLimiter(RULES)
    return await timed(lambda: through(limiter, STARTS))


async def shared(url: str, handles: int, in_flight: int = 1) -> tuple[float, float]:
    budgets = [
        FleetBudget(url, SelfMetrics(LiveState([])), lease=30.0, instance=f"bench-{n}")
        for n in range(handles)
    ]
    limiters = [HostLimiter(RULES, shared=b) for b in budgets]
    for budget in budgets:
        await budget.start()
    await asyncio.gather(*(through(limiter, 10) for limiter in limiters))  # connections opened
    try:
        each = STARTS // (handles * in_flight)
        return await timed(
            lambda: asyncio.gather(*(through(lim, each) for lim in limiters for _ in range(in_flight)))
        )
    finally:
        for budget in budgets:
            await budget.close()


async def timed(run: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    return (time.perf_counter() - wall) / STARTS, (time.process_time() - cpu) / STARTS


def main() -> None:
    with throwaway_postgres("fleet budget rows") as server:
        if server is None:
            return
        url = fresh_databases(server, "bench_fleet")()

        async def migrate() -> None:
            store = Store(url)
            await store.prepare()
            await store.close()

        asyncio.run(migrate())
        variants: dict[str, Callable[[str], Awaitable[tuple[float, float]]]] = {
            "baseline: local limiter": local,
            "PostgreSQL, 1 replica": lambda u: shared(u, 1),
            "PostgreSQL, 3 replicas": lambda u: shared(u, 3),
            "PostgreSQL, 3 x 8 at once": lambda u: shared(u, 3, 8),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(ROUNDS):
            for name, variant in variants.items():
                results[name].append(asyncio.run(variant(url)))
        print(f"politeness budget per request start ({STARTS:,} starts, median of {ROUNDS} rounds)")
        for name, rounds in results.items():
            wall = statistics.median(w for w, _ in rounds)
            cpu = statistics.median(c for _, c in rounds)
            print(f"  {name:26s} {wall * 1e6:9.1f} µs wall {cpu * 1e6:9.1f} µs CPU (this process)")


if __name__ == "__main__":
    main()
