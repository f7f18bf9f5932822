"""Marketplace shops in the campaign report, on a real database: each shop is one entry of its platform's
column, its figures are the rise of its estimate inside the window (provenance `estimated`), and a shop
whose counters are rounded (Lazada) shows an interval, flagged, never a bare point value."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.api import PollRecord, TargetConfig
from collector.campaign import Window, load_rollup
from collector.campaign_totals import as_dict
from collector.outcomes import Outcome
from collector.report_format import Labels
from collector.report_render import render_html, render_text
from collector.store import Store
from schemas.types import Metric, Provenance, Sample

T0 = datetime(2025, 9, 9, 1, 0, tzinfo=UTC)
CAMPAIGN = "mega"
TARGETS = [
    TargetConfig("tiki-ocop", "tiki", "shop", 1800.0, {"shop": "40395"}, CAMPAIGN),
    TargetConfig("sendo-dac-san", "sendo", "shop", 3600.0, {"shop": "717078"}, CAMPAIGN),
    TargetConfig("lazada-ocop", "lazada", "shop", 3600.0, {"shop": "ocop-lai-chau"}, CAMPAIGN),
]
ITEMS, REV, ITEMS_UP, REV_UP = (
    Metric.ITEMS_SOLD,
    Metric.REVENUE,
    Metric.ITEMS_SOLD_UPPER,
    Metric.REVENUE_UPPER,
)


def poll(target: str, minutes: float, values: dict[Metric, float]) -> PollRecord:
    config = next(t for t in TARGETS if t.name == target)
    at = T0 + timedelta(minutes=minutes)
    samples = [
        Sample(target, config.platform, config.kind, metric, value, at, Provenance.ESTIMATED, None,
               "VND" if metric in (REV, REV_UP) else None)
        for metric, value in values.items()
    ]  # fmt: skip
    return PollRecord(target, at, Outcome.OK, samples)


RECORDS = [
    # Tiki: polled before the window opens (its baseline then), so the window counts from its first poll in it.
    poll("tiki-ocop", -30, {ITEMS: 0, REV: 0}),
    poll("tiki-ocop", 0, {ITEMS: 5, REV: 500_000}),
    poll("tiki-ocop", 30, {ITEMS: 25, REV: 2_500_000}),
    poll("tiki-ocop", 60, {ITEMS: 40, REV: 4_000_000}),
    poll("sendo-dac-san", 0, {ITEMS: 0, REV: 0}),
    poll("sendo-dac-san", 60, {ITEMS: 12, REV: 588_000}),
    poll("lazada-ocop", 0, {ITEMS: 0, REV: 0, ITEMS_UP: 0, REV_UP: 0}),
    poll("lazada-ocop", 60, {ITEMS: 100, REV: 4_000_000, ITEMS_UP: 400, REV_UP: 16_000_000}),
]


def report(database_url: str, window: Window) -> dict:
    async def go() -> dict:
        store = Store(database_url, TARGETS)
        try:
            await store.prepare()
            await store.write(RECORDS)
            return as_dict(await load_rollup(store.engine, CAMPAIGN, window, now=T0 + timedelta(hours=2)))
        finally:
            await store.close()

    return asyncio.run(go())


def test_shops_are_platform_columns_with_the_rise_in_the_window(database_url: str) -> None:
    doc = report(database_url, Window(T0, T0 + timedelta(hours=2)))
    platforms = doc["by_platform"]
    assert sorted(platforms) == ["lazada", "sendo", "tiki"]
    assert platforms["tiki"]["revenue"]["estimated"] == 3_500_000  # 4.0 M - 0.5 M at the window's first poll
    assert platforms["tiki"]["items_sold"]["estimated"] == 35
    assert platforms["sendo"]["revenue"]["headline"] == 588_000
    assert platforms["lazada"]["revenue"]["estimated"] == 4_000_000
    assert platforms["lazada"]["revenue"]["estimated_upper"] == 16_000_000
    assert platforms["tiki"]["revenue"]["estimated_upper"] == 3_500_000  # exact: no interval
    shops = {s["targets"][0]: s for s in doc["sessions"]}
    assert {s["channel"] for s in shops.values()} == {"marketplace"}
    assert {s["provenance"]["headline_revenue"] for s in shops.values()} == {"estimated"}
    assert [name for name, s in shops.items() if s["rounded"]] == ["lazada-ocop"]
    assert (shops["lazada-ocop"]["items_sold"]["estimated"], shops["lazada-ocop"]["items_sold_upper"]) == (
        100,
        400,
    )
    assert shops["tiki-ocop"]["revenue_upper"] is None
    totals = doc["totals"]["revenue"]
    assert (totals["estimated"], totals["estimated_upper"]) == (8_088_000, 3_500_000 + 588_000 + 16_000_000)
    assert "rise of each product's public sold counter" in doc["methods"]["marketplace"]


def test_without_a_window_the_shop_counts_from_its_first_poll(tmp_path: Path) -> None:
    doc = report(f"sqlite+aiosqlite:///{tmp_path}/w.db", Window())
    assert doc["by_platform"]["tiki"]["revenue"]["estimated"] == 4_000_000


@pytest.mark.parametrize(
    ("lang", "method", "rounded"), [("vi", "Sàn TMĐT", "làm tròn"), ("en", "Marketplaces", "rounded")]
)
def test_the_report_states_the_method_and_flags_rounded_shops(
    tmp_path: Path, lang: str, method: str, rounded: str
) -> None:
    doc = report(f"sqlite+aiosqlite:///{tmp_path}/t.db", Window(T0, T0 + timedelta(hours=2)))
    text = render_text(doc, Labels(lang))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert not [line for line in text.splitlines() if line.endswith("…")]
    notes = " ".join(text.split())
    assert method in notes and rounded in notes and "lazada-ocop" in notes
    assert ("16.000.000" if lang == "vi" else "16,000,000") in notes  # the upper bound is shown
    page = render_html(doc, Labels(lang), {})
    assert method in page and "lazada-ocop (lazada)" in page
