"""The batched writer between pollers and the database.

Pollers hand over records without waiting. Each record first goes to the durable spool (when one is
configured), then into memory; the writer flushes memory in batches, one transaction each, and
acknowledges the spool once a batch is committed. When the database fails, records wait and are
written, in order, once it answers again. Memory holds at most `pending_limit` records: beyond that,
records wait in the spool only and are read back once memory drains, so memory is always the oldest
unwritten part of the spool and an acknowledgement never covers a record that was not written. Only a
record that could not be spooled is dropped when memory is full (counted and logged). On start,
whatever the spool still holds from a previous run is queued first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from collector.api import PollRecord
from collector.metrics import SelfMetrics
from collector.spool import Spool
from collector.store import Store

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
        spool: Spool | None = None,
    ) -> None:
        self.store, self.metrics, self.spool = store, metrics, spool
        self.flush_interval, self.batch_size = flush_interval, batch_size
        self.pending_limit, self.raw_retention = pending_limit, raw_retention
        self.pending: deque[tuple[int | None, PollRecord]] = deque()
        self._wake = asyncio.Event()
        self._failures = 0
        self._next_purge = time.monotonic()
        self._spooled_only = 0  # records in the spool, not in memory, to read back when memory drains
        self._full_logged = False
        self._spool_failing = False
        # `run` and a fleet handover may both flush: two flushes must not take the same batch.
        self._flushing = asyncio.Lock()
        # Read at scrape time: setting three gauges per submitted record was a visible part of a poll.
        metrics.pending.set_function(lambda: len(self.pending))
        if spool is not None:
            metrics.spool_records.set_function(lambda: spool.depth)
            metrics.spool_bytes.set_function(lambda: spool.size_bytes)
            waiting = self._read_back()
            if waiting:
                log.info("replaying %d records kept in the spool by a previous run", waiting)

    def _read_back(self) -> int:
        """Fill memory from the spool's unacknowledged records; returns how many were waiting."""
        assert self.spool is not None and not self.pending
        loaded = self.spool.replay(limit=self.pending_limit)
        self.pending.extend(loaded)
        # Nothing readable came back (only undecodable lines remain): stop asking until new records.
        self._spooled_only = max(0, self.spool.depth - len(loaded)) if loaded else 0
        return self.spool.depth

    def submit(self, record: PollRecord) -> None:
        seq = None
        if self.spool is not None:
            try:
                seq = self.spool.append(record)
                self._spool_failing = False
            except OSError as exc:  # a full or failing disk must not stop collection
                self._spool_failing = True
                log.error("spool append failed, record kept in memory only: %s", exc)
        if self._spooled_only or len(self.pending) >= self.pending_limit:
            self._overflow(seq)
        else:
            self.pending.append((seq, record))
        # While the database is failing the retry backoff decides when to try again, not the load.
        if len(self.pending) >= self.batch_size and not self._failures:
            self._wake.set()

    def readiness(self) -> str | None:
        """None while collected records have a durable place to go: the database, or else the spool."""
        if not self._failures:
            return None
        if self.spool is not None and not self._spool_failing:
            return None
        where = "no spool" if self.spool is None else "the spool refuses writes"
        return f"database unreachable ({self._failures} failed writes) and {where}"

    def _overflow(self, seq: int | None) -> None:
        if seq is not None:
            self._spooled_only += 1
        else:
            self.metrics.dropped.labels("memory_cap").inc()
        if not self._full_logged:
            self._full_logged = True
            log.error(
                "write buffer full (%d records; the database has been failing for a while): further "
                "records wait in the spool only%s",
                self.pending_limit,
                "" if self.spool else " -- there is no spool, so they are dropped",
            )

    async def run(self) -> None:
        """Flush forever; cancel it and call `flush` to drain at shutdown."""
        while True:
            delay = self.flush_interval if not self._failures else min(MAX_RETRY_DELAY, 2.0**self._failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                await self.flush_once()
                if time.monotonic() >= self._next_purge and not self._failures:
                    await self._purge_snapshots()
            except Exception:  # the writer must outlive any surprise; the records stay queued
                log.exception("writer iteration failed; retrying")
                self._failures += 1

    async def flush_once(self) -> bool:
        """Write everything pending in batches; False when the database refused (records kept)."""
        async with self._flushing:
            return await self._flush_pending()

    async def _flush_pending(self) -> bool:
        if self.spool is not None and self.pending:
            self._sync_spool()
        while self.pending or (self._spooled_only and self.spool is not None):
            if not self.pending:
                self._read_back()
                continue
            batch = [self.pending[i] for i in range(min(self.batch_size, len(self.pending)))]
            try:
                written = await self.store.write([record for _, record in batch])
            except Exception as exc:  # any driver or network error: keep the records and retry later
                self.metrics.write_failures.inc()
                if self._failures == 0:
                    log.warning("database write failed, buffering records: %s", _short(exc))
                self._failures += 1
                return False
            for _ in batch:
                self.pending.popleft()
            acked = [seq for seq, _ in batch if seq is not None]
            if self.spool is not None and acked:
                try:
                    self.spool.ack(max(acked))
                except OSError as exc:  # written already; the spool just replays it (idempotently)
                    log.error("spool acknowledgement failed: %s", exc)
            self.metrics.samples_written.inc(written)
            if self._failures:
                log.info("database writes recovered after %d failed attempts", self._failures)
                self._failures = 0
                self._full_logged = False
        return True

    async def _flush_before(self, deadline: float) -> bool:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await self.flush_once()
        except TimeoutError:
            return False

    def _sync_spool(self) -> None:
        assert self.spool is not None
        try:
            self.spool.sync()
        except OSError as exc:
            log.error("spool fsync failed: %s", exc)

    async def flush(self, deadline: float) -> None:
        """Drain at shutdown, retrying until `deadline` (monotonic seconds); the spool keeps the rest."""
        while not await self._flush_before(deadline):
            if time.monotonic() >= deadline:
                where = "kept in the spool for the next start" if self.spool else "lost"
                waiting = len(self.pending) + self._spooled_only
                log.error("shutdown: %d records not written to the database, %s", waiting, where)
                break
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        if self.spool is not None:
            self._sync_spool()

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
