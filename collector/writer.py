"""The batched writer between pollers and the database.

Pollers hand over records without waiting; the writer flushes them in batches, one transaction each.
When the database fails, records stay buffered (bounded, with counted and logged drops) and are
written once it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from collector.metrics import SelfMetrics
from collector.store import PollRecord, Store

log = logging.getLogger(__name__)
MAX_RETRY_DELAY = 30.0
PURGE_EVERY = 3600.0


class BatchWriter:
    def __init__(
        self,
        store: Store,
        metrics: SelfMetrics,
        *,
        flush_interval: float,
        batch_size: int,
        pending_limit: int,
        raw_retention: float,
    ) -> None:
        self.store, self.metrics = store, metrics
        self.flush_interval, self.batch_size = flush_interval, batch_size
        self.pending_limit, self.raw_retention = pending_limit, raw_retention
        self.pending: deque[PollRecord] = deque()
        self._wake = asyncio.Event()
        self._failures = 0
        self._next_purge = time.monotonic()

    def submit(self, record: PollRecord) -> None:
        self.pending.append(record)
        if len(self.pending) > self.pending_limit:
            self.pending.popleft()
            self.metrics.dropped.inc()
            log.error(
                "write buffer full (%d records): dropped the oldest record; the database has been "
                "failing for a while",
                self.pending_limit,
            )
        self.metrics.pending.set(len(self.pending))
        if len(self.pending) >= self.batch_size:
            self._wake.set()

    async def run(self) -> None:
        """Flush forever; cancel it and call `flush` to drain at shutdown."""
        while True:
            delay = self.flush_interval if not self._failures else min(MAX_RETRY_DELAY, 2.0**self._failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            await self.flush_once()
            if time.monotonic() >= self._next_purge and not self._failures:
                await self._purge_snapshots()

    async def flush_once(self) -> bool:
        """Write everything pending in batches; False when the database refused (records kept)."""
        while self.pending:
            batch = [self.pending[i] for i in range(min(self.batch_size, len(self.pending)))]
            try:
                written = await self.store.write(batch)
            except Exception as exc:  # any driver or network error: keep the records and retry later
                self.metrics.write_failures.inc()
                if self._failures == 0:
                    log.warning("database write failed, buffering records: %s", _short(exc))
                self._failures += 1
                return False
            for _ in batch:
                self.pending.popleft()
            self.metrics.samples_written.inc(written)
            self.metrics.pending.set(len(self.pending))
            if self._failures:
                log.info("database writes recovered after %d failed attempts", self._failures)
                self._failures = 0
        return True

    async def flush(self, deadline: float) -> None:
        """Drain at shutdown, retrying until `deadline` (monotonic seconds)."""
        while not await self.flush_once():
            if time.monotonic() >= deadline:
                log.error("shutdown: %d records could not be written to the database", len(self.pending))
                return
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    async def _purge_snapshots(self) -> None:
        self._next_purge = time.monotonic() + PURGE_EVERY
        cutoff = datetime.now(UTC) - timedelta(seconds=self.raw_retention)
        try:
            removed = await self.store.purge_snapshots(cutoff)
        except Exception as exc:
            log.warning("raw snapshot purge failed: %s", _short(exc))
            return
        if removed:
            log.info("purged %d raw snapshots older than %s", removed, cutoff.isoformat(timespec="seconds"))


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}"
