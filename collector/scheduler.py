"""The due-queue scheduler: every target polled every `interval` with jitter, under a global bound.

Each target starts at a random phase so polls do not bunch up. A poll still running when the next is
due is skipped and counted, never stacked (Telegraf's rule). `hold_off` defers a due target that is
backing off or whose platform's circuit is open.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from collector.clock import SYSTEM_CLOCK, Clock, wait_at_most
from collector.config import TargetConfig

log = logging.getLogger(__name__)
HEARTBEAT_EVERY = 1.0
FIRST_POLL_SPREAD = 10.0


class Scheduler:
    def __init__(
        self,
        targets: Sequence[TargetConfig],
        poll: Callable[[TargetConfig], Awaitable[object]],
        *,
        max_concurrency: int,
        jitter: float,
        on_skip: Callable[[TargetConfig], None],
        hold_off: Callable[[TargetConfig], float] = lambda _t: 0.0,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.targets = list(targets)
        self.poll, self.on_skip, self.hold_off = poll, on_skip, hold_off
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.clock = clock
        self._limit = asyncio.Semaphore(max_concurrency)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self.last_heartbeat = self.clock.monotonic()

    def alive(self, stall_after: float = 10.0) -> bool:
        return self.clock.monotonic() - self.last_heartbeat < stall_after

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule until `stop` is set; in-flight polls are left to `drain`."""
        now = self.clock.monotonic()
        # Random phases spread the first polls; capped so a 10-minute target still reports early.
        due = [
            (now + self.rng.random() * min(t.interval, FIRST_POLL_SPREAD), i, t)
            for i, t in enumerate(self.targets)
        ]
        heapq.heapify(due)
        while not stop.is_set():
            self.last_heartbeat = self.clock.monotonic()
            if not due:
                await wait_at_most(self.clock, HEARTBEAT_EVERY, stop.wait())
                continue
            when, index, target = due[0]
            delay = when - self.clock.monotonic()
            if delay > 0:
                await wait_at_most(self.clock, min(delay, HEARTBEAT_EVERY), stop.wait())
                continue
            heapq.heappop(due)
            wait = self.hold_off(target)
            if wait > 0:
                # Backing off or the platform's circuit is open: come back when it may go.
                heapq.heappush(due, (self.clock.monotonic() + wait, index, target))
                continue
            self._start(target)
            step = target.interval * (1 + self.rng.uniform(-self.jitter, self.jitter))
            # After a stall (suspend, overload) resume from now instead of firing a burst of catch-ups.
            heapq.heappush(due, (max(when + step, self.clock.monotonic() + step / 2), index, target))

    def _start(self, target: TargetConfig) -> None:
        running = self._inflight.get(target.name)
        if running is not None and not running.done():
            self.on_skip(target)
            log.debug("%s: previous poll still running, skipped", target.name)
            return
        task = asyncio.create_task(self._limited(target), name=f"poll:{target.name}")
        task.add_done_callback(_log_crash)
        self._inflight[target.name] = task

    async def _limited(self, target: TargetConfig) -> None:
        async with self._limit:
            await self.poll(target)

    async def drain(self, grace: float) -> None:
        """Let in-flight polls finish for up to `grace` seconds, then cancel the rest."""
        tasks = [t for t in self._inflight.values() if not t.done()]
        if not tasks:
            return
        log.info("waiting up to %.0fs for %d in-flight polls", grace, len(tasks))
        await wait_at_most(self.clock, grace, asyncio.wait(tasks))
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("cancelled %d polls still running after %.0fs", len(pending), grace)


def _log_crash(task: asyncio.Task[None]) -> None:
    # The poller classifies everything a platform does; what reaches here is a bug in the core.
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s crashed", task.get_name(), exc_info=exc)
