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
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from collector.clock import SYSTEM_CLOCK, Clock, wait_at_most
from collector.config import TargetConfig

log = logging.getLogger(__name__)
HEARTBEAT_EVERY = 1.0
FIRST_POLL_SPREAD = 60.0


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
        on_lag: Callable[[float], None] = lambda _s: None,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        # The targets now scheduled, by name; a heap entry whose target is no longer the one here
        # (removed, or changed by a reload) is dropped when it comes up.
        self.targets = {t.name: t for t in targets}
        self._due: list[tuple[float, int, TargetConfig]] = []
        self._order = 0
        self.poll, self.on_skip, self.hold_off, self.on_lag = poll, on_skip, hold_off, on_lag
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.clock = clock
        self._limit = asyncio.Semaphore(max_concurrency)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self.last_heartbeat = self.clock.monotonic()
        for target in self.targets.values():
            self._enter(target)

    def alive(self, stall_after: float = 10.0) -> bool:
        return self.clock.monotonic() - self.last_heartbeat < stall_after

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule until `stop` is set; in-flight polls are left to `drain`."""
        due = self._due
        while not stop.is_set():
            self.last_heartbeat = self.clock.monotonic()
            if not due:
                await wait_at_most(self.clock, HEARTBEAT_EVERY, stop.wait())
                continue
            when, order, target = due[0]
            if self.targets.get(target.name) is not target:
                heapq.heappop(due)  # removed or replaced by a reload
                continue
            delay = when - self.clock.monotonic()
            if delay > 0:
                await wait_at_most(self.clock, min(delay, HEARTBEAT_EVERY), stop.wait())
                continue
            heapq.heappop(due)
            wait = self.hold_off(target)
            if wait > 0:
                # Backing off or the platform's circuit is open: come back when it may go.
                heapq.heappush(due, (self.clock.monotonic() + wait, order, target))
                continue
            self._start(target, when)
            step = target.interval * (1 + self.rng.uniform(-self.jitter, self.jitter))
            # After a stall (suspend, overload) resume from now instead of firing a burst of catch-ups.
            heapq.heappush(due, (max(when + step, self.clock.monotonic() + step / 2), order, target))

    def _enter(self, target: TargetConfig, delay: float | None = None) -> None:
        # Random phases over the whole interval spread the polls evenly: spread over less, they bunch
        # (15-s targets spread over 10 s kept 1.5x the mean rate due for two thirds of every interval
        # until the jitter evened them out, minutes later). Capped so a 10-minute target still reports
        # within a minute.
        if delay is None:
            delay = self.rng.random() * min(target.interval, FIRST_POLL_SPREAD)
        first = self.clock.monotonic() + delay
        self._order += 1
        heapq.heappush(self._due, (first, self._order, target))

    def update_targets(
        self, targets: Sequence[TargetConfig], first_polls: Mapping[str, float | None] | None = None
    ) -> None:
        """Schedule a new set of targets (a reload, or targets moving between fleet replicas): added
        ones start after their delay in `first_polls` or else at a random phase, removed ones stop
        after any poll in flight, a changed one starts over; unchanged ones keep their cadence."""
        new = {t.name: t for t in targets}
        old, self.targets = self.targets, new
        first_polls = first_polls or {}
        for name, target in new.items():
            if old.get(name) != target:
                self._enter(target, first_polls.get(name))
            else:
                new[name] = old[name]  # the same object the heap holds

    def due_in(self, names: Collection[str]) -> dict[str, float]:
        """Seconds until each of `names` is next due (a target handed to another replica keeps them)."""
        now = self.clock.monotonic()
        return {
            t.name: max(0.0, when - now)
            for when, _, t in self._due
            if t.name in names and self.targets.get(t.name) is t
        }

    def busy(self, name: str) -> bool:
        """Whether a poll of the target is running now."""
        running = self._inflight.get(name)
        return running is not None and not running.done()

    def _start(self, target: TargetConfig, due: float) -> None:
        running = self._inflight.get(target.name)
        if running is not None and not running.done():
            self.on_skip(target)
            log.debug("%s: previous poll still running, skipped", target.name)
            return
        task = asyncio.create_task(self._limited(target, due), name=f"poll:{target.name}")
        task.add_done_callback(_log_crash)
        self._inflight[target.name] = task

    async def _limited(self, target: TargetConfig, due: float) -> None:
        async with self._limit:
            # Lateness past the due time: a busy event loop and a full concurrency bound both show here.
            self.on_lag(self.clock.monotonic() - due)
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
