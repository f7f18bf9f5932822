"""`/metrics` render time at event scale, against prometheus-client labelled gauges of the same series.

10,000 live targets with five values each (50,000 series, plus their observed timestamps), and the
collector's own families as a run has them (interval, last success and backoff per target, polls by
outcome). The live values and the per-target own families are ready lines joined on the event loop;
prometheus-client formats only the bounded own families. Rounds alternate with the baselines: one
prometheus-client `Gauge` per metric with the same label sets, and the same per-target own families in
prometheus-client too (what the whole page cost before).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from collector.config import TargetConfig
from collector.metrics import SERIES_LABELS, TARGET_LABELS, LiveState, SelfMetrics
from schemas.types import Metric, Provenance, Sample

TARGETS = 10_000
METRICS = (Metric.VIEWERS, Metric.VIEWS, Metric.LIKES, Metric.SHARES, Metric.COMMENTS)
ROUNDS = 7


def median_ms(fn: Callable[[], object]) -> tuple[float, float]:
    """Median wall and CPU milliseconds of `fn` (CPU: on a shared machine wall time includes waiting)."""
    walls, cpus = [], []
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.thread_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    targets = [TargetConfig(f"live-{i}", "tiktok", "live", 15.0, {}, "bench") for i in range(TARGETS)]
    now = datetime.now(UTC)
    samples = [
        Sample(t.name, "tiktok", "live", m, float(i), now, Provenance.OBSERVED)
        for i, t in enumerate(targets)
        for m in METRICS
    ]
    state = LiveState(targets)
    state.update(samples)
    metrics = SelfMetrics(state)
    for t in targets:
        metrics.last_success.labels(t.name).set(now.timestamp())
        metrics.backoff.labels(t.name).set(0)
    registry = CollectorRegistry()
    gauges = {m: Gauge(f"livestream_{m.value}", m.value, SERIES_LABELS, registry=registry) for m in METRICS}
    for s in samples:
        gauges[s.metric].labels("tiktok", s.target, "live", "bench", "observed").set(s.value)
    own = CollectorRegistry()
    own_gauges = [Gauge(f"collector_{n}", n, ("target",), registry=own) for n in ("last_success", "backoff")]
    interval = Gauge("collector_target_interval_seconds", "interval", TARGET_LABELS, registry=own)
    for t in targets:
        for gauge in own_gauges:
            gauge.labels(t.name).set(now.timestamp())
        interval.labels(t.platform, t.name, t.kind, t.campaign or "").set(t.interval)
    series = len(samples)
    rows = []
    for _ in range(3):  # alternating, medians of medians
        rows.append(
            (
                median_ms(state.render),
                median_ms(lambda: generate_latest(registry)),
                median_ms(metrics.exposition),
                median_ms(lambda: metrics.exposition(openmetrics=True)),
                median_ms(lambda: generate_latest(registry) + generate_latest(own)),
                median_ms(lambda: state.update(samples[:2500])),
            )
        )
    medians = [
        (statistics.median(w for w, _ in col), statistics.median(c for _, c in col))
        for col in zip(*rows, strict=True)
    ]
    labels = (
        "live series (on the event loop)",
        "baseline: prometheus-client gauges",
        "whole page (live + own families)",
        "whole page, OpenMetrics",
        "baseline: whole page in prometheus-client",
        "formatting 2,500 new values (a poll batch)",
    )
    print(f"/metrics at {series:,} live series ({TARGETS:,} targets), wall (CPU) ms")
    for label, (wall, cpu) in zip(labels, medians, strict=True):
        print(f"{label:42s} {wall:8.1f} ms ({cpu:6.1f} ms CPU)")


if __name__ == "__main__":
    main()
