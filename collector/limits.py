"""Per-platform, per-host politeness shared by every poll and every backfill.

Each (platform, host) gets a minimum gap between request starts, a cap on requests in flight, and a
`blocked_until` set by `Retry-After`: no request to that host starts before it passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from collector.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class HostRule:
    requests_per_second: float
    max_concurrency: int


@dataclass(slots=True)
class _HostState:
    slots: asyncio.Semaphore
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

    def _state(self, platform: str, url: str) -> _HostState:
        key = (platform, urlsplit(url).netloc)
        state = self._hosts.get(key)
        if state is None:
            state = self._hosts[key] = _HostState(asyncio.Semaphore(self.rules[platform].max_concurrency))
        return state

    @asynccontextmanager
    async def slot(self, platform: str, url: str) -> AsyncIterator[None]:
        """Hold one request slot for `url`'s host, waiting out spacing and any Retry-After."""
        state = self._state(platform, url)
        gap = 1.0 / self.rules[platform].requests_per_second
        async with state.slots:
            # The lock orders waiters so the gap is kept between consecutive starts, not just on average.
            async with state.lock:
                # Re-checked after every sleep: a 429 that arrives meanwhile pushes the block further.
                while (wait := max(state.next_start, state.blocked_until) - self.clock.monotonic()) > 0:
                    self.on_wait(platform, wait)
                    await self.clock.sleep(wait)
                state.next_start = self.clock.monotonic() + gap
            yield

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
