"""Per-platform, per-host politeness shared by every poll and every backfill.

Each (platform, host) gets a minimum gap between request starts, a cap on requests in flight, and a
`blocked_until` set by `Retry-After`: no request to that host starts before it passes. In a fleet the
same limits hold for all replicas together through a `SharedSpacing` (collector/fleet_budget.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from collector.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class HostRule:
    requests_per_second: float
    max_concurrency: int


class SharedSpacing(Protocol):
    """What a limiter asks of a budget that several processes share."""

    @property
    def replicas(self) -> int:
        """Processes sharing the budget, this one included (at least 1)."""
        ...

    async def reserve(self, platform: str, host: str, gap: float, turns: int = 1) -> float | None:
        """Take the host's next `turns` starts, `gap` apart; the seconds to wait for the first, or None
        when the shared budget cannot be reached (this process then spaces its own starts)."""
        ...

    def publish_block(self, platform: str, host: str, seconds: float) -> None:
        """Hold the host for every process (without waiting for the database)."""
        ...


class _Slots:
    """Requests in flight on one host, at most `limit()`; the limit may change while requests run.

    Like asyncio.Semaphore (whose size is fixed): leaving never awaits, so a cancelled poll cannot keep
    a slot, and a waiter woken for a slot but cancelled before it runs hands the wake on."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self.limit = limit
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        while self.busy >= self.limit():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()
                raise
            finally:
                self._waiters.remove(waiter)
        self.busy += 1

    async def __aexit__(self, *_exc: object) -> None:
        self.busy -= 1
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return


HOST_CACHE = 4096  # URLs whose host is remembered
# A fleet reservation takes at most this many turns, reaching at most this far ahead: turns a replica
# reserved but cannot use (its polls finished or were cancelled) are lost to the whole fleet.
BLOCK_TURNS = 64
BLOCK_SPAN = 1.0
LATE_TURN = 0.005


@dataclass(slots=True)
class _HostState:
    slots: _Slots
    next_start: float = 0.0
    blocked_until: float = 0.0
    # Fleet mode: start times reserved in the shared budget and not yet used, and the starts waiting to
    # reserve more (one reservation in flight per host, `lock`).
    turns: deque[float] = field(default_factory=deque)
    queued: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HostLimiter:
    def __init__(
        self,
        rules: Mapping[str, HostRule],
        on_wait: Callable[[str, float], None] = lambda _p, _s: None,
        clock: Clock = SYSTEM_CLOCK,
        shared: SharedSpacing | None = None,
    ) -> None:
        self.rules = rules  # by platform
        self.on_wait = on_wait
        self.clock = clock
        self.shared = shared
        self._hosts: dict[tuple[str, str], _HostState] = {}
        self._host_of: dict[str, str] = {}

    def _state(self, platform: str, host: str) -> _HostState:
        state = self._hosts.get((platform, host))
        if state is None:
            state = self._hosts[(platform, host)] = _HostState(_Slots(lambda: self._concurrency(platform)))
        return state

    def _concurrency(self, platform: str) -> int:
        limit = self.rules[platform].max_concurrency
        # A fleet splits the host's slots evenly among the replicas it sees, never below one each.
        return limit if self.shared is None else max(1, limit // self.shared.replicas)

    def slot(self, platform: str, url: str) -> _Slot:
        """Hold one request slot for `url`'s host (`async with`), waiting out spacing and any Retry-After."""
        host = self._host_of.get(url)
        if host is None:
            if len(self._host_of) >= HOST_CACHE:  # URLs with ids in their path must not grow it forever
                self._host_of.clear()
            host = self._host_of[url] = urlsplit(url).netloc
        return _Slot(self, platform, host, self._state(platform, host))

    async def _reserve_turn(self, platform: str, state: _HostState, gap: float) -> None:
        """This process's own spacing: each start reserves its time at once (no await between reading
        and moving `next_start`), so no lock is handed from waiter to waiter. A handoff costs an event
        loop iteration, which capped a host at a few hundred starts per second (267 of the 667 due at
        10,000 targets every 15 s). Starts keep the gap between their reserved times, in arrival order."""
        while True:
            now = self.clock.monotonic()
            start = max(state.next_start, state.blocked_until, now)
            state.next_start = start + gap
            if start <= now:
                return
            self.on_wait(platform, start - now)
            await self.clock.sleep(start - now)
            # A 429 that arrived meanwhile holds the host further: take a turn after it.
            if state.blocked_until <= self.clock.monotonic():
                return

    async def _take_turn(self, platform: str, host: str, state: _HostState, gap: float) -> None:
        """A turn from the fleet's shared budget (`shared`). A reservation takes a block of turns, one for
        every start waiting on this host here, so a busy host costs a database round trip per block, not
        per start; the starts then wait for their turns without holding anything."""
        assert self.shared is not None
        while True:
            now = self.clock.monotonic()
            # A turn gone by unused is given up: starting late on it could come within a gap of another
            # replica's turn. Late by less than an event loop's usual delay is not gone by.
            while state.turns and state.turns[0] < now - max(gap / 2, LATE_TURN):
                state.turns.popleft()
            if not state.turns:
                await self._reserve_block(platform, host, state, gap)
                continue
            start = state.turns.popleft()
            if start > now:
                await self.clock.sleep(start - now)
            # Another replica's 429 reaches this limiter as it is written (FleetBudget listens for holds):
            # the turns reserved before it are void, and the next block is reserved after the hold.
            if state.blocked_until <= self.clock.monotonic():
                return
            state.turns.clear()

    async def _reserve_block(self, platform: str, host: str, state: _HostState, gap: float) -> None:
        assert self.shared is not None
        state.queued += 1
        try:
            await state.lock.acquire()
        finally:
            state.queued -= 1
        try:
            if state.turns:  # the reservation this start queued behind brought enough
                return
            # Re-checked after every sleep: a 429 that arrives meanwhile pushes the hold further.
            while (wait := state.blocked_until - self.clock.monotonic()) > 0:
                self.on_wait(platform, wait)
                await self.clock.sleep(wait)
            turns = min(1 + state.queued, max(1, int(BLOCK_SPAN / gap)), BLOCK_TURNS)
            wait = await self.shared.reserve(platform, host, gap, turns)
            now = self.clock.monotonic()
            if wait is None:
                # The fleet's budget is out of reach: keep to this replica's share of the rate.
                start = max(now, state.next_start)
                state.next_start = start + gap * self.shared.replicas
                state.turns.append(start)
            else:
                first = now + max(wait, 0.0)
                state.turns.extend(first + i * gap for i in range(turns))
        finally:
            state.lock.release()

    def block(self, platform: str, url: str, seconds: float) -> None:
        """Honour `Retry-After`: nothing starts on this host for `seconds` (in a fleet: on any replica)."""
        host = urlsplit(url).netloc
        self.hold(platform, host, seconds)
        if self.shared is not None:
            self.shared.publish_block(platform, host, seconds)

    def hold(self, platform: str, host: str, seconds: float) -> None:
        """Nothing starts on `host` for `seconds` here (a hold another replica met comes this way)."""
        state = self._state(platform, host)
        state.blocked_until = max(state.blocked_until, self.clock.monotonic() + seconds)

    def blocked_for(self, platform: str, url: str) -> float:
        return max(0.0, self._state(platform, urlsplit(url).netloc).blocked_until - self.clock.monotonic())

    def platform_blocked_for(self, platform: str) -> float:
        """The longest Retry-After still running on any host of the platform."""
        now = self.clock.monotonic()
        return max((s.blocked_until - now for (p, _), s in self._hosts.items() if p == platform), default=0.0)


class _Slot:
    """A class, not an `asynccontextmanager`: a generator per request was a visible part of a poll."""

    __slots__ = ("host", "limiter", "platform", "state")

    def __init__(self, limiter: HostLimiter, platform: str, host: str, state: _HostState) -> None:
        self.limiter, self.platform, self.host, self.state = limiter, platform, host, state

    async def __aenter__(self) -> None:
        state = self.state
        await state.slots.__aenter__()
        try:
            limiter = self.limiter
            gap = 1.0 / limiter.rules[self.platform].requests_per_second
            if limiter.shared is None:
                await limiter._reserve_turn(self.platform, state, gap)
            else:
                await limiter._take_turn(self.platform, self.host, state, gap)
        except BaseException:
            await state.slots.__aexit__()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        await self.state.slots.__aexit__()


class ProxyRotation:
    """Each platform's proxy list; the next proxy is taken when the platform bans or rate-limits us."""

    def __init__(self, proxies: Mapping[str, tuple[str, ...]]) -> None:
        self.proxies = {p: urls for p, urls in proxies.items() if urls}
        self._index: dict[str, int] = {}

    def current(self, platform: str) -> str | None:
        urls = self.proxies.get(platform)
        return urls[self._index.get(platform, 0) % len(urls)] if urls else None

    def index(self, platform: str) -> int:
        """How many rotations the platform has had (the current proxy is this one, modulo the list)."""
        return self._index.get(platform, 0)

    def adopt(self, platform: str, index: int) -> None:
        """Use the proxy the fleet chose (see `index`)."""
        if platform in self.proxies:
            # Rotations only ever move on: a view read before this replica's own rotation is older.
            self._index[platform] = max(self._index.get(platform, 0), index)

    def rotate(self, platform: str, past: int | None = None) -> bool:
        """Take the next proxy; given `past` (the index a banned poll used), only if still on it."""
        if len(self.proxies.get(platform, ())) < 2:
            return False
        index = self._index.get(platform, 0)
        if past is not None and index != past:
            return False
        self._index[platform] = index + 1
        return True
