"""The pre-formatted live-value lines: what a scraper parses from them, in both exposition formats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.core import Metric as PromFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample as PromSample

from collector.config import TargetConfig
from collector.metrics import LiveState, SelfMetrics, metrics_app
from schemas.types import Metric, Provenance, Sample

CAMPAIGN = 'Sale "9.9" \\ đêm\nhai'


def shop(campaign: str = CAMPAIGN) -> TargetConfig:
    return TargetConfig("shop", "shopee", "live", 15.0, {}, campaign)


def sample(metric: Metric, value: float, currency: str | None = None) -> Sample:
    now = datetime.now(UTC)
    return Sample("shop", "shopee", "live", metric, value, now, Provenance.ESTIMATED, "s1", currency)


def samples_of(families: Iterable[PromFamily], name: str) -> list[PromSample]:
    return [s for f in families for s in f.samples if s.name == name]


def test_label_values_with_quotes_backslashes_and_newlines_read_back_as_written() -> None:
    state = LiveState([shop()])
    state.update([sample(Metric.VIEWERS, 1234), sample(Metric.REVENUE, 5e6, "VND")])
    text = SelfMetrics(state).exposition().decode()
    (viewers,) = samples_of(parse_text(text), "livestream_viewers")
    assert viewers.value == 1234
    assert viewers.labels == {
        "platform": "shopee",
        "target": "shop",
        "kind": "live",
        "campaign": CAMPAIGN,
        "provenance": "estimated",
    }
    (revenue,) = samples_of(parse_text(text), "livestream_revenue")
    assert (revenue.value, revenue.labels["currency"]) == (5e6, "VND")
    observed = {
        s.labels["metric"] for s in samples_of(parse_text(text), "livestream_observed_timestamp_seconds")
    }
    assert observed == {"viewers", "revenue"}


def test_a_reload_that_changes_a_campaign_relabels_the_stored_values() -> None:
    state = LiveState([shop()])
    state.update([sample(Metric.VIEWERS, 10)])
    state.set_targets([shop("after")])
    (viewers,) = samples_of(parse_text(state.render().decode()), "livestream_viewers")
    assert (viewers.value, viewers.labels["campaign"]) == (10, "after")
    state.set_targets([])
    assert samples_of(parse_text(state.render().decode()), "livestream_viewers") == []


def test_an_ended_session_withdraws_its_counters_but_keeps_the_status() -> None:
    state = LiveState([shop()])
    state.update([sample(Metric.VIEWERS, 10), sample(Metric.LIKES, 3)])
    state.update([sample(Metric.LIVE_STATUS, 4.0)])
    names = {s.name for f in parse_text(state.render().decode()) for s in f.samples}
    assert "livestream_live_status" in names
    assert not names & {"livestream_viewers", "livestream_likes"}


async def test_a_scraper_asking_for_openmetrics_gets_a_valid_openmetrics_page() -> None:
    state = LiveState([shop()])
    state.update([sample(Metric.VIEWERS, 1234)])
    app = metrics_app(SelfMetrics(state), lambda: None, lambda: None)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as client:
        accept = {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
        async with client.get(server.make_url("/metrics"), headers=accept) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            openmetrics = await response.text()
        async with client.get(server.make_url("/metrics")) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
    assert openmetrics.endswith("# EOF\n")
    # The OpenMetrics parser refuses a page with anything after `# EOF` or a family split in two.
    (viewers,) = samples_of(parse_openmetrics(openmetrics), "livestream_viewers")
    assert viewers.value == 1234
    assert samples_of(parse_text(text), "livestream_viewers")[0].value == 1234
    assert any(f.name == "collector_polls" for f in parse_openmetrics(openmetrics))
