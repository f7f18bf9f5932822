"""Prometheus exposition: the latest value of every series from an in-memory snapshot, plus self-metrics.

`/metrics` never touches the network or the database: pollers update `LiveState`, and a custom
collector turns it into metric families on each scrape.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from collector.config import HostPort, TargetConfig
from schemas.types import Sample

if TYPE_CHECKING:
    from collector.reload import ReloadOutcome

PREFIX = "livestream"
SERIES_LABELS = ("platform", "target", "kind", "campaign", "provenance")
MONEY_METRICS = {"revenue", "revenue_confirmed"}
STALE_AFTER_POLLS = 5
STALE_AFTER_MIN = 300.0
_HELP = {
    "viewers": "Concurrent viewers of the live session now.",
    "peak_viewers": "Peak concurrent viewers of the live session.",
    "views": "Cumulative views (entries) of the live session.",
    "unique_viewers": "Distinct viewers of the live session so far (shop's own API).",
    "likes": "Cumulative likes of the live session or video.",
    "comments": "Cumulative comments.",
    "shares": "Cumulative shares.",
    "followers": "Followers of the account.",
    "new_followers": "Followers gained during the live session.",
    "orders": "Orders attributed to the live session.",
    "items_sold": "Items sold in the live session.",
    "buyers": "Customers who ordered in the live session (shop's own API).",
    "revenue": "Revenue (placed GMV, or estimated) in the currency's base unit (VND has no minor unit).",
    "orders_confirmed": "Confirmed orders of the live session (shop dashboard).",
    "items_sold_confirmed": "Confirmed items sold in the live session (shop dashboard).",
    "revenue_confirmed": "Confirmed GMV of the live session in the currency's base unit.",
    "items_on_sale": "Products in the live session's bag.",
    "hashtag_views": "Views of videos under the hashtag.",
    "hashtag_posts": "Videos posted under the hashtag.",
    "live_status": "Live status: 0 unknown, 1 scheduled, 2 live, 3 paused, 4 ended.",
}


@dataclass(frozen=True, slots=True)
class _Latest:
    value: float
    observed_at: datetime
    provenance: str
    currency: str | None


def stale_after(target: TargetConfig) -> float:
    return max(STALE_AFTER_POLLS * target.interval, STALE_AFTER_MIN)


class LiveState:
    """The latest value per (target, metric), written by pollers, read by scrapes."""

    def __init__(self, targets: Iterable[TargetConfig]) -> None:
        self._targets = {t.name: t for t in targets}
        self._latest: dict[tuple[str, str], _Latest] = {}

    def set_targets(self, targets: Iterable[TargetConfig]) -> None:
        """A reload: series of targets no longer configured leave /metrics at once."""
        self._targets = {t.name: t for t in targets}
        self._latest = {key: v for key, v in self._latest.items() if key[0] in self._targets}

    def update(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._latest[(s.target, s.metric.value)] = _Latest(
                s.value, s.observed_at, s.provenance.value, s.currency
            )

    def families(self) -> Iterator[Metric]:
        by_metric: dict[str, GaugeMetricFamily] = {}
        observed = GaugeMetricFamily(
            f"{PREFIX}_observed_timestamp_seconds",
            "When the series' latest value was observed (Unix time).",
            labels=("target", "metric"),
        )
        now = time.time()
        for (target, metric), latest in sorted(self._latest.items()):
            config = self._targets.get(target)
            # A value nobody has confirmed for several polls is withdrawn rather than shown as current:
            # a target failing for hours must not keep last night's viewers on the dashboard.
            if config is None or now - latest.observed_at.timestamp() > stale_after(config):
                continue
            money = metric in MONEY_METRICS
            family = by_metric.get(metric)
            if family is None:
                family = by_metric[metric] = GaugeMetricFamily(
                    f"{PREFIX}_{metric}",
                    _HELP.get(metric, metric),
                    labels=(*SERIES_LABELS, "currency") if money else SERIES_LABELS,
                )
            labels = [config.platform, target, config.kind, config.campaign or "", latest.provenance]
            if money:
                labels.append(latest.currency or "VND")
            family.add_metric(labels, latest.value)
            observed.add_metric([target, metric], latest.observed_at.timestamp())
        yield from by_metric.values()
        yield observed


class _LiveStateCollector:
    def __init__(self, state: LiveState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self.state.families()


class SelfMetrics:
    """The collector's own health, in a private registry beside the live-state series."""

    def __init__(self, state: LiveState) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "collector_polls_total", "Polls by outcome.", ("platform", "kind", "outcome"), registry=r
        )
        self.poll_duration = Histogram(
            "collector_poll_duration_seconds",
            "Wall time of one poll, fetch and parse.",
            ("platform", "kind"),
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.parse_failures = Counter(
            "collector_parse_failures_total",
            "Pages that arrived but could not be parsed, by reason.",
            ("platform", "kind", "reason"),
            registry=r,
        )
        self.last_success = Gauge(
            "collector_last_success_timestamp_seconds",
            "Unix time of the target's last successful poll.",
            ("target",),
            registry=r,
        )
        self.credentials_expiry = Gauge(
            "collector_credentials_expiry_timestamp_seconds",
            "Unix time the target's API access token expires (refreshed ahead of it where it can be).",
            ("target",),
            registry=r,
        )
        self.skipped = Counter(
            "collector_polls_skipped_total",
            "Polls not started because the previous poll of the target was still running.",
            ("target",),
            registry=r,
        )
        self.samples_written = Counter(
            "collector_samples_written_total", "Sample rows written to the database.", registry=r
        )
        self.write_failures = Counter(
            "collector_write_failures_total", "Batch writes that failed and will be retried.", registry=r
        )
        self.pending = Gauge(
            "collector_pending_records", "Poll records waiting to be written to the database.", registry=r
        )
        self.dropped = Counter(
            "collector_dropped_records_total",
            "Poll records dropped unwritten: memory_cap (memory full and no spool copy), spool_cap "
            "(removed from the full spool; those still in memory are written if the database returns).",
            ("reason",),
            registry=r,
        )
        self.spool_records = Gauge(
            "collector_spool_records", "Records in the durable spool not yet in the database.", registry=r
        )
        self.spool_bytes = Gauge("collector_spool_bytes", "Size of the durable spool on disk.", registry=r)
        self.snapshots = Counter(
            "collector_raw_snapshots_total", "Raw response bodies kept, by outcome.", ("outcome",), registry=r
        )
        self.browser_restarts = Counter(
            "collector_browser_restarts_total",
            "Chromium processes started after the first, by reason (recycled, crashed).",
            ("reason",),
            registry=r,
        )
        self.browser_pages = Counter(
            "collector_browser_pages_total", "Pages loaded through the browser pool.", registry=r
        )
        self.retries = Counter(
            "collector_http_retries_total",
            "Requests retried after a timeout, reset or 5xx.",
            ("platform",),
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "collector_rate_limit_waits_total",
            "Requests that waited for a host's spacing or Retry-After.",
            ("platform",),
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "collector_rate_limit_wait_seconds_total",
            "Seconds requests spent waiting for a host's spacing or Retry-After.",
            ("platform",),
            registry=r,
        )
        self.circuit_state = Gauge(
            "collector_circuit_state",
            "Per-platform circuit breaker: 0 closed, 1 half-open, 2 open.",
            ("platform",),
            registry=r,
        )
        self.backoff = Gauge(
            "collector_target_backoff_seconds",
            "Extra delay imposed on the target after repeated failures (0 when healthy).",
            ("target",),
            registry=r,
        )
        self.proxy_rotations = Counter(
            "collector_proxy_rotations_total",
            "Switches to the next proxy after a ban or rate limit.",
            ("platform",),
            registry=r,
        )
        self.heartbeat = Gauge(
            "collector_scheduler_heartbeat_timestamp_seconds",
            "Unix time the scheduler loop last ran.",
            registry=r,
        )
        self.reload_successful = Gauge(
            "collector_config_last_reload_successful",
            "Whether the last configuration reload was applied (1) or refused (0).",
            registry=r,
        )
        self.reload_timestamp = Gauge(
            "collector_config_last_reload_success_timestamp_seconds",
            "Unix time of the last reload that was applied (the start time until one is).",
            registry=r,
        )
        self.reload_successful.set(1)
        self.reload_timestamp.set_to_current_time()
        r.register(_LiveStateCollector(state))

    def forget_targets(self, names: Iterable[str]) -> None:
        """Withdraw the per-target series of targets a reload removed."""
        for name in names:
            for family in (self.last_success, self.skipped, self.backoff):
                with contextlib.suppress(KeyError):
                    family.remove(name)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_app(
    metrics: SelfMetrics,
    healthy: Callable[[], bool],
    reload: Callable[[], Awaitable[ReloadOutcome]] | None = None,
) -> web.Application:
    async def handle_metrics(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def handle_health(_request: web.Request) -> web.Response:
        if healthy():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="scheduler loop stalled\n")

    async def handle_reload(_request: web.Request) -> web.Response:
        assert reload is not None
        outcome = await reload()
        return web.json_response(outcome.document(), status=200 if outcome.ok else 422)

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/healthz", handle_health)
    if reload is not None:
        # Re-reads the file the service started from; nothing in the request is read. Like Prometheus's
        # /-/reload, it is on the listener `collector.metrics_listen` names (loopback by default).
        app.router.add_post("/-/reload", handle_reload)
    return app


async def start_metrics_server(
    listen: HostPort,
    metrics: SelfMetrics,
    healthy: Callable[[], bool],
    reload: Callable[[], Awaitable[ReloadOutcome]] | None = None,
) -> web.AppRunner:
    runner = web.AppRunner(metrics_app(metrics, healthy, reload), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    return runner
