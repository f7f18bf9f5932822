"""`/metrics` render time at event scale, against prometheus-client labelled gauges of the same series.

10,000 live targets with five values each (50,000 series, plus their observed timestamps). The live
values are ready lines joined on the event loop; the collector's own families (a few per target) come
from prometheus-client and are built in a thread by the HTTP handler. Rounds alternate with the baseline:
one prometheus-client `Gauge` per metric with the same label sets, set the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from collector.config import TargetConfig
from collector.metrics import SERIES_LABELS, LiveState, SelfMetrics
from schemas.types import Metric, Provenance, Sample

TARGETS = 10_000
METRICS = (Metric.VIEWERS, Metric.VIEWS, Metric.LIKES, Metric.SHARES, Metric.COMMENTS)
ROUNDS = 7


def median_ms(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


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
    registry = CollectorRegistry()
    gauges = {m: Gauge(f"livestream_{m.value}", m.value, SERIES_LABELS, registry=registry) for m in METRICS}
    for s in samples:
        gauges[s.metric].labels("tiktok", s.target, "live", "bench", "observed").set(s.value)
    series = len(samples)
    rows = []
    for _ in range(3):  # alternating, medians of medians
        rows.append(
            (
                median_ms(state.render),
                median_ms(lambda: generate_latest(registry)),
                median_ms(metrics.exposition),
                median_ms(lambda: state.update(samples[:2500])),
            )
        )
    live, base, page, update = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"/metrics at {series:,} live series ({TARGETS:,} targets)")
    print(f"{'live series (on the event loop)':42s} {live:8.1f} ms")
    print(f"{'baseline: prometheus-client gauges':42s} {base:8.1f} ms")
    print(f"{'whole page (live + own families)':42s} {page:8.1f} ms")
    print(f"{'formatting 2,500 new values (a poll batch)':42s} {update:8.1f} ms")


if __name__ == "__main__":
    main()
