"""Generates the Grafana dashboards in deploy/grafana/dashboards/ with grafana-foundation-sdk.

    .venv/bin/python deploy/grafana/generate.py          # rewrite the JSON files
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if they differ from this code

Edit this file, never the JSON. Every query here must return data against a running collector: the
real-scrape test runs each one through Prometheus and fails on an empty result, so a panel for a
metric that does not exist yet cannot be added. Such panels have a marked placeholder row instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
JOB = 'job="livestream-collector"'
# Grafana variables; the real-scrape test substitutes them (".*" for each variable).
PLATFORM = 'platform=~"$platform"'
CAMPAIGN = 'campaign=~"$campaign"'
TARGET = 'target=~"$target"'
EVENT = f"{PLATFORM}, {CAMPAIGN}"
ONE_TARGET = f"{PLATFORM}, {TARGET}, {CAMPAIGN}"
RATE = "$__rate_interval"
LIVE_STATUS = {"0": "không rõ", "1": "đã lên lịch", "2": "đang live", "3": "tạm dừng", "4": "đã kết thúc"}
LIVE_STATUS_COLOUR = {"0": "text", "1": "blue", "2": "green", "3": "orange", "4": "purple"}


def query(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend or "__auto")
    return q.instant().format(PromQueryFormat.TABLE) if instant else q.range()


def variable(name: str, label: str, source: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .query(f"label_values({source}, {name})")
        .datasource(DATASOURCE)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def series(title: str, unit: str, *queries: prometheus.Dataquery, stacked: bool = False, width: int = 12):
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(30)
    for ref, q in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(q.ref_id(ref))
    return panel


def number(title: str, unit: str, q: prometheus.Dataquery, width: int = 6) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(5)
        .with_target(q)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def placeholder(title: str, body: str) -> db.Row:
    note = text.Panel().title(title).mode(TextMode.MARKDOWN).content(body).span(24).height(4)
    return db.Row(title).collapsed(True).with_panel(note)


def base(uid: str, title: str, description: str, tags: list[str]) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["livestream-collector", *tags])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .editable()
    )


def event_overview() -> db.Dashboard:
    views = f'sum by (platform) (livestream_views{{provenance="observed", {EVENT}}})'
    return (
        base(
            "livestream-event-overview",
            "Tổng quan sự kiện (event overview)",
            "Live viewers, views, sales and hashtag reach of the campaign, by platform.",
            ["event"],
        )
        .with_variable(variable("platform", "Nền tảng", "collector_target_interval_seconds"))
        .with_variable(variable("campaign", "Chiến dịch", "collector_target_interval_seconds"))
        .with_row(db.Row("Livestream"))
        .with_panel(
            number(
                "Người xem hiện tại (concurrent viewers)",
                "short",
                query(f'sum(livestream_viewers{{provenance="observed", {EVENT}}})', "viewers"),
            )
        )
        .with_panel(number("Lượt xem tích lũy (cumulative views)", "short", query(f"sum({views})", "views")))
        .with_panel(
            number(
                "Bài đăng hashtag (hashtag posts)",
                "short",
                query(f"sum(livestream_hashtag_posts{{{EVENT}}})", "posts"),
            )
        )
        .with_panel(
            number(
                "Tổng lượt xem hashtag (total hashtag views)",
                "short",
                query(f"sum(livestream_hashtag_views{{{EVENT}}})", "hashtag views"),
            )
        )
        .with_panel(
            series(
                "Người xem theo nền tảng (viewers by platform)",
                "short",
                query(
                    f'sum by (platform) (livestream_viewers{{provenance="observed", {EVENT}}})',
                    "{{platform}}",
                ),
                stacked=True,
            )
        )
        .with_panel(
            series("Lượt xem theo nền tảng (views by platform)", "short", query(views, "{{platform}}"))
        )
        .with_row(db.Row("Bán hàng (sales: observed, reported by the shop, or estimated)"))
        .with_panel(
            series(
                "Doanh thu theo nguồn số liệu (revenue by provenance, VND)",
                "short",
                query(
                    f"sum by (provenance, currency) (livestream_revenue{{{EVENT}}})",
                    "{{provenance}} {{currency}}",
                ),
                query(
                    f"sum by (currency) (livestream_revenue_confirmed{{{EVENT}}})",
                    "confirmed {{currency}}",
                ),
                width=8,
            )
        )
        .with_panel(
            series(
                "Đơn hàng (orders by provenance)",
                "short",
                query(f"sum by (provenance) (livestream_orders{{{EVENT}}})", "{{provenance}}"),
                query(f"sum(livestream_orders_confirmed{{{EVENT}}})", "confirmed"),
                width=8,
            )
        )
        .with_panel(
            series(
                "Sản phẩm đã bán (items sold by provenance)",
                "short",
                query(f"sum by (provenance) (livestream_items_sold{{{EVENT}}})", "{{provenance}}"),
                width=8,
            )
        )
        .with_row(db.Row("Hashtag"))
        .with_panel(
            series(
                "Lượt xem hashtag (hashtag views)",
                "short",
                query(f"max by (target) (livestream_hashtag_views{{{EVENT}}})", "{{target}}"),
            )
        )
        .with_panel(
            table.Panel()
            .title("Top kênh theo người xem (top targets by viewers)")
            .datasource(DATASOURCE)
            .span(12)
            .height(8)
            .with_target(
                query(
                    f"topk(10, max by (platform, target) (livestream_viewers{{{EVENT}}}))",
                    instant=True,
                )
            )
        )
        .with_row(
            placeholder(
                "Campaign totals (placeholder)",
                "Campaign totals and the scoreboard belong here once the campaign report exposes its "
                "metrics. Add their panels in `deploy/grafana/generate.py` (`event_overview`) in the "
                "same change that adds the metrics: a query without data fails the real-scrape test.",
            )
        )
    )


def target_drilldown() -> db.Dashboard:
    return (
        base(
            "livestream-target",
            "Chi tiết kênh (per-target drill-down)",
            "Every counter of the chosen targets, with provenance, live status and poll health.",
            ["event", "target"],
        )
        .with_variable(variable("platform", "Nền tảng", "collector_target_interval_seconds"))
        .with_variable(variable("campaign", "Chiến dịch", "collector_target_interval_seconds"))
        .with_variable(
            variable("target", "Kênh", f"collector_target_interval_seconds{{{PLATFORM}, {CAMPAIGN}}}")
        )
        .with_panel(
            series(
                "Người xem (concurrent viewers)",
                "short",
                query(f"livestream_viewers{{{ONE_TARGET}}}", "{{target}} ({{provenance}})"),
            )
        )
        .with_panel(
            statetimeline.Panel()
            .title("Trạng thái live (live status)")
            .datasource(DATASOURCE)
            .span(12)
            .height(8)
            .with_target(query(f"livestream_live_status{{{ONE_TARGET}}}", "{{target}}"))
            .mappings(
                [
                    dm.ValueMap(
                        {
                            value: dm.ValueMappingResult(text=label, color=LIVE_STATUS_COLOUR[value])
                            for value, label in LIVE_STATUS.items()
                        }
                    )
                ]
            )
        )
        .with_panel(
            series(
                "Lượt xem, thích, chia sẻ (views, likes, shares)",
                "short",
                query(f"livestream_views{{{ONE_TARGET}}}", "views {{target}}"),
                query(f"livestream_likes{{{ONE_TARGET}}}", "likes {{target}}"),
                query(f"livestream_shares{{{ONE_TARGET}}}", "shares {{target}}"),
                query(f"livestream_comments{{{ONE_TARGET}}}", "comments {{target}}"),
            )
        )
        .with_panel(
            series(
                "Doanh thu và sản phẩm bán (revenue VND, items sold)",
                "short",
                query(f"livestream_revenue{{{ONE_TARGET}}}", "revenue {{target}} ({{provenance}})"),
                query(f"livestream_items_sold{{{ONE_TARGET}}}", "items {{target}} ({{provenance}})"),
            )
        )
        .with_panel(
            series(
                "Lần thu thập thành công gần nhất (last success age)",
                "s",
                query(f"time() - collector_last_success_timestamp_seconds{{{TARGET}}}", "{{target}}"),
            )
        )
        .with_panel(
            series(
                "Giãn cách do lỗi (backoff after failures)",
                "s",
                query(f"collector_target_backoff_seconds{{{TARGET}}}", "{{target}}"),
            )
        )
    )


def collector_health() -> db.Dashboard:
    polls = f"collector_polls_total{{{PLATFORM}}}"
    return (
        base(
            "livestream-collector-health",
            "Collector health",
            "Is the collector polling, parsing, writing and keeping up? Alerts: deploy/prometheus/alerts.yml.",
            ["operations"],
        )
        .with_variable(variable("platform", "Platform", "collector_target_interval_seconds"))
        .with_row(db.Row("Polls"))
        .with_panel(
            series(
                "Poll outcomes by reason",
                "reqps",
                query(f"sum by (platform, outcome) (rate({polls}[{RATE}])) > 0", "{{platform}} {{outcome}}"),
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Success rate (ok or not live)",
                "percentunit",
                query(
                    f'sum by (platform) (rate(collector_polls_total{{outcome=~"ok|not_live", {PLATFORM}}}[{RATE}]))'
                    f" / sum by (platform) (rate({polls}[{RATE}]))",
                    "{{platform}}",
                ),
            )
        )
        .with_panel(
            series(
                "Parse failures by reason (a layout change shows here first)",
                "reqps",
                query(
                    f"sum by (platform, kind, reason) (rate(collector_parse_failures_total{{{PLATFORM}}}[{RATE}]))",
                    "{{platform}} {{kind}} {{reason}}",
                ),
            )
        )
        .with_panel(
            series(
                "Last success age by target",
                "s",
                query("time() - collector_last_success_timestamp_seconds", "{{target}}"),
            )
        )
        .with_panel(
            series(
                "Poll duration p95",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (le, platform, kind) "
                    f"(rate(collector_poll_duration_seconds_bucket{{{PLATFORM}}}[{RATE}])))",
                    "{{platform}} {{kind}}",
                ),
            )
        )
        .with_panel(
            statetimeline.Panel()
            .title("Circuit breakers")
            .datasource(DATASOURCE)
            .span(12)
            .height(8)
            .with_target(query(f"collector_circuit_state{{{PLATFORM}}}", "{{platform}}"))
            .mappings(
                [
                    dm.ValueMap(
                        {
                            "0": dm.ValueMappingResult(text="closed", color="green"),
                            "1": dm.ValueMappingResult(text="half-open", color="orange"),
                            "2": dm.ValueMappingResult(text="open", color="red"),
                        }
                    )
                ]
            )
        )
        .with_row(db.Row("Storage, browser, scrape"))
        .with_panel(
            series(
                "Spool and write queue depth",
                "short",
                query("collector_spool_records", "spool {{instance}}"),
                query("collector_pending_records", "in memory {{instance}}"),
                width=8,
            )
        )
        .with_panel(
            series(
                "Database writes",
                "short",
                query(f"rate(collector_samples_written_total[{RATE}])", "samples/s {{instance}}"),
                query(f"rate(collector_write_failures_total[{RATE}])", "failed batches/s {{instance}}"),
                query(
                    "sum by (reason) (increase(collector_dropped_records_total[1h]))", "dropped/h {{reason}}"
                ),
                width=8,
            )
        )
        .with_panel(
            series(
                "Browser restarts (last hour)",
                "short",
                query("sum by (reason) (increase(collector_browser_restarts_total[1h]))", "{{reason}}"),
                width=8,
            )
        )
        .with_panel(
            series(
                "Scrape duration of /metrics",
                "s",
                query(f"scrape_duration_seconds{{{JOB}}}", "{{instance}}"),
                query(f"scrape_samples_scraped{{{JOB}}}", "samples {{instance}}"),
            )
        )
        .with_panel(
            series(
                "Scheduler heartbeat age",
                "s",
                query("time() - collector_scheduler_heartbeat_timestamp_seconds", "{{instance}}"),
            )
        )
        .with_row(
            placeholder(
                "Fleet (placeholder)",
                "Several collectors sharing targets (leases, which replica polls what) belong here once "
                "the `collector_fleet_*` metrics exist. Add their panels in `deploy/grafana/generate.py` "
                "(`collector_health`) in the same change: a query without data fails the real-scrape test.",
            )
        )
    )


DASHBOARDS = {
    "event-overview.json": event_overview,
    "target-drilldown.json": target_drilldown,
    "collector-health.json": collector_health,
}


def render() -> dict[str, str]:
    """File name -> the dashboard's JSON text, exactly as committed."""
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, indent=2, ensure_ascii=False, sort_keys=True)
        + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str]) -> int:
    stale = []
    for name, content in render().items():
        path = OUT / name
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                stale.append(name)
        else:
            path.write_text(content, encoding="utf-8")
    for name in stale:
        print(f"{OUT / name} differs from deploy/grafana/generate.py; run it to regenerate", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
