"""Wiring: the long-running service (`collector run`) and the one-shot poll (`collector once`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from collector.adapters import kind_spec, registered_adapters, target_uses_browser
from collector.api import PollRecord
from collector.backfill import Backfill, serve_jobs
from collector.board import CampaignDocuments, board_routes
from collector.change_filter import ChangeFilter
from collector.config import Config, TargetConfig
from collector.fleet import Fleet, Leases
from collector.fleet_budget import fleet_budget
from collector.heap import startup_heap_frozen
from collector.http import HttpClient, OutboundGuard
from collector.jobs import JobBook, this_process, utcnow
from collector.metrics import Check, LiveState, SelfMetrics, start_metrics_server
from collector.migrate import ensure_sqlite_directory
from collector.partitions import keep_maintained
from collector.poller import Poller
from collector.reload import Reloader, ReloadOutcome
from collector.scheduler import Scheduler
from collector.spool import Spool, SpoolInUse
from collector.startup import StartupError, listen_problem, os_problem
from collector.store import Store
from collector.writer import BatchWriter

if TYPE_CHECKING:
    from collector.browser import BrowserPool

log = logging.getLogger(__name__)


def outbound_guard(config: Config) -> OutboundGuard:
    return OutboundGuard(url for p in config.platforms.values() for url in p.base_urls.values())


def needs_browser(config: Config) -> bool:
    return any(target_uses_browser(t) for t in config.active_targets())


@asynccontextmanager
async def browser_pool(config: Config, metrics: SelfMetrics) -> AsyncIterator[BrowserPool | None]:
    """A started Chromium pool when some target needs one (Playwright is imported only then)."""
    if not needs_browser(config):
        yield None
        return
    from collector.browser import BrowserPool

    pool = BrowserPool(config.browser, config.http, metrics, outbound_guard(config))
    try:
        await pool.start()
    except RuntimeError as exc:
        # Adapters fall back to plain HTTP where their page allows; a missing browser must not stop
        # the rest of the collection.
        log.error("%s; browser targets fall back to plain HTTP where they can", exc)
        yield None
        return
    try:
        yield pool
    finally:
        await pool.close()


def _writer(config: Config, store: Store, metrics: SelfMetrics, spool: Spool | None = None) -> BatchWriter:
    c = config.collector
    return BatchWriter(
        store,
        metrics,
        flush_interval=c.flush_interval,
        batch_size=c.batch_size,
        pending_limit=c.pending_limit,
        raw_retention=c.raw_retention,
        spool=spool,
    )


def _open_spool(config: Config, metrics: SelfMetrics) -> Spool:
    c = config.collector
    try:
        return Spool(
            Path(c.spool_dir), max_bytes=c.spool_max_bytes, on_drop=metrics.dropped.labels("spool_cap").inc
        )
    except SpoolInUse as exc:
        raise StartupError("collector.spool_dir", f"{exc} (another collector still running?)") from None
    except OSError as exc:
        raise StartupError(
            "collector.spool_dir", f"{c.spool_dir} cannot be used: {os_problem(exc, c.spool_dir)}"
        ) from None


async def _serve_metrics(
    config: Config,
    metrics: SelfMetrics,
    health: Check,
    readiness: Check,
    reload: Callable[[], Awaitable[ReloadOutcome]],
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.AppRunner:
    listen = config.collector.metrics_listen
    try:
        return await start_metrics_server(listen, metrics, health, readiness, reload, extra_routes)
    except OSError as exc:
        raise StartupError("collector.metrics_listen", listen_problem(str(listen), exc)) from None


async def _prepare(store: Store) -> bool:
    """Migrate and register targets now if the database answers (True); otherwise the writer retries later."""
    try:
        await store.prepare()
    except Exception as exc:
        log.warning(
            "database not reachable at start (%s); collecting into the spool until it is", _brief(exc)
        )
        return False
    return True


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


async def _restore_states(
    store: Store, writer: BatchWriter, poller: Poller, targets: list[TargetConfig]
) -> None:
    """Targets carry on from their stored state (room, estimate baselines, backoff) at start or when a
    fleet replica gains them; fresh when the database cannot give it."""
    if not targets:
        return
    try:
        # Records still waiting here (a previous run's spool) hold newer states than the database.
        if not await writer.flush_once():
            raise ConnectionError("the records waiting in the spool cannot be written")
        restored = await poller.restore_states(targets, store.load_target_states)
    except Exception as exc:
        log.warning("stored target states not loaded (%s); %d targets start fresh", _brief(exc), len(targets))
        return
    log.info("%d of %d targets carry on from their stored state", restored, len(targets))


def _health(scheduler: Scheduler, browser: BrowserPool | None) -> str | None:
    if not scheduler.alive():
        return "scheduler loop stalled"
    if browser is not None and not browser.alive():
        return "browser driver gone"
    return None


async def run_service(config: Config, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Poll until SIGINT/SIGTERM, then finish in-flight polls, flush writes and return."""
    targets = config.active_targets()
    c = config.collector
    ensure_sqlite_directory(c.database_url)  # before `_prepare`, which takes any failure for a passing one
    # A fleet replica polls only the targets it holds a lease on; it starts with none.
    polled = [] if config.fleet.enabled else targets
    live = LiveState(polled)
    metrics = SelfMetrics(live)
    spool = _open_spool(config, metrics)
    store = Store(c.database_url, targets)
    database_answers = await _prepare(store)
    writer = _writer(config, store, metrics, spool)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with (
            HttpClient(config.http, outbound_guard(config)) as http,
            browser_pool(config, metrics) as browser,
            # In fleet mode the politeness budget (spacing, holds, circuits, proxies) is shared in PostgreSQL.
            fleet_budget(config, metrics) as budget,
        ):
            changes = ChangeFilter(c.keep_unchanged_every, writer.submit, metrics.samples_unchanged.inc)
            poller = Poller(config, http, live, metrics, changes, browser, budget)
            if database_answers:
                await _restore_states(store, writer, poller, polled)
            scheduler = Scheduler(
                polled,
                poller.poll,
                max_concurrency=config.collector.max_concurrency,
                jitter=config.collector.jitter,
                on_skip=lambda t: metrics.skipped.labels(t.name).inc(),
                hold_off=poller.hold_off,
                on_lag=metrics.schedule_lag.observe,
            )
            metrics.heartbeat.set_function(
                lambda: time.time() - (time.monotonic() - scheduler.last_heartbeat)
            )
            book, instance = JobBook(store), this_process()
            # The scoreboard shares the /metrics listener; it reads the database, never the live state.
            documents = CampaignDocuments(store.engine, config)
            backfill = Backfill(config, store, book, poller, kind_spec)

            current = [config]  # the configuration in force, replaced by each applied reload

            def polled_now(active: list[TargetConfig]) -> list[TargetConfig]:
                return [t for t in active if fleet is None or t.name in fleet.held]

            async def apply(new: Config, outcome: ReloadOutcome) -> None:
                active = new.active_targets()
                polled = polled_now(active)
                gone, fresh = (*outcome.removed, *outcome.changed), (*outcome.added, *outcome.changed)
                metrics.forget_targets(t for t in live.targets if t.name in gone)
                metrics.describe_targets(t for t in polled if t.name in fresh)
                poller.update_targets(new, gone)
                changes.forget(gone)
                live.set_targets(polled)
                store.targets = active
                backfill.config = new
                documents.config = new
                current[0] = new
                scheduler.update_targets(polled)

            async def moved(
                gained: Sequence[tuple[TargetConfig, float | None]], lost: Collection[str]
            ) -> None:
                """Targets that came to this replica or left it (fleet mode)."""
                metrics.forget_targets(t for t in live.targets if t.name in lost)
                poller.update_targets(current[0], lost)
                changes.forget(lost)
                if lost:  # their next holder loads their state: write it before the leases are released
                    await writer.flush_once()
                await _restore_states(store, writer, poller, [t for t, _ in gained])
                metrics.describe_targets(t for t, _ in gained)
                polled = polled_now(current[0].active_targets())
                live.set_targets(polled)
                scheduler.update_targets(polled, {t.name: delay for t, delay in gained})

            fleet = (
                Fleet(
                    Leases(store.engine, instance, config.fleet.lease, config.source),
                    lambda: {t.name: t for t in current[0].active_targets()},
                    moved,
                    scheduler,
                    metrics,
                    ensure_targets=store.ensure_targets,
                )
                if config.fleet.enabled
                else None
            )
            reload = _reloading(Reloader(config, registered_adapters(), apply), metrics, book, instance)
            server = await _serve_metrics(
                config,
                metrics,
                lambda: _health(scheduler, browser),
                writer.readiness,
                reload,
                board_routes(documents),
            )
            writer_task = asyncio.create_task(writer.run(), name="writer")
            jobs_task = asyncio.create_task(serve_jobs(backfill, instance, stop), name="backfill-jobs")
            partitions_task = asyncio.create_task(
                keep_maintained(store.engine, c.sample_retention), name="sample-partitions"
            )
            fleet_task = None
            if fleet is not None:
                fleet_task = asyncio.create_task(fleet.run(stop), name="fleet")
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.create_task(reload(), name="reload"))
            listen = config.collector.metrics_listen
            log.info(
                "collector running: %d targets, metrics at http://%s/metrics, database %s",
                len(targets),
                listen,
                store.engine.url.render_as_string(hide_password=True),
            )
            if on_ready is not None:
                on_ready(f"http://{listen}")
            try:
                with startup_heap_frozen():
                    await scheduler.run(stop)
                    log.info("stopping: no new polls")
                    await scheduler.drain(config.collector.shutdown_grace)
            finally:
                background = [
                    t for t in (jobs_task, writer_task, partitions_task, fleet_task) if t is not None
                ]
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await writer.flush(time.monotonic() + config.collector.shutdown_grace)
                if fleet is not None:
                    # After the flush, so the next holder sees this replica's last polls.
                    await fleet.stop()
                await server.cleanup()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        spool.close()
        await store.close()
    log.info("collector stopped cleanly")


def _reloading(
    reloader: Reloader, metrics: SelfMetrics, book: JobBook, instance: str
) -> Callable[[], Awaitable[ReloadOutcome]]:
    """One reload at a time; its outcome goes to the metrics, the log and the instance's row (for
    `collector status`)."""
    lock = asyncio.Lock()

    async def reload() -> ReloadOutcome:
        async with lock:
            outcome = await reloader.reload()
            metrics.reload_successful.set(1 if outcome.ok else 0)
            if outcome.ok:
                metrics.reload_timestamp.set_to_current_time()
            try:
                await book.reloaded(instance, utcnow(), outcome.describe())
            except SQLAlchemyError as exc:
                log.warning("reload outcome not recorded in the database: %s", type(exc).__name__)
            return outcome

    return reload


async def poll_once(config: Config) -> list[PollRecord]:
    """Poll every enabled target once, concurrently, and write the results."""
    targets = config.active_targets()
    store = Store(config.collector.database_url, targets)
    try:
        await store.prepare()
        live = LiveState(targets)
        metrics = SelfMetrics(live)
        writer = _writer(config, store, metrics)
        async with (
            HttpClient(config.http, outbound_guard(config)) as http,
            browser_pool(config, metrics) as browser,
        ):
            poller = Poller(config, http, live, metrics, writer.submit, browser)
            await poller.restore_states(targets, store.load_target_states)
            limit = asyncio.Semaphore(config.collector.max_concurrency)

            async def one(target):  # type: ignore[no-untyped-def]
                async with limit:
                    return await poller.poll(target)

            records = await asyncio.gather(*(one(t) for t in targets))
        await writer.flush(time.monotonic() + config.collector.shutdown_grace)
        return list(records)
    finally:
        await store.close()
