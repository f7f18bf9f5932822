"""Fleet mode: replicas of `collector run` share the targets through leases in PostgreSQL.

Each replica runs one `Fleet` loop. Every tick it claims free or expired targets up to its fair share
(active targets / live replicas) and lets go of any excess, so a replica that joins gets its share;
every third of a lease it renews what it holds and says it is alive. A replica that dies loses its
targets when their leases run out; one that stops (SIGTERM) releases them at once. Claims use
`FOR UPDATE SKIP LOCKED`, so replicas never wait on each other, and every time is the database's, so
the replicas' clocks need not agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from collector.clock import SYSTEM_CLOCK, Clock, wait_at_most
from collector.config import TargetConfig
from collector.metrics import SelfMetrics

log = logging.getLogger(__name__)
TICK = 1.0  # how often a replica looks for targets to claim: bounds a takeover's delay past the lease


@dataclass(frozen=True, slots=True)
class Claim:
    name: str
    takeover: bool  # the lease ran out in another replica's hands
    handed_next_poll: datetime | None  # when the replica that handed it over would have polled next
    last_polled_at: datetime | None
    now: datetime  # the database's time at the claim

    def first_poll_in(self, interval: float) -> float | None:
        """Seconds until the first poll here, so a moved target keeps its cadence (None: a target
        never polled, which starts at a random phase)."""
        if self.handed_next_poll is not None:
            return max(0.0, (self.handed_next_poll - self.now).total_seconds())
        if self.last_polled_at is not None:
            return max(0.0, (self.last_polled_at - self.now).total_seconds() + interval)
        return None


_REGISTER = text(
    "INSERT INTO target_leases (target_id, takeovers) SELECT id, 0 FROM targets WHERE name = ANY(:names) "
    "ON CONFLICT DO NOTHING"
)
_BEAT = text(
    "INSERT INTO collector_instances (id, started_at, heartbeat_at, config_source) "
    "VALUES (:me, clock_timestamp(), clock_timestamp(), :source) "
    "ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp()"
)
# Live replicas: those that said so within one lease, the time their leases take to run out.
_REPLICAS = text(
    "SELECT count(*) FROM collector_instances "
    "WHERE heartbeat_at > clock_timestamp() - make_interval(secs => :lease)"
)
_RENEW = text(
    "UPDATE target_leases l SET lease_until = clock_timestamp() + make_interval(secs => :lease) "
    "FROM targets t WHERE t.id = l.target_id AND l.holder = :me AND t.name = ANY(:names) "
    "RETURNING t.name"
)
# Random order spreads each platform and kind (browser pages, API calls) over the replicas.
_CLAIM = text(
    "WITH free AS ("
    " SELECT l.target_id, (l.holder IS NOT NULL AND l.holder <> :me) AS takeover, l.next_poll_at"
    " FROM target_leases l JOIN targets t ON t.id = l.target_id"
    " WHERE t.name = ANY(:names) AND (l.holder IS NULL OR l.lease_until < clock_timestamp())"
    " ORDER BY random() LIMIT :n FOR UPDATE OF l SKIP LOCKED) "
    "UPDATE target_leases l SET holder = :me, held_since = clock_timestamp(), next_poll_at = NULL,"
    " lease_until = clock_timestamp() + make_interval(secs => :lease),"
    " takeovers = l.takeovers + CASE WHEN free.takeover THEN 1 ELSE 0 END "
    "FROM free, targets t WHERE l.target_id = free.target_id AND t.id = l.target_id "
    "RETURNING t.name, free.takeover, free.next_poll_at, t.last_outcome_at, clock_timestamp()"
)
_RELEASE = text(
    "UPDATE target_leases l SET holder = NULL, lease_until = NULL, held_since = NULL,"
    " next_poll_at = clock_timestamp() + make_interval(secs => handed.seconds) "
    "FROM targets t, unnest(CAST(:names AS text[]), CAST(:seconds AS double precision[]))"
    " AS handed(name, seconds) "
    "WHERE t.name = handed.name AND t.id = l.target_id AND l.holder = :me"
)
_LEAVE = text("DELETE FROM collector_instances WHERE id = :me")


class Leases:
    """The lease statements for one replica (`holder`, its instance id)."""

    def __init__(self, engine: AsyncEngine, holder: str, lease: float, source: str | None = None) -> None:
        self.engine, self.holder, self.lease, self.source = engine, holder, lease, source

    async def register(self, names: Collection[str]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_REGISTER, {"names": list(names)})

    async def beat(self) -> int:
        """Say this replica lives; returns how many replicas live (this one included)."""
        async with self.engine.begin() as conn:
            await conn.execute(_BEAT, {"me": self.holder, "source": self.source})
            return int((await conn.execute(_REPLICAS, {"lease": self.lease})).scalar_one())

    async def renew(self, names: Collection[str]) -> set[str]:
        """Extend the leases on `names`; returns those still held (another replica may have taken a
        lease that ran out while this one could not reach the database)."""
        if not names:
            return set()
        async with self.engine.begin() as conn:
            rows = await conn.execute(_RENEW, {"me": self.holder, "names": list(names), "lease": self.lease})
            return {name for (name,) in rows}

    async def claim(self, names: Collection[str], limit: int) -> list[Claim]:
        if not names or limit <= 0:
            return []
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                _CLAIM, {"me": self.holder, "names": list(names), "n": limit, "lease": self.lease}
            )
            return [Claim(*row) for row in rows]

    async def release(self, next_polls: Mapping[str, float | None]) -> None:
        """Hand targets over; `next_polls` says in how many seconds each was due here (None: now)."""
        if next_polls:
            names = list(next_polls)
            seconds = [next_polls[n] or 0.0 for n in names]
            async with self.engine.begin() as conn:
                await conn.execute(_RELEASE, {"me": self.holder, "names": names, "seconds": seconds})

    async def leave(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_LEAVE, {"me": self.holder})


# What the service does when the held set changes: start polling the gained targets (each after the
# given delay, so a moved target keeps its cadence), stop polling the lost ones.
OnChange = Callable[[Sequence[tuple[TargetConfig, float | None]], Collection[str]], Awaitable[None]]


class Schedule(Protocol):
    """What the fleet asks of the scheduler before handing a target over."""

    def busy(self, name: str) -> bool: ...

    def due_in(self, names: Collection[str]) -> Mapping[str, float]: ...


class Fleet:
    def __init__(
        self,
        leases: Leases,
        targets: Callable[[], Mapping[str, TargetConfig]],
        on_change: OnChange,
        schedule: Schedule,
        metrics: SelfMetrics,
        *,
        ensure_targets: Callable[[], Awaitable[None]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        tick: float = TICK,
    ) -> None:
        self.leases, self.targets, self.on_change = leases, targets, on_change
        self.ensure_targets = ensure_targets  # creates the targets' rows, which leases refer to
        self.schedule, self.metrics, self.clock, self.tick = schedule, metrics, clock, tick
        self.held: dict[str, datetime] = {}  # name -> held since (the database's time)
        self.replicas = 1
        self._registered: frozenset[str] = frozenset()
        self._renewed_at: float | None = None  # monotonic time of the last renewal that succeeded
        self._out_of_touch = False

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the held set right until `stop` is set."""
        while not stop.is_set():
            await self.step()
            await wait_at_most(self.clock, self.tick, stop.wait())

    async def step(self) -> None:
        try:
            await self._step()
        except (SQLAlchemyError, OSError) as exc:
            self._database_away(exc)
        self.metrics.fleet_leases_held.set(len(self.held))
        self.metrics.fleet_replicas.set(self.replicas)

    async def _step(self) -> None:
        wanted = self.targets()
        self.metrics.fleet_targets.set(len(wanted))
        if frozenset(wanted) != self._registered:
            if self.ensure_targets is not None:
                await self.ensure_targets()
            await self.leases.register(wanted)
            self._registered = frozenset(wanted)
        gone = [name for name in self.held if name not in wanted]  # removed by a reload
        if gone:
            await self._let_go(gone, "no longer configured")
        renewed, started = self._renewed_at, self.clock.monotonic()
        # The heartbeat runs every tick so a joining replica is counted (and given its share) at once.
        self.replicas = max(1, await self.leases.beat())
        if renewed is None or started - renewed >= self.leases.lease / 3:
            await self._renew()
            self._renewed_at = started
        if renewed is None:
            return  # claim from the next tick, once replicas started together have all said so
        share = math.ceil(len(wanted) / self.replicas)
        if len(self.held) < share:
            await self._claim(wanted, share - len(self.held))
        elif len(self.held) > share:
            # Hand over what is not polling now: a poll in flight would overlap its next holder's.
            idle = sorted(name for name in self.held if not self.schedule.busy(name))
            await self._let_go(idle[: len(self.held) - share], f"rebalancing to {share} per replica")

    async def _renew(self) -> None:
        still = await self.leases.renew(self.held)
        lost = [name for name in self.held if name not in still]
        if lost:
            self.metrics.fleet_leases_lost.inc(len(lost))
            log.warning(
                "%d leases ran out and were taken by other replicas while this one could not renew them: %s",
                len(lost),
                _names(lost),
            )
            for name in lost:
                del self.held[name]
            await self.on_change((), lost)
        if self._out_of_touch:
            log.info("fleet: database reachable again")
            self._out_of_touch = False

    async def _claim(self, wanted: Mapping[str, TargetConfig], limit: int) -> None:
        claims = await self.leases.claim([n for n in wanted if n not in self.held], limit)
        if not claims:
            return
        for claim in claims:
            self.held[claim.name] = claim.now
        takeovers = [c.name for c in claims if c.takeover]
        if takeovers:
            self.metrics.fleet_takeovers.inc(len(takeovers))
            log.warning("took over %d targets whose leases ran out: %s", len(takeovers), _names(takeovers))
        log.info("now holding %d targets (+%d)", len(self.held), len(claims))
        gained = [(wanted[c.name], c.first_poll_in(wanted[c.name].interval)) for c in claims]
        await self.on_change(gained, ())

    async def _let_go(self, names: Sequence[str], why: str) -> None:
        next_polls = {name: None for name in names} | dict(self.schedule.due_in(names))
        for name in names:
            self.held.pop(name, None)
        await self.on_change((), names)
        await self.leases.release(next_polls)
        self.metrics.fleet_releases.inc(len(names))
        log.info("released %d targets (%s); holding %d", len(names), why, len(self.held))

    def _database_away(self, exc: BaseException) -> None:
        # Keep polling what is held: the spool keeps the samples until the database answers, and while
        # nobody reaches it nobody can take a lease over. Only a replica cut off alone can end up
        # polling a target another has taken; its next renewal finds that out and lets the target go.
        if not self._out_of_touch:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            log.warning(
                "fleet: database not reachable (%s); still polling the %d targets held", first, len(self.held)
            )
            self._out_of_touch = True

    async def stop(self) -> None:
        """Graceful scale-down: hand every held target over at once instead of at lease expiry. Call
        once polling has stopped and the last polls are written."""
        names = list(self.held)
        next_polls = {name: None for name in names} | dict(self.schedule.due_in(names))
        self.held.clear()
        try:
            await self.leases.release(next_polls)
            await self.leases.leave()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("fleet: could not hand targets over (%s); they move when their leases run out", exc)
            return
        if names:
            log.info("handed %d targets over to the other replicas", len(names))


def _names(names: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(sorted(names)[:shown]) + more
