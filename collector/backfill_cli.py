"""`collector backfill`: the operator's backfills as resumable jobs, with progress on a terminal or in a log.

Network backfills (`history`, `gaps`) are handed to a running `collector run` when one is alive, so
they share its per-host politeness budget; with no service running, this process runs them itself.
`reprocess` reads only the database and always runs here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import click

from collector.adapters import kind_spec
from collector.backfill import NETWORK_KINDS, Backfill, Scope, Unit, keep_alive
from collector.cli_common import (
    SetupFailed,
    config_option,
    database_errors,
    format_option,
    load_config_or_exit,
    show,
    when,
)
from collector.config import Config
from collector.jobs import FINISHED, STALE_AFTER, Job, JobBook, this_process, utcnow
from collector.listing import Listing
from collector.store import Store
from collector.views import iso_utc

FOLLOW_EVERY = 0.5  # seconds between reads of a job the service runs
PLAIN_EVERY = 5.0  # seconds between progress lines in a pipe or log
DRY_RUN_SHOWN = 40


def _scope_options(command):  # type: ignore[no-untyped-def]
    for option in reversed(
        (
            click.option("--since", help="Start (inclusive): ISO 8601 time or a duration ago, e.g. 6h."),
            click.option("--until", help="End (exclusive): ISO 8601 time or a duration ago."),
            click.option("--target", "targets", multiple=True, help="Only this target (repeatable)."),
            click.option("--platform", "platforms", multiple=True, help="Only this platform (repeatable)."),
            click.option("--kind", "kinds", multiple=True, help="Only targets of this kind (repeatable)."),
            click.option("--dry-run", is_flag=True, help="Print what would be read or fetched, and stop."),
        )
    ):
        command = option(command)
    return command


@click.group()
def backfill() -> None:
    """Re-parse stored bodies, fetch what platforms still hold, find and fill gaps (resumable jobs)."""


def _start(kind: str, config_path: str, since, until, targets, platforms, kinds, dry_run) -> None:  # type: ignore[no-untyped-def]
    config = load_config_or_exit(config_path)
    known = {t.name for t in config.targets}
    if unknown := [name for name in targets if name not in known]:
        raise SetupFailed(f"--target: no such target {', '.join(map(repr, unknown))} in {config.source}")
    scope = Scope(
        when(since), when(until) or (utcnow() if kind == "reprocess" else None), targets, platforms, kinds
    )
    with database_errors(config):
        sys.exit(asyncio.run(_begin(config, kind, scope, dry_run)))


@backfill.command()
@config_option
@_scope_options
def reprocess(config_path: str, **scope: Any) -> None:
    """Re-parse stored raw bodies with today's parsers and replace the values they give.

    Reports how many values were added, changed and unchanged. Only kept bodies can be re-parsed:
    every failed poll's, one in `collector.snapshot_success_every` good ones, and every body of a
    target with `keep_every_body = true`.
    """
    _start("reprocess", config_path, **scope)


@backfill.command()
@config_option
@_scope_options
def history(config_path: str, **scope: Any) -> None:
    """Fetch what the platforms still hold: final counters of the sessions the targets saw (ended TikTok
    rooms, Facebook live videos) and the shop dashboard's sessions, at the platforms' own times."""
    _start("history", config_path, **scope)


@backfill.command()
@config_option
@_scope_options
def gaps(config_path: str, **scope: Any) -> None:
    """Find windows where a target was due and got no sample, fetch what can still be fetched for them,
    and record every gap (see `collector export --gaps`); values inside a gap are never invented."""
    _start("gaps", config_path, **scope)


@backfill.command()
@config_option
@click.argument("job_id", type=int)
def resume(config_path: str, job_id: int) -> None:
    """Continue an interrupted job from its cursor (nothing it already wrote is written twice)."""
    config = load_config_or_exit(config_path)
    with database_errors(config):
        sys.exit(asyncio.run(_resume(config, job_id)))


@backfill.command("list")
@config_option
@format_option
def list_jobs(config_path: str, fmt: str) -> None:
    """The newest backfill jobs: kind, status, progress and what they did."""
    config = load_config_or_exit(config_path)
    with database_errors(config):
        jobs = asyncio.run(_read(config, lambda book: book.list()))
    listing = Listing(("job", "kind", "status", "progress", "created"))
    for job in jobs:
        listing.add(str(job.id), job.kind, job.status, _fraction(job), iso_utc(job.created_at) or "",
                    details=[_counts(job)])  # fmt: skip
    show(fmt, listing, {"jobs": [_document(job) for job in jobs]})


@backfill.command("show")
@config_option
@format_option
@click.argument("job_id", type=int)
def show_job(config_path: str, fmt: str, job_id: int) -> None:
    """One job in full: its arguments, cursor, counts and errors."""
    config = load_config_or_exit(config_path)
    with database_errors(config):
        try:
            job = asyncio.run(_read(config, lambda book: book.get(job_id)))
        except LookupError as exc:
            raise SetupFailed(str(exc)) from None
    listing = Listing(("job", "kind", "status", "progress", "owner"))
    details = (
        [f"{k}: {v}" for k, v in job.args.items() if v] + [_counts(job)] + [f"error: {e}" for e in job.errors]
    )
    listing.add(str(job.id), job.kind, job.status, _fraction(job), job.owner or "", details=details)
    show(fmt, listing, _document(job))


# --- running ----------------------------------------------------------------------------------------


async def _read(config: Config, query):  # type: ignore[no-untyped-def]
    store = Store(config.collector.database_url, config.targets)
    try:
        await store.prepare()
        return await query(JobBook(store))
    finally:
        await store.close()


async def _begin(config: Config, kind: str, scope: Scope, dry_run: bool) -> int:
    store = Store(config.collector.database_url, config.targets)
    try:
        await store.prepare()
        book = JobBook(store)
        if dry_run:
            draft = Job(0, kind, scope.to_args(), "draft", 0, None)
            units = await Backfill(config, store, book, None, kind_spec).plan(draft)
            _print_plan(kind, units)
            return 0
        job = await book.create(kind, scope.to_args(), utcnow())
        return await _execute(config, store, book, job)
    finally:
        await store.close()


async def _resume(config: Config, job_id: int) -> int:
    store = Store(config.collector.database_url, config.targets)
    try:
        await store.prepare()
        book = JobBook(store)
        try:
            job = await book.get(job_id)
        except LookupError as exc:
            raise SetupFailed(str(exc)) from None
        if job.status in FINISHED:
            click.echo(f"job {job.id} ({job.kind}) is already {job.status}: {_counts(job)}", err=True)
            return 0 if job.status == "done" else 1
        if job.status == "running" and not _owner_gone(job):
            click.echo(f"job {job.id} is being run by {job.owner}; following it", err=True)
            return await _follow(book, job)
        await book.interrupted(job.id)  # its owner is gone: free it for whoever resumes it
        click.echo(f"resuming job {job.id} ({job.kind}) at {_fraction(job)}", err=True)
        return await _execute(config, store, book, await book.get(job.id))
    finally:
        await store.close()


def _owner_gone(job: Job) -> bool:
    """The job's process is not alive: on this host, ask the OS; elsewhere, its heartbeat went stale."""
    host, _, pid = (job.owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return job.heartbeat_at is None or utcnow() - job.heartbeat_at > STALE_AFTER


async def _execute(config: Config, store: Store, book: JobBook, job: Job) -> int:
    if job.kind in NETWORK_KINDS:
        instances = await book.live_instances(utcnow())
        if instances:
            if job.status != "queued":
                await book.requeue(job.id)
            names = ", ".join(i.id for i in instances)
            click.echo(
                f"job {job.id} ({job.kind}) handed to the running collector ({names}), which fetches "
                "within its per-host limits",
                err=True,
            )
            return await _follow(book, await book.get(job.id))
    return await _run_here(config, store, book, job)


async def _run_here(config: Config, store: Store, book: JobBook, job: Job) -> int:
    owner = this_process()
    claimed = await book.claim(job.id, owner, utcnow())
    if claimed is None:
        raise SetupFailed(f"job {job.id} was claimed by another process meanwhile")
    report = Progress(claimed)
    stop = asyncio.Event()
    beating = asyncio.create_task(keep_alive(book, owner, stop))
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        if claimed.kind in NETWORK_KINDS:
            done = await _run_fetching(config, store, book, claimed, report)
        else:
            done = await Backfill(config, store, book, None, kind_spec, report.update).run(claimed)
    except asyncio.CancelledError:
        report.close()
        click.echo(
            f"job {job.id} interrupted; continue it with: collector backfill resume {job.id}", err=True
        )
        return 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stop.set()
        await asyncio.gather(beating, return_exceptions=True)
    report.close()
    _summary(done)
    return 0 if done.status == "done" else 1


async def _run_fetching(config: Config, store: Store, book: JobBook, job: Job, report: Progress) -> Job:
    # Imported here: a reprocess or a listing never needs the HTTP stack.
    from collector.http import HttpClient
    from collector.metrics import LiveState, SelfMetrics
    from collector.poller import Poller
    from collector.service import outbound_guard

    live = LiveState(config.active_targets())
    async with HttpClient(config.http, outbound_guard(config)) as http:
        poller = Poller(config, http, live, SelfMetrics(live), lambda _record: None)
        return await Backfill(config, store, book, poller, kind_spec, report.update).run(job)


async def _follow(book: JobBook, job: Job) -> int:
    """Show the progress of a job another process runs, until it ends."""
    report = Progress(job)
    while job.status not in (*FINISHED, "interrupted"):
        await asyncio.sleep(FOLLOW_EVERY)
        job = await book.get(job.id)
        report.update(job, None)
        if job.status == "queued" and not await book.live_instances(utcnow()):
            report.close()
            click.echo(
                f"job {job.id} is queued but no collector is running; run: collector backfill resume {job.id}",
                err=True,
            )
            return 1
    report.close()
    _summary(job)
    return 0 if job.status == "done" else 1


# --- output -----------------------------------------------------------------------------------------


class Progress:
    """A progress bar with rate and ETA on a terminal; a plain line every few seconds in a pipe or log."""

    def __init__(self, job: Job, stream: TextIO | None = None) -> None:
        self.job, self.stream = job, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.start_cursor = job.cursor
        self.last_line = 0.0
        self.drawn = False

    def update(self, job: Job, _unit: Unit | None) -> None:
        self.job = job
        now = time.monotonic()
        if not self.tty and now - self.last_line < PLAIN_EVERY and job.cursor != job.total:
            return
        self.last_line = now
        line = self._line(now)
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _line(self, now: float) -> str:
        job, total = self.job, self.job.total
        done = job.cursor - self.start_cursor
        rate = done / max(now - self.started, 1e-6)
        head = f"job {job.id} {job.kind}"
        if not total:
            return f"{head}: planning"
        eta = (total - job.cursor) / rate if rate > 0 else None
        tail = f"{job.cursor}/{total} {rate:.1f}/s ETA {_duration(eta)}"
        if not self.tty:
            return f"{head}: {tail} ({100 * job.cursor // total}%)"
        width = max(10, min(30, _columns() - len(head) - len(tail) - 6))
        filled = width * job.cursor // total
        return f"{head} [{'#' * filled}{'.' * (width - filled)}] {tail}"

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.drawn = False


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size().columns


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _fraction(job: Job) -> str:
    return f"{job.cursor}/{job.total}" if job.total is not None else "-"


def _counts(job: Job) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(job.counts.items())) or "nothing done yet"


def _summary(job: Job) -> None:
    click.echo(f"job {job.id} {job.kind} {job.status}: {_counts(job)}")
    for error in job.errors[:5]:
        click.echo(f"  error: {error}")
    if len(job.errors) > 5:
        click.echo(f"  … {len(job.errors) - 5} more errors: collector backfill show {job.id}")


def _print_plan(kind: str, units: Sequence[Unit]) -> None:
    verb = "read" if kind == "reprocess" else "fetch"
    click.echo(f"{kind}: would {verb} {len(units)} item{'s' if len(units) != 1 else ''}")
    for unit in units[:DRY_RUN_SHOWN]:
        click.echo(f"  {unit.describe(kind)}")
    if len(units) > DRY_RUN_SHOWN:
        click.echo(f"  … and {len(units) - DRY_RUN_SHOWN} more")


def _document(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "args": job.args,
        "cursor": job.cursor,
        "total": job.total,
        "counts": job.counts,
        "errors": job.errors,
        "owner": job.owner,
        "created_at": iso_utc(job.created_at),
        "started_at": iso_utc(job.started_at),
        "finished_at": iso_utc(job.finished_at),
    }
