"""Prometheus exposition: the latest value of every series from an in-memory snapshot, plus self-metrics.

`/metrics` never touches the network or the database: pollers update `LiveState`, which formats a
series' lines when its value arrives, and a scrape joins them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

from collector.config import HostPort, TargetConfig
from collector.outcomes import Outcome
from collector.ready_metrics import ReadyFamily, label_set
from schemas.types import LIVE_STATUS_CODE, LiveStatus, Provenance, Sample
from schemas.types import Metric as SampleMetric

# Every counter would otherwise carry a `_created` twin, doubling the series for nothing a query uses.
disable_created_metrics()

if TYPE_CHECKING:
    from collector.reload import ReloadOutcome

PREFIX = "livestream"
SERIES_LABELS = ("platform", "target", "kind", "campaign", "provenance")
TARGET_LABELS = ("platform", "target", "kind", "campaign")
MONEY_METRICS = {"revenue", "revenue_confirmed", "revenue_upper", "price"}
STALE_AFTER_POLLS = 5
STALE_AFTER_MIN = 300.0
# What outlives a live session on the platform: the account's and the hashtag's numbers.
OBSERVED = f"{PREFIX}_observed_timestamp_seconds"
OBSERVED_HELP = "When the series' latest value was observed (Unix time)."
NOT_SESSION_SCOPED = {"followers", "live_status", "hashtag_views", "hashtag_posts"}
ENDED = float(LIVE_STATUS_CODE[LiveStatus.ENDED])
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
    "items_sold_upper": "Upper bound of estimated items sold where the public counter is rounded.",
    "revenue_upper": "Upper bound of estimated revenue where the public sold counter is rounded.",
    "price": "A marketplace product's selling price now, in the currency's base unit.",
}


class _Latest(NamedTuple):  # a tuple: a frozen dataclass's __init__ was a visible part of a poll
    value: float
    observed_at: datetime
    provenance: str
    currency: str | None


# Enum members' `.value` is a property lookup; a poll reads it for every sample.
_METRIC_NAME = {m: m.value for m in SampleMetric}
_PROVENANCE_NAME = {p: p.value for p in Provenance}


def stale_after(target: TargetConfig) -> float:
    return max(STALE_AFTER_POLLS * target.interval, STALE_AFTER_MIN)


class LiveState:
    """The latest value per (target, metric), written by pollers, read by scrapes.

    Each series is formatted into its exposition lines when its value arrives, so a scrape only drops
    the stale ones and joins the rest: at tens of thousands of series it stays a few milliseconds on the
    event loop instead of building every label set again."""

    def __init__(self, targets: Iterable[TargetConfig]) -> None:
        self._targets = {t.name: t for t in targets}
        self._stale_after = {name: stale_after(t) for name, t in self._targets.items()}
        self._latest: dict[tuple[str, str], _Latest] = {}
        self._lines: dict[str, _Lines] = {}
        # (target, metric, provenance, currency) -> the two lines' label parts: formatted once per series
        self._prefixes: dict[tuple[str, str, str, str | None], tuple[bytes, bytes]] = {}
        # The last observed time and its line ending: a poll's samples share one observed time.
        self._stamp: tuple[datetime | None, float, bytes] = (None, 0.0, b"")

    def set_targets(self, targets: Iterable[TargetConfig]) -> None:
        """A reload: series of targets no longer configured leave /metrics at once; the others are
        formatted again, as their labels (campaign, kind) or stale window may have changed."""
        self._targets = {t.name: t for t in targets}
        self._stale_after = {name: stale_after(t) for name, t in self._targets.items()}
        self._latest = {key: v for key, v in self._latest.items() if key[0] in self._targets}
        self._lines, self._prefixes = {}, {}
        for key, latest in self._latest.items():
            self._format(key, latest, None)

    @property
    def targets(self) -> list[TargetConfig]:
        return list(self._targets.values())

    def update(self, samples: Iterable[Sample]) -> None:
        fresh, ended = set(), set()
        latest_of = self._latest
        for s in samples:
            key = (s.target, _METRIC_NAME[s.metric])
            latest = _Latest(s.value, s.observed_at, _PROVENANCE_NAME[s.provenance], s.currency)
            self._format(key, latest, latest_of.get(key))
            latest_of[key] = latest
            fresh.add(key)
            if s.metric is SampleMetric.LIVE_STATUS and s.value == ENDED:
                ended.add(s.target)
        # An ended session's counters leave the exposition now rather than after the stale window; the
        # database keeps their final values. What the ended page still reports stays.
        # Only the ended targets' own keys are looked at: a scan of every series per poll was a tenth of
        # a poll's CPU at a few thousand targets.
        for target in ended:
            for metric in SampleMetric:
                key = (target, metric.value)
                if key in self._latest and key not in fresh and metric.value not in NOT_SESSION_SCOPED:
                    del self._latest[key]
                    if lines := self._lines.get(metric.value):
                        lines.drop(target)

    def _format(self, key: tuple[str, str], latest: _Latest, previous: _Latest | None) -> None:
        target, metric = key
        config = self._targets.get(target)
        if config is None:
            return
        currency = (latest.currency or "VND") if metric in MONEY_METRICS else None
        prefixes = self._prefixes.get((target, metric, latest.provenance, currency))
        if prefixes is None:
            labels = {
                "platform": config.platform,
                "target": target,
                "kind": config.kind,
                "campaign": config.campaign or "",
                "provenance": latest.provenance,
            }
            if currency is not None:
                labels["currency"] = currency
            prefixes = self._prefixes[(target, metric, latest.provenance, currency)] = (
                f"{PREFIX}_{metric}{{{label_set(**labels)}}} ".encode(),
                f"{OBSERVED}{{{label_set(metric=metric, target=target)}}} ".encode(),
            )
        if latest.observed_at is not self._stamp[0]:
            at = latest.observed_at.timestamp()
            self._stamp = (latest.observed_at, at, f"{floatToGoString(at)}\n".encode())
        _, at, at_end = self._stamp
        lines = self._lines.get(metric) or self._lines.setdefault(metric, _Lines())
        # A value nobody has confirmed for several polls is withdrawn rather than shown as current:
        # a target failing for hours must not keep last night's viewers on the dashboard.
        lines.until[target] = at + self._stale_after[target]
        lines.observed[target] = prefixes[1] + at_end
        # Most counters read the same as on the last poll: their value line (a float formatted, the
        # costly part) stands unless the value or its labels changed or the line was withdrawn.
        if (
            previous is None
            or previous.value != latest.value
            or (previous.provenance, previous.currency) != (latest.provenance, latest.currency)
            or target not in lines.values
        ):
            lines.values[target] = prefixes[0] + f"{floatToGoString(latest.value)}\n".encode()

    def render(self) -> bytes:
        """The live-value families in the text format (the same text in OpenMetrics)."""
        return b"".join(self.pieces())

    def pieces(self) -> list[bytes]:
        """`render`'s lines, to join once with the rest of a page (a join per family would allocate the
        page twice: at 50,000 series the fresh pages cost more than the copying). Series past their
        stale time are withdrawn here."""
        now = time.time()
        out, observed = [], []
        for metric in sorted(self._lines):
            lines = self._lines[metric]
            if lines.until and min(lines.until.values()) < now:
                for target in [t for t, until in lines.until.items() if until < now]:
                    lines.drop(target)
            if not lines.values:
                continue
            name = f"{PREFIX}_{metric}"
            out.append(f"# HELP {name} {_HELP.get(metric, metric)}\n# TYPE {name} gauge\n".encode())
            out.extend(lines.values.values())
            observed.extend(lines.observed.values())
        out.append(f"# HELP {OBSERVED} {OBSERVED_HELP}\n# TYPE {OBSERVED} gauge\n".encode())
        out.extend(observed)
        return out


class _Lines:
    """One live family's series by target: when each is withdrawn, its value line, its observed line."""

    __slots__ = ("observed", "until", "values")

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self.values: dict[str, bytes] = {}
        self.observed: dict[str, bytes] = {}

    def drop(self, target: str) -> None:
        for lines in (self.until, self.values, self.observed):
            lines.pop(target, None)


class SelfMetrics:
    """The collector's own health beside the live-state series. Families with a series per target are
    ready lines (`ReadyFamily`); the others, a bounded few, are prometheus-client's. `registry` reads
    both (tests, the docs check); a scrape joins the ready lines and formats only the bounded ones."""

    def __init__(self, state: LiveState) -> None:
        self.state = state
        self._bounded = r = CollectorRegistry(auto_describe=True)
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
        self.schedule_lag = Histogram(
            "collector_schedule_lag_seconds",
            "How late each poll started after it was due (the scheduler's lateness).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.parse_failures = Counter(
            "collector_parse_failures_total",
            "Pages that arrived but could not be parsed, by reason.",
            ("platform", "kind", "reason"),
            registry=r,
        )
        self.last_success = ReadyFamily(
            "collector_last_success_timestamp_seconds",
            "Unix time of the target's last successful poll.",
            ("target",),
        )
        self.credentials_expiry = ReadyFamily(
            "collector_credentials_expiry_timestamp_seconds",
            "Unix time the target's API access token expires (refreshed ahead of it where it can be).",
            ("target",),
        )
        self.skipped = ReadyFamily(
            "collector_polls_skipped_total",
            "Polls not started because the previous poll of the target was still running.",
            ("target",),
            "counter",
        )
        self.samples_written = Counter(
            "collector_samples_written_total", "Sample rows written to the database.", registry=r
        )
        self.samples_unchanged = Counter(
            "collector_samples_unchanged_total",
            "Samples not written because they repeat the last stored value of their series (store on change).",
            registry=r,
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
        self.fleet_budget_waits = Counter(
            "collector_fleet_budget_waits_total",
            "Request starts that waited for their turn in the fleet's shared budget of a host.",
            ("platform",),
            registry=r,
        )
        self.fleet_budget_wait_seconds = Counter(
            "collector_fleet_budget_wait_seconds_total",
            "Seconds request starts waited for their turn in the fleet's shared budget of a host.",
            ("platform",),
            registry=r,
        )
        self.fleet_budget_fallbacks = Counter(
            "collector_fleet_budget_fallbacks_total",
            "Request starts spaced by this replica alone because PostgreSQL did not answer for the fleet.",
            ("platform",),
            registry=r,
        )
        self.circuit_state = Gauge(
            "collector_circuit_state",
            "Per-platform circuit breaker: 0 closed, 1 half-open, 2 open.",
            ("platform",),
            registry=r,
        )
        self.backoff = ReadyFamily(
            "collector_target_backoff_seconds",
            "Extra delay imposed on the target after repeated failures (0 when healthy).",
            ("target",),
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
        # Fleet mode (several replicas sharing targets by lease); a single collector leaves them at 0.
        self.fleet_replicas = Gauge(
            "collector_fleet_replicas", "Replicas of the fleet seen alive by this one.", registry=r
        )
        self.fleet_targets = Gauge(
            "collector_fleet_targets",
            "Enabled targets in this replica's configuration: the targets the fleet shares.",
            registry=r,
        )
        self.fleet_leases_held = Gauge(
            "collector_fleet_leases_held", "Targets this replica holds a lease on (polls now).", registry=r
        )
        self.fleet_takeovers = Counter(
            "collector_fleet_lease_takeovers_total",
            "Targets claimed after another replica's lease on them ran out (that replica died or hung).",
            registry=r,
        )
        self.fleet_releases = Counter(
            "collector_fleet_lease_releases_total",
            "Targets handed over to other replicas: rebalanced to one that joined, or unconfigured by a reload.",
            registry=r,
        )
        self.fleet_leases_lost = Counter(
            "collector_fleet_leases_lost_total",
            "Targets this replica stopped polling because another took them while it could not renew.",
            registry=r,
        )
        self.reload_successful.set(1)
        self.reload_timestamp.set_to_current_time()
        self.target_interval = ReadyFamily(
            "collector_target_interval_seconds",
            "The target's configured poll interval.",
            TARGET_LABELS,
        )
        self.scheduled_start = ReadyFamily(
            f"{PREFIX}_scheduled_start_timestamp_seconds",
            "When the target's campaign broadcast is scheduled to go live (Unix time), if configured.",
            TARGET_LABELS,
        )
        self._ready = (
            self.last_success,
            self.credentials_expiry,
            self.skipped,
            self.backoff,
            self.target_interval,
            self.scheduled_start,
        )
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (self._bounded, *self._ready):
            self.registry.register(collector)
        self.describe_targets(state.targets)

    def describe_targets(self, targets: Iterable[TargetConfig]) -> None:
        # Series that exist from the first scrape: a rate() over a counter that appears on its first
        # increment misses that increment, and alerts on a ratio need the zero denominators too.
        for reason in ("recycled", "crashed"):
            self.browser_restarts.labels(reason)
        for reason in ("memory_cap", "spool_cap"):
            self.dropped.labels(reason)
        for t in targets:
            labels = (t.platform, t.name, t.kind, t.campaign or "")
            self.target_interval.labels(*labels).set(t.interval)
            if t.scheduled_start is not None:
                self.scheduled_start.labels(*labels).set(t.scheduled_start.timestamp())
            self.circuit_state.labels(t.platform)
            # 0 outside a fleet, like the other collector_fleet_* series.
            for family in (
                self.fleet_budget_waits,
                self.fleet_budget_wait_seconds,
                self.fleet_budget_fallbacks,
            ):
                family.labels(t.platform)
            for outcome in Outcome:
                self.polls.labels(t.platform, t.kind, outcome.value)

    def forget_targets(self, targets: Iterable[TargetConfig]) -> None:
        """Withdraw the per-target series of targets a reload removed (or changed: they are described
        again with their new labels)."""
        for t in targets:
            for family in (self.last_success, self.skipped, self.backoff):
                with contextlib.suppress(KeyError):
                    family.remove(t.name)
            for family in (self.target_interval, self.scheduled_start):
                with contextlib.suppress(KeyError):
                    family.remove(t.platform, t.name, t.kind, t.campaign or "")

    def exposition(self, openmetrics: bool = False) -> bytes:
        """The whole page: live values first, then the collector's own families (their `# EOF` ends
        an OpenMetrics page)."""
        pieces = self.state.pieces()
        for family in self._ready:
            pieces.extend(family.lines(openmetrics))
        pieces.append((generate_openmetrics if openmetrics else generate_latest)(self._bounded))
        return b"".join(pieces)


Check = Callable[[], str | None]  # the problem in a few words, or None when all is well


def metrics_app(
    metrics: SelfMetrics,
    health: Check,
    readiness: Check,
    reload: Callable[[], Awaitable[ReloadOutcome]] | None = None,
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """`/metrics`; `/healthz` (restart me if failing) and `/readyz` (collected data has somewhere to go);
    `POST /-/reload` when the service offers it."""

    async def handle_metrics(request: web.Request) -> web.Response:
        openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
        # Ready lines joined on the event loop: a few tens of milliseconds at 50,000 series, shorter
        # than a thread's competition for the interpreter lock would cost the polls.
        response = web.Response(body=metrics.exposition(openmetrics))
        response.headers["Content-Type"] = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE_LATEST
        return response

    def probe(check: Check) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(_request: web.Request) -> web.Response:
            problem = check()
            return (
                web.Response(text="ok\n")
                if problem is None
                else web.Response(status=503, text=f"{problem}\n")
            )

        return handle

    async def handle_reload(_request: web.Request) -> web.Response:
        assert reload is not None
        outcome = await reload()
        return web.json_response(outcome.document(), status=200 if outcome.ok else 422)

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/healthz", probe(health))
    app.router.add_get("/readyz", probe(readiness))
    if reload is not None:
        # Re-reads the file the service started from; nothing in the request is read. Like Prometheus's
        # /-/reload, it is on the listener `collector.metrics_listen` names (loopback by default).
        app.router.add_post("/-/reload", handle_reload)
    if extra_routes is not None:
        extra_routes(app)
    return app


async def start_metrics_server(
    listen: HostPort,
    metrics: SelfMetrics,
    health: Check,
    readiness: Check,
    reload: Callable[[], Awaitable[ReloadOutcome]] | None = None,
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.AppRunner:
    runner = web.AppRunner(metrics_app(metrics, health, readiness, reload, extra_routes), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    return runner
