"""Backfills: re-parse stored bodies, fetch what the platforms still hold, find and fill gaps.

Each backfill is a job (`collector.jobs`) whose work is a list of units planned the same way every
time from the job's arguments, so an interrupted job resumes at its cursor. Every value goes through
the store's unique key (target, metric, time): running a backfill twice, or beside the live service,
never duplicates a sample. Network work goes through the same fetchers, host limiter and proxies as
the live polls (`Poller.fetcher_for`), so a backfill run by the service shares its politeness budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from collector.api import (
    HistoryGap,
    HistoryPoint,
    KindSpec,
    PollContext,
    PollRecord,
    RawResponse,
    TargetConfig,
)
from collector.config import Config
from collector.jobs import Job, JobBook, utcnow
from collector.outcomes import Outcome, PollError
from collector.poller import Poller
from collector.store import Store
from schemas.models import LiveSessionKeyRow, LiveSessionRow, RawSnapshotRow, SampleRow, TargetRow
from schemas.types import LiveStatus, ParseResult, Sample

log = logging.getLogger(__name__)

KINDS = ("reprocess", "history", "gaps")
NETWORK_KINDS = ("history", "gaps")  # these fetch from the platforms; reprocess reads the database only
GAP_INTERVALS = 3.0  # a stretch longer than this many intervals without a sample is a gap
SAVE_EVERY = 50  # reprocess units (snapshots) between progress saves
HEARTBEAT_EVERY = 3.0
REPARSED_OUTCOMES = (
    Outcome.OK,
    Outcome.NOT_LIVE,
    Outcome.PARSE_FAILURE,
    Outcome.ADAPTER_ERROR,
)  # seconds; well inside jobs.STALE_AFTER


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class Scope:
    """Which stored data or targets a job covers (its arguments)."""

    since: datetime | None = None
    until: datetime | None = None
    targets: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Scope:
        return cls(
            _time(args.get("since")),
            _time(args.get("until")),
            tuple(args.get("targets", ())),
            tuple(args.get("platforms", ())),
            tuple(args.get("kinds", ())),
        )

    def to_args(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "targets": list(self.targets),
            "platforms": list(self.platforms),
            "kinds": list(self.kinds),
        }

    def selects(self, target: TargetConfig) -> bool:
        return (
            (not self.targets or target.name in self.targets)
            and (not self.platforms or target.platform in self.platforms)
            and (not self.kinds or target.kind in self.kinds)
        )


@dataclass(frozen=True, slots=True)
class Unit:
    """One step of a job: a stored body to re-parse, a session (or a target's list) to fetch, a target
    whose gaps to find."""

    target: str
    key: str = ""  # a snapshot id (reprocess) or a session key (history)

    def describe(self, kind: str) -> str:
        if kind == "reprocess":
            return f"{self.target}: re-parse stored body #{self.key}"
        if kind == "history":
            return (
                f"{self.target}: final counters of session {self.key}"
                if self.key
                else f"{self.target}: its listed sessions"
            )
        return f"{self.target}: find gaps, fetch what the platform still holds for them"


class Backfill:
    """Plans and runs jobs of every kind for one configuration."""

    def __init__(
        self,
        config: Config,
        store: Store,
        book: JobBook,
        poller: Poller | None,
        specs: Callable[[TargetConfig], KindSpec],
        on_progress: Callable[[Job, Unit | None], None] = lambda _job, _unit: None,
    ) -> None:
        self.config, self.store, self.book, self.poller = config, store, book, poller
        self.specs, self.on_progress = specs, on_progress

    @property
    def targets(self) -> dict[str, TargetConfig]:
        return {t.name: t for t in self.config.targets}  # a reload may replace `config`

    def _selected(self, scope: Scope) -> list[TargetConfig]:
        return [t for t in self.config.targets if scope.selects(t)]

    async def plan(self, job: Job) -> list[Unit]:
        if not self.store._ready:
            await self.store.prepare()
        scope = Scope.from_args(job.args)
        if job.kind == "reprocess":
            return await self._plan_reprocess(scope)
        if job.kind == "history":
            units: list[Unit] = []
            for target in self._selected(scope):
                units += await self._history_units(target, scope.since, scope.until)
            return units
        return [Unit(t.name) for t in self._selected(scope)]

    async def run(self, job: Job) -> Job:
        """Run `job` from its cursor to the end; progress is saved as it goes."""
        units = await self.plan(job)
        job.total = len(units)
        self.on_progress(job, None)
        try:
            for index in range(job.cursor, len(units)):
                unit = units[index]
                await self._run_unit(job, unit)
                job.cursor = index + 1
                if job.kind != "reprocess" or job.cursor % SAVE_EVERY == 0 or job.cursor == len(units):
                    await self.book.progress(job, utcnow())
                self.on_progress(job, unit)
        except BaseException:
            # Cancelled (SIGTERM) or the database went away: leave it for `--resume`.
            await self.book.finish(job, "interrupted", utcnow())
            raise
        failed = job.counts.get("failed", 0)
        await self.book.finish(job, "failed" if failed and failed == job.total else "done", utcnow())
        return job

    async def _run_unit(self, job: Job, unit: Unit) -> None:
        if job.kind == "reprocess":
            await self._reprocess(job, unit)
        elif job.kind == "history":
            await self._history(job, self.targets[unit.target], [unit.key] if unit.key else [])
        else:
            await self._gaps(job, self.targets[unit.target], Scope.from_args(job.args))

    def _count(self, job: Job, **more: int) -> None:
        for name, value in more.items():
            job.counts[name] = job.counts.get(name, 0) + value

    # --- reprocess --------------------------------------------------------------------------------

    async def _plan_reprocess(self, scope: Scope) -> list[Unit]:
        wanted = {
            t.name: self.store.target_ids[t.name]
            for t in self._selected(scope)
            if t.name in self.store.target_ids
        }
        by_id = {v: k for k, v in wanted.items()}
        query = select(RawSnapshotRow.id, RawSnapshotRow.target_id).where(
            RawSnapshotRow.target_id.in_(list(by_id)),
            # A page that refused us (blocked, login wall, …) is no parser question; re-reading the
            # other bodies of such a poll would make a partial poll out of a failed one.
            RawSnapshotRow.outcome.in_(REPARSED_OUTCOMES),
        )
        if scope.since is not None:
            query = query.where(RawSnapshotRow.fetched_at >= scope.since)
        if scope.until is not None:
            query = query.where(RawSnapshotRow.fetched_at < scope.until)
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(query.order_by(RawSnapshotRow.id))
            return [Unit(by_id[target_id], str(id_)) for id_, target_id in rows]

    async def _reprocess(self, job: Job, unit: Unit) -> None:
        target = self.targets[unit.target]
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(select(RawSnapshotRow).where(RawSnapshotRow.id == int(unit.key)))
            ).one_or_none()
        if row is None:  # purged by retention since the job was planned
            self._count(job, skipped=1)
            return
        raw = RawResponse(
            row.url, row.status_code, row.content_type, zlib.decompress(row.body_zlib), row.fetched_at
        )
        try:
            parsed = self.specs(target).reparse(raw)
        except PollError as exc:
            self._count(job, unparsable=1)
            job.errors.append(f"{unit.target} body #{unit.key}: {exc.outcome.value}: {exc.detail}"[:300])
            return
        if parsed is None:
            self._count(job, skipped=1)  # a lookup step or a list: nothing on its own
            return
        record = _record(target, row.observed_at or row.fetched_at, parsed)
        self._count(job, bodies=1, **await self.store.replace_samples([record]))

    # --- history ----------------------------------------------------------------------------------

    async def _sessions_of(
        self, target: TargetConfig, since: datetime | None, until: datetime | None
    ) -> list[SeenSession]:
        """The broadcasts a target reported on (first seen by it, or linked by its samples), each by
        the id this target's kind knows it by (a linked broadcast has one per kind)."""
        target_id = self.store.target_ids.get(target.name)
        if target_id is None:
            return []
        linked = select(SampleRow.session_id).where(
            SampleRow.target_id == target_id, SampleRow.session_id.is_not(None)
        )
        query = select(
            LiveSessionRow.id,
            LiveSessionRow.session_key,
            LiveSessionRow.started_at,
            LiveSessionRow.first_seen_at,
            LiveSessionRow.ended_at,
        ).where(or_(LiveSessionRow.target_id == target_id, LiveSessionRow.id.in_(linked.distinct())))
        if since is not None:
            query = query.where(func.coalesce(LiveSessionRow.ended_at, LiveSessionRow.last_seen_at) >= since)
        if until is not None:
            query = query.where(LiveSessionRow.first_seen_at < until)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(LiveSessionRow.first_seen_at, LiveSessionRow.id))).all()
            ids = [row.id for row in rows]
            keys = await conn.execute(
                select(LiveSessionKeyRow.session_id, LiveSessionKeyRow.source, LiveSessionKeyRow.session_key)
                .where(LiveSessionKeyRow.session_id.in_(ids))
            )  # fmt: skip
        by_source: dict[int, dict[str, str]] = {}
        for session_id, source, key in keys:
            by_source.setdefault(session_id, {})[source] = key
        seen = []
        for row in rows:
            known = by_source.get(row.id, {})
            key = known.get(target.kind, None if known else row.session_key)
            if key is not None:  # None: only another kind of source knows this broadcast's id
                seen.append(SeenSession(key, row.started_at or row.first_seen_at, row.ended_at))
        return seen

    async def _history_units(
        self, target: TargetConfig, since: datetime | None, until: datetime | None
    ) -> list[Unit]:
        spec = self.specs(target)
        if spec.history is None:
            return []
        if spec.history_lists_sessions:
            return [Unit(target.name)]
        return [Unit(target.name, s.key) for s in await self._sessions_of(target, since, until)]

    async def _history(self, job: Job, target: TargetConfig, keys: Sequence[str]) -> set[str]:
        """Fetch and store what the platform still says about these sessions; returns the keys of the
        sessions whose final counters are now stored."""
        spec = self.specs(target)
        assert spec.history is not None and self.poller is not None
        fetcher = self.poller.fetcher_for(target)
        ctx = PollContext(
            target, self.config.platforms[target.platform].base_urls, fetcher, None, spec.new_state()
        )
        answered: set[str] = set()
        try:
            async for item in spec.history(ctx, keys):
                if isinstance(item, HistoryGap):
                    await self.book.record_gap(
                        target.name, item.started_at, item.ended_at, "unfillable", item.detail, job.id
                    )
                    self._count(job, gaps_unfillable=1)
                    continue
                bodies = list(fetcher.responses)  # what this answer was read from
                fetcher.responses.clear()
                parsed = item.parsed if isinstance(item, HistoryPoint) else item
                session = parsed.session
                if session is None or session.status is not LiveStatus.ENDED:
                    # Still running (the live polls cover it) or not a broadcast: nothing final yet.
                    self._count(job, still_live=1)
                    continue
                # Final counters carry the platform's own time: the session's end, else when we asked;
                # a point of a finished broadcast's history (a minute) carries its own.
                at = item.observed_at if isinstance(item, HistoryPoint) else session.ended_at or utcnow()
                record = _record(target, at, parsed)
                record.snapshots = [(raw, None) for raw in bodies]
                inserted = await self.store.write([record], poll_outcomes=False)
                self._count(job, written=inserted, already_stored=len(record.samples) - inserted)
                if not isinstance(item, HistoryPoint):
                    self._count(job, sessions=1)
                if record.samples:
                    answered.add(session.key)
        except PollError as exc:
            self._count(job, failed=1)
            job.errors.append(
                f"{target.name} {','.join(keys) or 'sessions'}: {exc.outcome.value}: {exc.detail}"[:300]
            )
        return answered

    # --- gaps -------------------------------------------------------------------------------------

    async def _gaps(self, job: Job, target: TargetConfig, scope: Scope) -> None:
        spec = self.specs(target)
        gaps = await self.find_gaps(target, scope.since, scope.until)
        answered: set[str] = set()
        if gaps and spec.history is not None:
            sessions = await self._sessions_of(target, None, None)
            keys = [s.key for s in sessions if any(s.overlaps(a, b) for a, b in gaps)]
            if keys or spec.history_lists_sessions:
                answered = await self._history(job, target, keys)
            # Final counters sit at the platform's end time, inside a gap: look again, so this run
            # and every later one record the same windows.
            gaps = await self.find_gaps(target, scope.since, scope.until)
        sessions = [s for s in await self._sessions_of(target, None, None) if s.key in answered]
        self._count(job, gaps=len(gaps))
        for start, end in gaps:
            covered = [s.key for s in sessions if s.overlaps(start, end)]
            if covered:
                status = "partial"
                detail = (
                    f"final counters of {', '.join(covered)} fetched afterwards; no values inside the gap"
                )
            elif spec.history is None:
                status, detail = "unfillable", "the platform keeps no past values of this kind"
            else:
                status, detail = "unfillable", "no broadcast of this target could be read for the gap"
            await self.book.record_gap(target.name, start, end, status, detail, job.id)
            self._count(job, **{f"gaps_{status}": 1})

    async def find_gaps(
        self, target: TargetConfig, since: datetime | None, until: datetime | None
    ) -> list[tuple[datetime, datetime]]:
        """Windows in which `target` was due and got no sample: between its polls, longer than
        GAP_INTERVALS intervals, from `since` (or when the target was configured) to `until` (or the
        last poll any target had: a stopped collector is not a gap of every target up to now)."""
        target_id = self.store.target_ids.get(target.name)
        if target_id is None:
            return []
        async with self.store.engine.connect() as conn:
            end = until or await conn.scalar(select(func.max(TargetRow.last_outcome_at)))
            # Nothing was due before the target was configured (a sample from before, such as final
            # counters stamped with a platform's time, is not a poll).
            added = await conn.scalar(select(TargetRow.created_at).where(TargetRow.id == target_id))
            since = max(since, added) if since and added else since or added
            if end is None or since is None or end <= since:
                return []
            query = select(SampleRow.observed_at).where(SampleRow.target_id == target_id).distinct()
            if since is not None:
                query = query.where(SampleRow.observed_at >= since)
            # Final counters fetched later may carry a platform time past the last poll: not a poll.
            query = query.where(SampleRow.observed_at < until if until else SampleRow.observed_at <= end)
            times = sorted(await conn.scalars(query))
        allowed = timedelta(seconds=target.interval * GAP_INTERVALS)
        due = timedelta(seconds=target.interval)
        polled = set(times)
        edges = ([since] if since is not None else []) + times + [end]
        # A gap starts when the next poll was due after the last sample (or at `since`).
        return [(a + due if a in polled else a, b) for a, b in pairwise(edges) if b - a > allowed]


@dataclass(frozen=True, slots=True)
class SeenSession:
    key: str
    began: datetime
    ended: datetime | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.began < end and (self.ended is None or self.ended >= start)


def _record(target: TargetConfig, at: datetime, parsed: ParseResult) -> PollRecord:
    key = parsed.session.key if parsed.session else None
    samples = [
        Sample(
            target.name, target.platform, target.kind, r.metric, r.value, at, r.provenance, key, r.currency
        )
        for r in parsed.readings
    ]
    return PollRecord(target.name, at, Outcome.OK, samples, parsed.session)


async def serve_jobs(backfill: Backfill, owner: str, stop: asyncio.Event, every: float = 2.0) -> None:
    """In the running service: run queued backfill jobs one at a time under the service's own limiter
    (the CLI hands network jobs over while an instance is alive)."""
    book = backfill.book
    beating = asyncio.create_task(keep_alive(book, owner, stop, service_config=backfill.config.source))
    try:
        while not stop.is_set():
            try:
                job_id = await book.next_queued(KINDS)
                job = await book.claim(job_id, owner, utcnow()) if job_id is not None else None
                if job is not None:
                    log.info("running backfill job %d (%s) handed over by the CLI", job.id, job.kind)
                    await backfill.run(job)
                    log.info("backfill job %d %s: %s", job.id, job.status, _counts(job))
            except SQLAlchemyError as exc:  # the database is away: the writer's spool covers the samples
                log.debug("backfill jobs paused: %s", _first_line(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        with contextlib.suppress(SQLAlchemyError):
            await book.instance_gone(owner)


async def keep_alive(
    book: JobBook, owner: str, stop: asyncio.Event, *, service_config: str | None = None
) -> None:
    """Say every few seconds that `owner` lives: its running jobs, and for a service (given the source
    of its configuration) the instance row that makes the CLI hand network jobs over."""
    while not stop.is_set():
        try:
            if service_config is None:
                await book.owner_alive(owner, utcnow())
            else:
                await book.instance_alive(owner, utcnow(), service_config)
        except SQLAlchemyError as exc:
            log.debug("heartbeat not written: %s", _first_line(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEARTBEAT_EVERY)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _counts(job: Job) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(job.counts.items())) or "nothing to do"
