"""Per-platform, per-host politeness shared by every poll and every backfill.

Each (platform, host) gets a minimum gap between request starts, a cap on requests in flight, and a
`blocked_until` set by `Retry-After`: no request to that host starts before it passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from collector.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class HostRule:
    requests_per_second: float
    max_concurrency: int


HOST_CACHE = 4096  # URLs whose host is remembered


@dataclass(slots=True)
class _HostState:
    slots: asyncio.Semaphore
    gap: float  # seconds between request starts
    next_start: float = 0.0
    blocked_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HostLimiter:
    def __init__(
        self,
        rules: Mapping[str, HostRule],
        on_wait: Callable[[str, float], None] = lambda _p, _s: None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.rules = rules  # by platform
        self.on_wait = on_wait
        self.clock = clock
        self._hosts: dict[tuple[str, str], _HostState] = {}
        self._host_of: dict[str, str] = {}

    def _state(self, platform: str, url: str) -> _HostState:
        host = self._host_of.get(url)
        if host is None:
            if len(self._host_of) >= HOST_CACHE:  # URLs with ids in their path must not grow it forever
                self._host_of.clear()
            host = self._host_of[url] = urlsplit(url).netloc
        state = self._hosts.get((platform, host))
        if state is None:
            rule = self.rules[platform]
            state = self._hosts[(platform, host)] = _HostState(
                asyncio.Semaphore(rule.max_concurrency), gap=1.0 / rule.requests_per_second
            )
        return state

    def slot(self, platform: str, url: str) -> _Slot:
        """Hold one request slot for `url`'s host (`async with`), waiting out spacing and any Retry-After."""
        return _Slot(self, platform, self._state(platform, url))

    def block(self, platform: str, url: str, seconds: float) -> None:
        """Honour `Retry-After`: nothing starts on this host for `seconds`."""
        state = self._state(platform, url)
        state.blocked_until = max(state.blocked_until, self.clock.monotonic() + seconds)

    def blocked_for(self, platform: str, url: str) -> float:
        return max(0.0, self._state(platform, url).blocked_until - self.clock.monotonic())

    def platform_blocked_for(self, platform: str) -> float:
        """The longest Retry-After still running on any host of the platform."""
        now = self.clock.monotonic()
        return max((s.blocked_until - now for (p, _), s in self._hosts.items() if p == platform), default=0.0)


class _Slot:
    """A class, not an `asynccontextmanager`: a generator per request was a visible part of a poll."""

    __slots__ = ("limiter", "platform", "state")

    def __init__(self, limiter: HostLimiter, platform: str, state: _HostState) -> None:
        self.limiter, self.platform, self.state = limiter, platform, state

    async def __aenter__(self) -> None:
        state, clock = self.state, self.limiter.clock
        await state.slots.acquire()
        try:
            # The lock orders waiters so the gap is kept between consecutive starts, not just on average.
            async with state.lock:
                # Re-checked after every sleep: a 429 that arrives meanwhile pushes the block further.
                while (wait := max(state.next_start, state.blocked_until) - clock.monotonic()) > 0:
                    self.limiter.on_wait(self.platform, wait)
                    await clock.sleep(wait)
                state.next_start = clock.monotonic() + state.gap
        except BaseException:
            state.slots.release()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        self.state.slots.release()


class ProxyRotation:
    """Each platform's proxy list; the next proxy is taken when the platform bans or rate-limits us."""

    def __init__(self, proxies: Mapping[str, tuple[str, ...]]) -> None:
        self.proxies = {p: urls for p, urls in proxies.items() if urls}
        self._index: dict[str, int] = {}

    def current(self, platform: str) -> str | None:
        urls = self.proxies.get(platform)
        return urls[self._index.get(platform, 0) % len(urls)] if urls else None

    def rotate(self, platform: str) -> bool:
        if len(self.proxies.get(platform, ())) < 2:
            return False
        self._index[platform] = self._index.get(platform, 0) + 1
        return True
