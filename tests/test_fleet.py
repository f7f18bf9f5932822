"""Leases in a real PostgreSQL: several `Fleet` loops in one process stand for replicas.

Each replica has its own engine and holder id, as separate processes would; the processes themselves
are tested in tests/test_fleet_processes.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from collector.api import TargetConfig
from collector.fleet import Fleet, Leases
from collector.metrics import LiveState, SelfMetrics
from collector.store import Store, create_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGETS = [TargetConfig(f"t{i:02}", "tiktok", "live", 10.0, {"account": f"a{i}"}) for i in range(12)]
LEASE = 1.5  # short, so a dead replica's leases run out within the test


class Replica:
    """One replica's fleet loop and what it was told to poll."""

    def __init__(self, url: str, name: str, targets: Sequence[TargetConfig] = TARGETS) -> None:
        self.engine = create_engine(url)
        self.metrics = SelfMetrics(LiveState([]))
        self.polling: dict[str, float | None] = {}  # name -> first poll delay it was given
        self.due: dict[str, float] = {}
        self.in_flight: set[str] = set()
        self.targets = list(targets)
        self.fleet = Fleet(
            Leases(self.engine, name, LEASE), self._wanted, self._moved, self, self.metrics, tick=0.05
        )

    def _wanted(self) -> Mapping[str, TargetConfig]:
        return {t.name: t for t in self.targets}

    async def _moved(
        self, gained: Sequence[tuple[TargetConfig, float | None]], lost: Collection[str]
    ) -> None:
        for name in lost:
            self.polling.pop(name, None)
        for target, delay in gained:
            self.polling[target.name] = delay

    # The scheduler's side of the Schedule protocol.
    def busy(self, name: str) -> bool:
        return name in self.in_flight

    def due_in(self, names: Collection[str]) -> Mapping[str, float]:
        return {n: self.due[n] for n in names if n in self.due}

    def counter(self, name: str) -> float:
        return self.metrics.registry.get_sample_value(name) or 0.0


@asynccontextmanager
async def replicas(url: str, *names: str) -> AsyncIterator[list[Replica]]:
    store = Store(url, TARGETS)
    await store.prepare()
    await store.close()
    made = [Replica(url, name) for name in names]
    try:
        yield made
    finally:
        for r in made:
            await r.engine.dispose()


async def settle(*fleet: Replica, steps: int = 4) -> None:
    for _ in range(steps):
        for r in fleet:
            await r.fleet.step()


def test_replicas_split_the_targets_without_overlap(postgres_url: str) -> None:
    async def scenario() -> None:
        async with replicas(postgres_url, "a", "b", "c") as (a, b, c):
            await settle(a, b, c)
            held = [set(r.polling) for r in (a, b, c)]
            assert [len(h) for h in held] == [4, 4, 4]
            assert set().union(*held) == {t.name for t in TARGETS}
            assert a.counter("collector_fleet_replicas") == 3
            assert a.counter("collector_fleet_leases_held") == 4
            assert a.counter("collector_fleet_targets") == 12
            # Never polled before: each starts at a random phase.
            assert set(a.polling.values()) == {None}

    asyncio.run(scenario())


def test_a_dead_replicas_targets_are_taken_over_when_its_leases_run_out(postgres_url: str) -> None:
    async def scenario() -> None:
        async with replicas(postgres_url, "a", "b") as (a, b):
            await settle(a, b)
            mine = set(a.polling)
            assert len(mine) == 6
            # `a` stops without a word (kill -9). Within its lease nobody takes its targets...
            await settle(b, steps=2)
            assert set(b.polling).isdisjoint(mine)
            # ...and once the lease has run out `b` holds everything.
            await asyncio.sleep(LEASE + 0.2)
            await settle(b, steps=3)
            assert set(b.polling) == {t.name for t in TARGETS}
            assert b.counter("collector_fleet_lease_takeovers_total") == 6
            assert b.counter("collector_fleet_replicas") == 1
            # Had `a` only been cut off, its next renewal finds its targets gone and stops polling them.
            await settle(a, steps=1)
            assert a.polling == {}
            assert a.counter("collector_fleet_leases_lost_total") == 6

    asyncio.run(scenario())


def test_a_stopping_replica_hands_over_at_once_with_its_cadence(postgres_url: str) -> None:
    async def scenario() -> None:
        async with replicas(postgres_url, "a", "b") as (a, b):
            await settle(a, b)
            a.due = {name: 7.0 for name in a.polling}
            handed = set(a.polling)
            await a.fleet.stop()
            await settle(b, steps=2)  # well within the lease: no waiting for it to run out
            assert set(b.polling) == {t.name for t in TARGETS}
            # The next poll comes when `a` would have made it, not at once and not at a random phase.
            delays = [b.polling[name] for name in handed]
            assert all(d is not None and 6.0 < d <= 7.0 for d in delays), delays
            assert b.counter("collector_fleet_lease_takeovers_total") == 0
            assert a.counter("collector_fleet_lease_releases_total") == 0  # stop() is not a rebalance

    asyncio.run(scenario())


def test_a_joining_replica_gets_its_share_from_idle_targets(postgres_url: str) -> None:
    async def scenario() -> None:
        async with replicas(postgres_url, "a") as (a,):
            await settle(a)
            assert len(a.polling) == 12
            late = Replica(postgres_url, "late")
            try:
                a.in_flight = set(sorted(a.polling)[:9])  # polls in flight are not handed over
                a.due = {name: 3.0 for name in a.polling}
                await settle(a, late, steps=4)
                assert len(a.polling) == 9 and set(a.polling) == a.in_flight
                assert len(late.polling) == 3
                assert all(d is not None and d <= 3.0 for d in late.polling.values())
                assert a.counter("collector_fleet_lease_releases_total") == 3
            finally:
                await late.engine.dispose()

    asyncio.run(scenario())


def test_a_target_removed_by_a_reload_is_released(postgres_url: str) -> None:
    async def scenario() -> None:
        async with replicas(postgres_url, "a") as (a,):
            await settle(a)
            a.targets = TARGETS[:10]
            await settle(a, steps=1)
            assert set(a.polling) == {t.name for t in TARGETS[:10]}
            assert a.counter("collector_fleet_targets") == 10
            async with a.engine.connect() as conn:
                holders = dict(
                    (
                        await conn.execute(
                            text(
                                "SELECT t.name, l.holder FROM target_leases l "
                                "JOIN targets t ON t.id = l.target_id"
                            )
                        )
                    ).all()
                )
            assert holders["t10"] is None and holders["t11"] is None and holders["t00"] == "a"

    asyncio.run(scenario())


def test_through_a_database_outage_a_replica_keeps_polling_what_it_holds(
    postgres_server, postgres_url: str
) -> None:
    async def scenario() -> None:
        async with replicas(postgres_url, "a") as (a,):
            await settle(a)
            assert len(a.polling) == 12
            postgres_server.stop()
            try:
                # Longer than the lease: nobody could take a lease over, so nothing stops.
                for _ in range(3):
                    await asyncio.sleep(LEASE / 2)
                    await a.fleet.step()
                assert len(a.polling) == 12
            finally:
                postgres_server.start()
            await a.engine.dispose()  # connections to the stopped server are dead
            await settle(a, steps=2)
            assert len(a.polling) == 12
            assert a.counter("collector_fleet_leases_lost_total") == 0

    asyncio.run(scenario())


def test_a_target_added_by_a_reload_gets_its_row_and_is_claimed(postgres_url: str) -> None:
    # Leases refer to target rows, which a single collector creates on its first write; a fleet
    # replica creates them itself, or a new target would wait for a poll that never comes.
    async def scenario() -> None:
        async with replicas(postgres_url, "a") as (a,):
            store = Store(postgres_url, TARGETS)
            a.fleet.ensure_targets = store.ensure_targets
            try:
                await settle(a)
                added = TargetConfig("t99", "tiktok", "live", 10.0, {"account": "new_shop"})
                store.targets = a.targets = [*TARGETS, added]
                await settle(a, steps=2)
                assert set(a.polling) == {t.name for t in store.targets}
            finally:
                await store.close()

    asyncio.run(scenario())
