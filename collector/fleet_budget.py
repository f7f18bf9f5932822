"""The fleet's politeness budget in PostgreSQL: request spacing, Retry-After holds, circuit openings and
the proxy choice of each platform, shared by every replica of `collector run`.

A request start takes the host's next turn with one atomic statement that reads the database's clock,
so no two replicas take the same turn and their clocks may disagree. A 429, an opened circuit and a
proxy rotation are written to the same tables; a refresher copies them into the local limiter, breaker
and rotation every second, which is what the scheduler's `hold_off` reads. When PostgreSQL does not
answer, polling goes on with the local budget (at this replica's share of the rate) until it does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from collector.backoff import CircuitBreaker
from collector.config import Config
from collector.jobs import STALE_AFTER, this_process, utcnow
from collector.limits import HostLimiter, ProxyRotation
from collector.metrics import SelfMetrics

log = logging.getLogger(__name__)

REFRESH_EVERY = 1.0  # how late another replica's 429, circuit or rotation may reach this one's scheduler
# An opening about to end is left to each replica's own half-open probe: adopting its last moments would
# only flap a circuit that has just gone half-open here.
LEAST_CIRCUIT_HOLD = REFRESH_EVERY
# A database that takes longer than this is treated as away: polling must not wait on it.
ANSWER_WITHIN = 2.0
FAILURES = (SQLAlchemyError, OSError, TimeoutError)

_SECONDS = "make_interval(secs => CAST(:seconds AS double precision))"
# The turn taken is the later of the host's next free start, now and the end of any hold; the next
# free start moves one gap past it. The wait is computed by the database, against its own clock.
RESERVE = text(f"""
    INSERT INTO fleet_hosts AS h (platform, host, next_start)
    VALUES (:platform, :host, clock_timestamp() + {_SECONDS})
    ON CONFLICT (platform, host) DO UPDATE SET next_start =
        GREATEST(h.next_start, clock_timestamp(), COALESCE(h.blocked_until, '-infinity')) + {_SECONDS}
    RETURNING EXTRACT(EPOCH FROM h.next_start - {_SECONDS} - clock_timestamp())::float8
""")
BLOCKED_FOR = text("""
    SELECT EXTRACT(EPOCH FROM blocked_until - clock_timestamp())::float8 FROM fleet_hosts
    WHERE platform = :platform AND host = :host AND blocked_until > clock_timestamp()
""")
BLOCK = text(f"""
    INSERT INTO fleet_hosts AS h (platform, host, next_start, blocked_until)
    VALUES (:platform, :host, clock_timestamp(), clock_timestamp() + {_SECONDS})
    ON CONFLICT (platform, host) DO UPDATE
    SET blocked_until = GREATEST(COALESCE(h.blocked_until, '-infinity'), EXCLUDED.blocked_until)
""")
OPEN_CIRCUIT = text(f"""
    INSERT INTO fleet_platforms AS p (platform, circuit_open_until, proxy_index)
    VALUES (:platform, clock_timestamp() + {_SECONDS}, 0)
    ON CONFLICT (platform) DO UPDATE
    SET circuit_open_until = GREATEST(COALESCE(p.circuit_open_until, '-infinity'), EXCLUDED.circuit_open_until)
""")
ENSURE_PLATFORM = text("""
    INSERT INTO fleet_platforms (platform, proxy_index) VALUES (:platform, 0) ON CONFLICT DO NOTHING
""")
# Compare-and-set: only the first replica to report a ban of proxy `used` moves the fleet on.
ROTATE = text("""
    UPDATE fleet_platforms SET proxy_index = :used + 1 WHERE platform = :platform AND proxy_index = :used
    RETURNING proxy_index
""")
PROXY_INDEX = text("SELECT proxy_index FROM fleet_platforms WHERE platform = :platform")
HOLDS = text("""
    SELECT platform, host, EXTRACT(EPOCH FROM blocked_until - clock_timestamp())::float8 FROM fleet_hosts
    WHERE blocked_until > clock_timestamp()
""")
PLATFORMS = text("""
    SELECT platform, EXTRACT(EPOCH FROM circuit_open_until - clock_timestamp())::float8, proxy_index
    FROM fleet_platforms
""")
REPLICAS = text("SELECT id FROM collector_instances WHERE heartbeat_at >= :since")


@dataclass(slots=True)
class FleetView:
    """What the fleet holds right now, in seconds from now."""

    holds: dict[tuple[str, str], float] = field(default_factory=dict)  # (platform, host) -> Retry-After left
    circuits: dict[str, float] = field(default_factory=dict)  # platform -> open for so long still
    proxies: dict[str, int] = field(default_factory=dict)  # platform -> rotations so far
    replicas: int = 1


@dataclass(slots=True)
class _Followed:
    limiter: HostLimiter
    breaker: CircuitBreaker
    proxies: ProxyRotation


class FleetBudget:
    """One replica's handle on the shared budget (the `SharedSpacing` of its HostLimiter)."""

    def __init__(self, database_url: str, metrics: SelfMetrics, instance: str | None = None) -> None:
        # Its own small pool, autocommitted: one round trip per turn, never queued behind the writer.
        self.engine: AsyncEngine = create_async_engine(
            database_url, pool_size=2, max_overflow=4, isolation_level="AUTOCOMMIT"
        )
        self.metrics = metrics
        self.instance = instance or this_process()
        self._replicas = 1
        self._away = False
        self._followed: _Followed | None = None
        self._publishing: set[asyncio.Task[None]] = set()

    @property
    def replicas(self) -> int:
        return self._replicas

    def follow(self, limiter: HostLimiter, breaker: CircuitBreaker, proxies: ProxyRotation) -> None:
        """Apply the fleet's holds, circuit openings and proxy choice to these on every refresh."""
        self._followed = _Followed(limiter, breaker, proxies)

    # --- the request path -----------------------------------------------------------------------

    async def reserve(self, platform: str, host: str, gap: float) -> float | None:
        if self._away:
            self.metrics.fleet_budget_fallbacks.labels(platform).inc()
            return None
        wait = await self._ask(RESERVE, platform=platform, host=host, seconds=gap)
        if wait is None:
            self.metrics.fleet_budget_fallbacks.labels(platform).inc()
            return None
        if wait > 0:
            self.metrics.fleet_budget_waits.labels(platform).inc()
            self.metrics.fleet_budget_wait_seconds.labels(platform).inc(wait)
        return float(wait)

    async def blocked_for(self, platform: str, host: str) -> float:
        if self._away:
            return 0.0
        return float(await self._ask(BLOCKED_FOR, platform=platform, host=host) or 0.0)

    def publish_block(self, platform: str, host: str, seconds: float) -> None:
        self._publish(BLOCK, platform=platform, host=host, seconds=seconds)

    def publish_open(self, platform: str, seconds: float) -> None:
        """This replica's failures opened the platform's circuit: hold it open fleet-wide as long."""
        self._publish(OPEN_CIRCUIT, platform=platform, seconds=seconds)

    async def rotate_proxy(self, proxies: ProxyRotation, platform: str, used: int) -> bool | None:
        """Move the fleet past proxy `used` after a ban, once however many replicas report it; True when
        this call moved it, False when another replica already had; None when PostgreSQL did not answer
        (the caller rotates locally)."""
        if len(proxies.proxies.get(platform, ())) < 2:
            return False
        try:
            async with asyncio.timeout(ANSWER_WITHIN), self.engine.connect() as conn:
                await conn.execute(ENSURE_PLATFORM, {"platform": platform})
                moved = await conn.scalar(ROTATE, {"platform": platform, "used": used})
                index = moved if moved is not None else await conn.scalar(PROXY_INDEX, {"platform": platform})
        except FAILURES as exc:
            self._lost(exc)
            return None
        proxies.adopt(platform, int(index))
        return moved is not None

    async def _ask(self, statement: Any, **params: Any) -> Any:
        try:
            async with asyncio.timeout(ANSWER_WITHIN), self.engine.connect() as conn:
                return await conn.scalar(statement, params)
        except FAILURES as exc:
            self._lost(exc)
            return None

    def _publish(self, statement: Any, **params: Any) -> None:
        # Written in the background: the poll that met the 429 must not wait on the database.
        task = asyncio.create_task(self._write(statement, params))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _write(self, statement: Any, params: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(ANSWER_WITHIN), self.engine.connect() as conn:
                await conn.execute(statement, params)
        except FAILURES as exc:
            self._lost(exc)

    # --- the refresher --------------------------------------------------------------------------

    async def read(self) -> FleetView:
        """The fleet's holds, circuits, proxies and live replicas (raises when PostgreSQL does not answer)."""
        view = FleetView()
        async with asyncio.timeout(ANSWER_WITHIN), self.engine.connect() as conn:
            for platform, host, left in await conn.execute(HOLDS):
                view.holds[(platform, host)] = left
            for platform, open_for, index in await conn.execute(PLATFORMS):
                if open_for is not None and open_for > 0:
                    view.circuits[platform] = open_for
                view.proxies[platform] = index
            alive = set(await conn.scalars(REPLICAS, {"since": utcnow() - STALE_AFTER}))
        view.replicas = len(alive | {self.instance})
        return view

    async def refresh(self) -> None:
        try:
            view = await self.read()
        except FAILURES as exc:
            self._lost(exc)
            return
        if self._away:
            self._away = False
            log.info("fleet budget: PostgreSQL answers again; request spacing is fleet-wide again")
        self._replicas = view.replicas
        followed = self._followed
        if followed is None:
            return
        for (platform, host), left in view.holds.items():
            if platform in followed.limiter.rules:
                followed.limiter.hold(platform, host, left)
        for platform, left in view.circuits.items():
            if platform in followed.breaker.thresholds and left >= LEAST_CIRCUIT_HOLD:
                followed.breaker.hold_open(platform, left)
        for platform, index in view.proxies.items():
            followed.proxies.adopt(platform, index)

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_EVERY)

    def _lost(self, exc: BaseException) -> None:
        if not self._away:
            self._away = True
            log.warning(
                "fleet budget: PostgreSQL did not answer (%s: %s); each replica spaces its own requests "
                "at its share of the rate until it does",
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )

    async def close(self) -> None:
        await asyncio.gather(*self._publishing, return_exceptions=True)
        await self.engine.dispose()


@asynccontextmanager
async def fleet_budget(config: Config, metrics: SelfMetrics) -> AsyncIterator[FleetBudget | None]:
    """In fleet mode, the shared budget with its refresher running; None for a lone collector."""
    if not config.fleet.enabled:
        yield None
        return
    budget = FleetBudget(config.collector.database_url, metrics)
    await budget.refresh()
    refresher = asyncio.create_task(budget.run(), name="fleet-budget")
    try:
        yield budget
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
        await budget.close()
