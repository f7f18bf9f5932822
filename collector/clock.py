"""Time as the scheduler, backoff, breaker and host limiter see it: the system's, or a test's.

Everything that decides *when* reads `monotonic()` and waits with `sleep()` on an injected clock, so a
test can move time itself instead of sleeping and asserting wall-clock windows.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")

# Loop turns a woken sleeper gets before time moves again: enough for the chains our code runs between
# two sleeps (a task starting, a semaphore or lock handed over, asyncio.wait noticing). A fixed number,
# not "until idle", because asyncio offers no public way to ask whether every task is blocked. Today's
# tests need 16; the rest is headroom.
SETTLE_TURNS = 64


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


async def wait_at_most(clock: Clock, seconds: float, awaitable: Awaitable[object]) -> bool:
    """Wait for `awaitable` for at most `seconds` of `clock` time; True when it finished in time.

    An unfinished awaitable is cancelled, a task included; to leave tasks running, pass
    `asyncio.wait(tasks)`, which never cancels what it watches. An exception it raised propagates.
    """
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (work, timer):
            future.cancel()
        await asyncio.gather(work, timer, return_exceptions=True)
    if work.cancelled():
        return False
    work.result()
    return True


class ManualClock:
    """A clock for tests: time moves only when the test moves it, and sleepers wake in deadline order.

    `advance` walks time forward waking each sleeper at its own deadline and letting it run; `run`
    drives a coroutine to its end, jumping straight to the next deadline whenever everything waits on
    the clock; `jump` moves time without waking anyone, as a suspended machine or a blocked loop would.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    def jump(self, seconds: float) -> None:
        self.now += seconds

    async def advance(self, seconds: float) -> None:
        until = self.now + seconds
        await _settle()
        while (deadline := self._next_deadline()) is not None and deadline <= until:
            self._wake_next()
            await _settle()
        self.now = max(self.now, until)

    async def run(self, awaitable: Awaitable[T], *, limit: float = 86_400.0) -> T:
        """Await `awaitable`, moving time as far as it needs but no further than `limit` seconds."""
        task = asyncio.ensure_future(awaitable)
        until = self.now + limit
        try:
            await _settle()
            while not task.done():
                deadline = self._next_deadline()
                if deadline is None:
                    raise RuntimeError("the work waits on something other than this clock")
                if deadline > until:
                    raise TimeoutError(f"still running after {limit:g} clock seconds")
                self._wake_next()
                await _settle()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return task.result()

    def _next_deadline(self) -> float | None:
        # Sleepers cancelled meanwhile (a stop event won the race) leave dead entries behind.
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def _wake_next(self) -> None:
        deadline, _, wake = heapq.heappop(self._sleepers)
        self.now = max(self.now, deadline)
        wake.set_result(None)


async def _settle() -> None:
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
