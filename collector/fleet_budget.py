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

import asyncpg
from sqlalchemy.engine import make_url

from collector.backoff import CircuitBreaker
from collector.config import Config
from collector.jobs import this_process
from collector.limits import HostLimiter, ProxyRotation
from collector.metrics import SelfMetrics

log = logging.getLogger(__name__)

REFRESH_EVERY = 1.0  # how late another replica's 429, circuit or rotation may reach this one's scheduler
# An opening about to end is left to each replica's own half-open probe: adopting its last moments would
# only flap a circuit that has just gone half-open here.
LEAST_CIRCUIT_HOLD = REFRESH_EVERY
# A database that takes longer than this is treated as away: polling must not wait on it.
ANSWER_WITHIN = 2.0
HOLDS_CHANNEL = "collector_fleet_holds"
FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

_SECONDS = "make_interval(secs => $3::float8)"
# The first turn taken is the later of the host's next free start, now and the end of any hold; the
# block's $4 turns follow it a gap apart and the next free start moves past them. The wait is computed
# by the database, against its own clock.
RESERVE = f"""
    INSERT INTO fleet_hosts AS h (platform, host, next_start)
    VALUES ($1, $2, clock_timestamp() + $4::int4 * {_SECONDS})
    ON CONFLICT (platform, host) DO UPDATE SET next_start =
        GREATEST(h.next_start, clock_timestamp(), COALESCE(h.blocked_until, '-infinity')) + $4::int4 * {_SECONDS}
    RETURNING EXTRACT(EPOCH FROM h.next_start - $4::int4 * {_SECONDS} - clock_timestamp())::float8
"""
# Written and announced in one statement: the other replicas hear of the hold at once (`_on_hold`).
BLOCK = f"""
    WITH held AS (
        INSERT INTO fleet_hosts AS h (platform, host, next_start, blocked_until)
        VALUES ($1, $2, clock_timestamp(), clock_timestamp() + {_SECONDS})
        ON CONFLICT (platform, host) DO UPDATE
        SET blocked_until = GREATEST(COALESCE(h.blocked_until, '-infinity'), EXCLUDED.blocked_until)
        RETURNING 1
    )
    SELECT pg_notify('{HOLDS_CHANNEL}', concat_ws(E'\\t', $1::text, $2::text, $3::float8::text)) FROM held
"""
OPEN_CIRCUIT = """
    INSERT INTO fleet_platforms AS p (platform, circuit_open_until, proxy_index)
    VALUES ($1, clock_timestamp() + make_interval(secs => $2::float8), 0)
    ON CONFLICT (platform) DO UPDATE
    SET circuit_open_until = GREATEST(COALESCE(p.circuit_open_until, '-infinity'), EXCLUDED.circuit_open_until)
"""
ENSURE_PLATFORM = "INSERT INTO fleet_platforms (platform, proxy_index) VALUES ($1, 0) ON CONFLICT DO NOTHING"
# Compare-and-set: only the first replica to report a ban of proxy `used` moves the fleet on.
ROTATE = """
    UPDATE fleet_platforms SET proxy_index = $2 + 1 WHERE platform = $1 AND proxy_index = $2
    RETURNING proxy_index
"""
PROXY_INDEX = "SELECT proxy_index FROM fleet_platforms WHERE platform = $1"
HOLDS = """
    SELECT platform, host, EXTRACT(EPOCH FROM blocked_until - clock_timestamp())::float8 FROM fleet_hosts
    WHERE blocked_until > clock_timestamp()
"""
PLATFORMS = """
    SELECT platform, EXTRACT(EPOCH FROM circuit_open_until - clock_timestamp())::float8, proxy_index
    FROM fleet_platforms
"""
# Counted as the lease loop counts them (collector/fleet.py): a heartbeat within one lease.
REPLICAS = """
    SELECT id FROM collector_instances WHERE heartbeat_at > clock_timestamp() - make_interval(secs => $1::float8)
"""


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style address asyncpg takes, from the collector's SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


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

    def __init__(
        self, database_url: str, metrics: SelfMetrics, *, lease: float, instance: str | None = None
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.lease = lease  # a replica without a heartbeat for this long is gone
        self.metrics = metrics
        self.instance = instance or this_process()
        self._replicas = 1
        self._away = False
        self._followed: _Followed | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Make the pool (connections are opened on first use, so a database that is away does not
        stop the start) and read the fleet's state once."""
        # Its own small pool of plain asyncpg connections: one round trip per turn (autocommitted, the
        # statement prepared once per connection), never queued behind the writer.
        self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=4)
        await self.refresh()

    def _connection(self) -> Any:
        if self._pool is None:
            raise RuntimeError("FleetBudget.start() was not awaited")
        return self._pool.acquire()

    @property
    def replicas(self) -> int:
        return self._replicas

    def follow(self, limiter: HostLimiter, breaker: CircuitBreaker, proxies: ProxyRotation) -> None:
        """Apply the fleet's holds, circuit openings and proxy choice to these on every refresh."""
        self._followed = _Followed(limiter, breaker, proxies)

    # --- the request path -----------------------------------------------------------------------

    async def reserve(self, platform: str, host: str, gap: float, turns: int = 1) -> float | None:
        if self._away:
            self.metrics.fleet_budget_fallbacks.labels(platform).inc()
            return None
        wait = await self._ask(RESERVE, platform, host, gap, turns)
        if wait is None:
            self.metrics.fleet_budget_fallbacks.labels(platform).inc()
            return None
        # Each turn of the block waits its own time: the first `wait`, each next one a gap more.
        waiting = [w for i in range(turns) if (w := wait + i * gap) > 0]
        if waiting:
            self.metrics.fleet_budget_waits.labels(platform).inc(len(waiting))
            self.metrics.fleet_budget_wait_seconds.labels(platform).inc(sum(waiting))
        return float(wait)

    def publish_block(self, platform: str, host: str, seconds: float) -> None:
        self._publish(BLOCK, platform, host, seconds)

    def publish_open(self, platform: str, seconds: float) -> None:
        """This replica's failures opened the platform's circuit: hold it open fleet-wide as long."""
        self._publish(OPEN_CIRCUIT, platform, seconds)

    async def rotate_proxy(self, proxies: ProxyRotation, platform: str, used: int) -> bool | None:
        """Move the fleet past proxy `used` after a ban, once however many replicas report it; True when
        this call moved it, False when another replica already had; None when PostgreSQL did not answer
        (the caller rotates locally)."""
        if len(proxies.proxies.get(platform, ())) < 2:
            return False
        try:
            async with asyncio.timeout(ANSWER_WITHIN), self._connection() as conn:
                await conn.execute(ENSURE_PLATFORM, platform)
                moved = await conn.fetchval(ROTATE, platform, used)
                index = moved if moved is not None else await conn.fetchval(PROXY_INDEX, platform)
        except FAILURES as exc:
            self._lost(exc)
            return None
        proxies.adopt(platform, int(index))
        return moved is not None

    async def _ask(self, statement: str, *args: Any) -> Any:
        try:
            async with asyncio.timeout(ANSWER_WITHIN), self._connection() as conn:
                return await conn.fetchval(statement, *args)
        except FAILURES as exc:
            self._lost(exc)
            return None

    def _publish(self, statement: str, *args: Any) -> None:
        # Written in the background: the poll that met the 429 must not wait on the database.
        task = asyncio.create_task(self._write(statement, args))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _write(self, statement: str, args: tuple[Any, ...]) -> None:
        try:
            async with asyncio.timeout(ANSWER_WITHIN), self._connection() as conn:
                await conn.execute(statement, *args)
        except FAILURES as exc:
            self._lost(exc)

    # --- the refresher --------------------------------------------------------------------------

    async def read(self) -> FleetView:
        """The fleet's holds, circuits, proxies and live replicas (raises when PostgreSQL does not answer)."""
        view = FleetView()
        async with asyncio.timeout(ANSWER_WITHIN), self._connection() as conn:
            for platform, host, left in await conn.fetch(HOLDS):
                view.holds[(platform, host)] = left
            for platform, open_for, index in await conn.fetch(PLATFORMS):
                if open_for is not None and open_for > 0:
                    view.circuits[platform] = open_for
                view.proxies[platform] = index
            alive = {row[0] for row in await conn.fetch(REPLICAS, self.lease)}
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
        await self._listen()
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

    async def _listen(self) -> None:
        """Hear other replicas' holds as they are written. A turn reserved before a hold is checked
        against the local limiter when its time comes (collector/limits.py), so that must know of the
        hold within the time a request is in flight, not at the next refresh; until this connection is
        (re)made, holds arrive with the refresh."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            conn = await asyncpg.connect(self.dsn, timeout=ANSWER_WITHIN)
            await conn.add_listener(HOLDS_CHANNEL, self._on_hold)
        except FAILURES as exc:
            log.debug("fleet budget: not listening for holds (%s)", exc)
            return
        self._listener = conn

    def _on_hold(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        platform, host, seconds = payload.split("\t")
        if self._followed is not None and platform in self._followed.limiter.rules:
            self._followed.limiter.hold(platform, host, float(seconds))

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
        if self._listener is not None:
            self._listener.terminate()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), ANSWER_WITHIN)
            except TimeoutError:
                self._pool.terminate()


@asynccontextmanager
async def fleet_budget(config: Config, metrics: SelfMetrics) -> AsyncIterator[FleetBudget | None]:
    """In fleet mode, the shared budget with its refresher running; None for a lone collector."""
    if not config.fleet.enabled:
        yield None
        return
    budget = FleetBudget(config.collector.database_url, metrics, lease=config.fleet.lease)
    await budget.start()
    refresher = asyncio.create_task(budget.run(), name="fleet-budget")
    try:
        yield budget
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
        await budget.close()
