"""The fleet's shared politeness budget: several FleetBudget handles in one process, one real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator

import pytest

from collector.backoff import CircuitBreaker, CircuitState
from collector.fleet_budget import FleetBudget
from collector.jobs import JobBook, utcnow
from collector.limits import HostLimiter, HostRule, ProxyRotation
from collector.metrics import LiveState, SelfMetrics
from collector.outcomes import Outcome
from collector.store import Store
from tests.harness import free_port
from tests.postgres import PostgresServer

RULES = {"p": HostRule(requests_per_second=20.0, max_concurrency=4)}
GAP = 1 / 20.0
PROXIES = {"p": ("http://a:1", "http://b:2", "http://c:3")}


class Replica:
    """What one `collector run` holds of the budget: the shared handle and the local objects it feeds."""

    def __init__(
        self, url: str, name: str, rules: dict[str, HostRule] = RULES, budget: type[FleetBudget] = FleetBudget
    ) -> None:
        self.metrics = SelfMetrics(LiveState([]))
        self.budget = budget(url, self.metrics, lease=30.0, instance=name)
        self.limiter = HostLimiter(rules, shared=self.budget)
        self.breaker = CircuitBreaker({"p": (2, 30.0)}, on_open=self.budget.publish_open)
        self.proxies = ProxyRotation(PROXIES)
        self.budget.follow(self.limiter, self.breaker, self.proxies)

    def counter(self, name: str) -> float:
        return self.metrics.registry.get_sample_value(name, {"platform": "p"}) or 0.0


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[Replica]]:
    store = Store(postgres_url)
    await store.prepare()
    await store.close()
    fleet = [Replica(postgres_url, f"replica-{i}") for i in range(3)]
    for replica in fleet:
        await replica.budget.start()
    yield fleet
    for replica in fleet:
        await replica.budget.close()


async def starts(replica: Replica, count: int, stamps: list[float]) -> None:
    for _ in range(count):
        async with replica.limiter.slot("p", "http://h/x"):
            stamps.append(time.monotonic())


@pytest.mark.integration
async def test_spacing_holds_across_replicas(replicas: list[Replica]) -> None:
    stamps: list[float] = []
    await asyncio.gather(*(starts(r, 8, stamps) for r in replicas))
    stamps.sort()
    assert len(stamps) == 24
    # Turns are GAP apart on the database's clock and no start comes before its turn, so the k-th start
    # is at least k gaps after the first turn. A start may come late (a busy machine), which only the
    # first one's lateness can hide: that is the tolerance, two gaps.
    for k, stamp in enumerate(stamps):
        assert stamp - stamps[0] >= (k - 2) * GAP, (k, [round(s - stamps[0], 3) for s in stamps])
    # Three limiters alone would each start at their own pace: the others' turns made them wait.
    assert sum(r.counter("collector_fleet_budget_waits_total") for r in replicas) >= 20


class CountedBudget(FleetBudget):
    reservations = 0  # over every handle: what the database was asked

    async def reserve(self, platform: str, host: str, gap: float, turns: int = 1) -> float | None:
        CountedBudget.reservations += 1
        return await super().reserve(platform, host, gap, turns)


@pytest.mark.integration
async def test_a_busy_host_takes_its_turns_in_blocks(postgres_url: str) -> None:
    """Starts waiting together on one replica share one reservation: a database round trip per block."""
    store = Store(postgres_url)
    await store.prepare()
    await store.close()
    gap = 1 / 200.0
    wide = {"p": HostRule(requests_per_second=200.0, max_concurrency=48)}
    fleet = [Replica(postgres_url, f"wide-{i}", wide, CountedBudget) for i in range(3)]
    for replica in fleet:
        await replica.budget.start()
    try:
        stamps: list[float] = []
        await asyncio.gather(*(starts(r, 1, stamps) for r in fleet for _ in range(16)))
    finally:
        for replica in fleet:
            await replica.budget.close()
    stamps.sort()
    assert len(stamps) == 48
    assert CountedBudget.reservations < 48 / 2, CountedBudget.reservations
    # Blocks of different replicas never overlap: the k-th start is at least k gaps after the first
    # turn, less the first one's lateness (two gaps). Overlapping blocks would start two per gap.
    for k, stamp in enumerate(stamps):
        assert stamp - stamps[0] >= (k - 2) * gap, (k, [round(s - stamps[0], 4) for s in stamps])


@pytest.mark.integration
async def test_a_retry_after_met_by_one_replica_holds_the_host_for_all(
    replicas: list[Replica], postgres_url: str
) -> None:
    met, others = replicas[0], replicas[1:]
    met.limiter.block("p", "http://h/x", 5.0)
    for replica in others:
        # Announced as it is written: no refresh runs here (the fixture starts no refresher).
        deadline = time.monotonic() + 2.0
        while replica.limiter.platform_blocked_for("p") <= 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # What the scheduler's hold_off reads: every target of the platform waits, no slot is taken.
        assert 2.5 < replica.limiter.platform_blocked_for("p") <= 5.0
    # A start on another replica gets its turn only after the hold, even with no local hold to see.
    fresh = Replica(postgres_url, "late-joiner")
    await fresh.budget.start()
    try:
        # A replica that was not listening then reads the hold at its first refresh.
        assert 2.0 < fresh.limiter.platform_blocked_for("p") <= 5.0
        began = time.monotonic()
        async with fresh.limiter.slot("p", "http://h/x"):
            waited = time.monotonic() - began
        assert waited > 2.5
    finally:
        await fresh.budget.close()


@pytest.mark.integration
async def test_a_circuit_opened_by_one_replica_is_open_on_all(replicas: list[Replica]) -> None:
    opener, others = replicas[0], replicas[1:]
    for _ in range(2):
        opener.breaker.record("p", Outcome.BLOCKED)
    assert opener.breaker.state("p") is CircuitState.OPEN
    for replica in others:
        assert replica.breaker.state("p") is CircuitState.CLOSED
        deadline = time.monotonic() + 3.0  # the opening is written in the background
        while replica.breaker.state("p") is CircuitState.CLOSED and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            await replica.budget.refresh()
        assert replica.breaker.state("p") is CircuitState.OPEN
        assert 25.0 < replica.breaker.wait("p") <= 30.0


@pytest.mark.integration
async def test_a_ban_rotates_the_fleet_proxy_once(replicas: list[Replica]) -> None:
    moved = await asyncio.gather(*(r.budget.rotate_proxy(r.proxies, "p", 0) for r in replicas))
    assert sorted(moved) == [False, False, True]
    assert {r.proxies.current("p") for r in replicas} == {"http://b:2"}
    # A late report of the same ban (proxy 0) does not move the fleet again; a ban of proxy 1 does.
    assert await replicas[1].budget.rotate_proxy(replicas[1].proxies, "p", 0) is False
    assert await replicas[2].budget.rotate_proxy(replicas[2].proxies, "p", 1) is True
    await replicas[0].budget.refresh()
    assert replicas[0].proxies.current("p") == "http://c:3"


@pytest.mark.integration
async def test_each_replica_gets_its_share_of_the_host_slots(
    replicas: list[Replica], postgres_url: str
) -> None:
    store = Store(postgres_url)
    book = JobBook(store)
    for replica in replicas:
        await book.instance_alive(replica.budget.instance, utcnow())
    await store.close()
    only = replicas[0]
    await only.budget.refresh()
    assert only.budget.replicas == 3
    async with only.limiter.slot("p", "http://h/x"):
        # max_concurrency 4 over 3 replicas: one request in flight per replica, so a second one waits.
        second = asyncio.create_task(starts(only, 1, []))
        await asyncio.sleep(0.5)
        assert not second.done()
    await asyncio.wait_for(second, 2.0)


async def test_without_postgresql_polling_goes_on_at_the_local_share(
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica = Replica(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone", "alone")
    await replica.budget.start()
    try:
        with caplog.at_level(logging.WARNING, logger="collector.fleet_budget"):
            stamps: list[float] = []
            await asyncio.wait_for(starts(replica, 4, stamps), 5.0)
        assert len(stamps) == 4
        assert replica.counter("collector_fleet_budget_fallbacks_total") == 4
        assert len([r for r in caplog.records if "did not answer" in r.message]) == 1
        assert min(b - a for a, b in itertools.pairwise(stamps)) >= 0.9 * GAP
    finally:
        await replica.budget.close()


@pytest.mark.integration
async def test_polling_goes_on_through_a_database_outage_and_the_fleet_budget_comes_back(
    replicas: list[Replica], postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    replica = replicas[0]
    await starts(replica, 3, [])
    assert replica.counter("collector_fleet_budget_fallbacks_total") == 0
    with caplog.at_level(logging.WARNING, logger="collector.fleet_budget"):
        await asyncio.to_thread(postgres_server.stop)
        try:
            stamps: list[float] = []
            await asyncio.wait_for(starts(replica, 5, stamps), 10.0)
            await replica.budget.refresh()  # the refresher's round meets the outage too: no second warning
        finally:
            await asyncio.to_thread(postgres_server.start)
    assert len(stamps) == 5
    assert replica.counter("collector_fleet_budget_fallbacks_total") >= 4  # the first may meet the outage
    assert len([r for r in caplog.records if "did not answer" in r.message]) == 1
    await replica.budget.refresh()
    fallbacks = replica.counter("collector_fleet_budget_fallbacks_total")
    await starts(replica, 3, [])
    assert replica.counter("collector_fleet_budget_fallbacks_total") == fallbacks  # shared again
    assert await replica.budget.reserve("p", "h", GAP) is not None
