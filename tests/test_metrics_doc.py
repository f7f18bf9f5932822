"""docs/metrics.md documents every family the collector can expose, with its type."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from collector.config import TargetConfig
from collector.metrics import _HELP, PREFIX, LiveState, SelfMetrics
from tests.tools import ROOT

ROW = re.compile(r"^\| `(\w+)` \| (\w+) \|", re.MULTILINE)


def documented() -> dict[str, str]:
    return dict(ROW.findall((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")))


def test_every_self_metric_family_is_documented_with_its_type() -> None:
    target = TargetConfig(
        "shop", "tiktok", "live", 30.0, scheduled_start=datetime(2025, 9, 9, 12, tzinfo=UTC)
    )
    families = {(f.name, f.type) for f in SelfMetrics(LiveState([target])).registry.collect()}
    # prometheus-client names counters without `_total`; the exposition adds it.
    exposed = {(f"{name}_total" if kind == "counter" else name, kind) for name, kind in families}
    assert exposed <= set(documented().items())
    assert {("collector_polls_total", "counter"), ("collector_poll_duration_seconds", "histogram")} <= exposed
    assert ("livestream_scheduled_start_timestamp_seconds", "gauge") in exposed


def test_every_live_value_family_is_documented_as_a_gauge() -> None:
    docs = documented()
    for metric in _HELP:
        assert docs.get(f"{PREFIX}_{metric}") == "gauge", metric
