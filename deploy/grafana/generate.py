"""Generates the Grafana dashboards in deploy/grafana/dashboards/ with grafana-foundation-sdk.

    .venv/bin/python deploy/grafana/generate.py          # rewrite the JSON files
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if they differ from this code

Edit the tables here, never the JSON. Every query must return data against a running collector: the
real-scrape test runs each one through Prometheus and fails on an empty result, so a panel for a
metric that does not exist yet cannot be added. Such panels have a marked placeholder row instead.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
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
ONE = f"{PLATFORM}, {TARGET}, {CAMPAIGN}"
RATE = "$__rate_interval"
VARIABLE_SOURCE = "collector_target_interval_seconds"  # one series per configured target
LIVE_STATUS = {
    "0": ("không rõ", "text"),
    "1": ("đã lên lịch", "blue"),
    "2": ("đang live", "green"),
    "3": ("tạm dừng", "orange"),
    "4": ("đã kết thúc", "purple"),
}
CIRCUIT_STATE = {"0": ("closed", "green"), "1": ("half-open", "orange"), "2": ("open", "red")}

Query = tuple[str, str]  # PromQL, legend


@dataclass(frozen=True)
class Chart:
    """A time series panel."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 12
    stacked: bool = False


@dataclass(frozen=True)
class Number:
    """A stat panel showing the last value."""

    title: str
    query: Query


@dataclass(frozen=True)
class States:
    """A state timeline whose values are named by `names` (value -> (text, colour))."""

    title: str
    query: Query
    names: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Ranking:
    """A table of an instant query."""

    title: str
    expr: str


@dataclass(frozen=True)
class Row:
    title: str


@dataclass(frozen=True)
class Placeholder:
    """A collapsed row with a note saying which panels go here once their metrics exist."""

    title: str
    note: str


Item = Chart | Number | States | Ranking | Row | Placeholder


def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend).range()


def chart(item: Chart) -> timeseries.Panel:
    legend = (
        cb.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    panel = timeseries.Panel().unit(item.unit).span(item.width).height(8).legend(legend)
    if item.stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(30)
    for ref, (expr, legend_format) in zip("ABCDEFGH", item.queries, strict=False):
        panel = panel.with_target(query(expr, legend_format, ref))
    return panel


def number(item: Number) -> stat.Panel:
    reduce = cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    return stat.Panel().unit("short").span(6).height(5).with_target(query(*item.query)).reduce_options(reduce)


def states(item: States) -> statetimeline.Panel:
    names = {
        value: dm.ValueMappingResult(text=name, color=colour) for value, (name, colour) in item.names.items()
    }
    return (
        statetimeline.Panel()
        .span(12)
        .height(8)
        .with_target(query(*item.query))
        .mappings([dm.ValueMap(names)])
    )


def ranking(item: Ranking) -> table.Panel:
    instant = prometheus.Dataquery().expr(item.expr).ref_id("A").instant().format(PromQueryFormat.TABLE)
    return table.Panel().span(12).height(8).with_target(instant)


PANELS = {Chart: chart, Number: number, States: states, Ranking: ranking}


def variable(name: str, label: str, source: str = VARIABLE_SOURCE) -> db.QueryVariable:
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


def dashboard(
    uid: str, title: str, description: str, variables: list[db.QueryVariable], items: list[Item]
) -> db.Dashboard:
    board = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["livestream-collector"])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .editable()
    )
    for v in variables:
        board = board.with_variable(v)
    for item in items:
        if isinstance(item, Row):
            board = board.with_row(db.Row(item.title))
        elif isinstance(item, Placeholder):
            note = (
                text.Panel().title(item.title).mode(TextMode.MARKDOWN).content(item.note).span(24).height(4)
            )
            board = board.with_row(db.Row(item.title).collapsed(True).with_panel(note))
        else:
            board = board.with_panel(PANELS[type(item)](item).title(item.title).datasource(DATASOURCE))
    return board


def series(metric: str, selector: str) -> str:
    """The metric's series matching `selector`, once each across a fleet's replicas. A replica exposes
    a target's series while it holds the target, so each has one replica, except for up to a scrape
    interval after a move, while Prometheus still has the previous holder's last scrape: take the
    larger value, never both."""
    return f"max without (instance, pod) ({metric}{{{selector}}})"


OBSERVED = f'provenance="observed", {EVENT}'
VIEWERS = series("livestream_viewers", OBSERVED)
VIEWS_BY_PLATFORM = f"sum by (platform) ({series('livestream_views', OBSERVED)})"

EVENT_OVERVIEW = [
    Row("Livestream"),
    Number("Người xem hiện tại (concurrent viewers)", (f"sum({VIEWERS})", "viewers")),
    Number("Lượt xem tích lũy (cumulative views)", (f"sum({VIEWS_BY_PLATFORM})", "views")),
    Number(
        "Bài đăng hashtag (hashtag posts)", (f"sum({series('livestream_hashtag_posts', EVENT)})", "posts")
    ),
    Number(
        "Tổng lượt xem hashtag (total hashtag views)",
        (f"sum({series('livestream_hashtag_views', EVENT)})", "views"),
    ),
    Chart(
        "Người xem theo nền tảng (viewers by platform)",
        "short",
        ((f"sum by (platform) ({VIEWERS})", "{{platform}}"),),
        stacked=True,
    ),
    Chart("Lượt xem theo nền tảng (views by platform)", "short", ((VIEWS_BY_PLATFORM, "{{platform}}"),)),
    Row("Bán hàng (sales: observed, reported by the shop, or estimated)"),
    Chart(
        "Doanh thu theo nguồn số liệu (revenue by provenance, VND)",
        "short",
        (
            (
                f"sum by (provenance, currency) ({series('livestream_revenue', EVENT)})",
                "{{provenance}} {{currency}}",
            ),
            (
                f"sum by (currency) ({series('livestream_revenue_confirmed', EVENT)})",
                "confirmed {{currency}}",
            ),
        ),
        width=8,
    ),
    Chart(
        "Đơn hàng (orders by provenance)",
        "short",
        (
            (f"sum by (provenance) ({series('livestream_orders', EVENT)})", "{{provenance}}"),
            (f"sum({series('livestream_orders_confirmed', EVENT)})", "confirmed"),
        ),
        width=8,
    ),
    Chart(
        "Sản phẩm đã bán (items sold by provenance)",
        "short",
        ((f"sum by (provenance) ({series('livestream_items_sold', EVENT)})", "{{provenance}}"),),
        width=8,
    ),
    Row("Hashtag"),
    Chart(
        "Lượt xem hashtag (hashtag views)",
        "short",
        ((f"max by (target) (livestream_hashtag_views{{{EVENT}}})", "{{target}}"),),
    ),
    Ranking(
        "Top kênh theo người xem (top targets by viewers)",
        f"topk(10, max by (platform, target) (livestream_viewers{{{EVENT}}}))",
    ),
    Placeholder(
        "Campaign totals (placeholder)",
        "Campaign totals and the scoreboard belong here once the campaign report exposes its metrics. "
        "Add their panels to `EVENT_OVERVIEW` in `deploy/grafana/generate.py` in the same change that "
        "adds the metrics: a query without data fails the real-scrape test.",
    ),
]

# A target's series move with it between a fleet's replicas: one line per series, whichever holds it.
TARGET_DRILLDOWN = [
    Chart(
        "Người xem (concurrent viewers)",
        "short",
        ((series("livestream_viewers", ONE), "{{target}} ({{provenance}})"),),
    ),
    States(
        "Trạng thái live (live status)", (series("livestream_live_status", ONE), "{{target}}"), LIVE_STATUS
    ),
    Chart(
        "Lượt xem, thích, bình luận, chia sẻ (views, likes, comments, shares)",
        "short",
        tuple(
            (series(f"livestream_{m}", ONE), f"{m} {{{{target}}}}")
            for m in ("views", "likes", "comments", "shares")
        ),
    ),
    Chart(
        "Doanh thu và sản phẩm bán (revenue VND, items sold)",
        "short",
        tuple(
            (series(f"livestream_{m}", ONE), f"{m} {{{{target}}}} ({{{{provenance}}}})")
            for m in ("revenue", "items_sold")
        ),
    ),
    Chart(
        "Lần thu thập thành công gần nhất (last success age)",
        "s",
        ((f"time() - {series('collector_last_success_timestamp_seconds', TARGET)}", "{{target}}"),),
    ),
    Chart(
        "Giãn cách do lỗi (backoff after failures)",
        "s",
        ((series("collector_target_backoff_seconds", TARGET), "{{target}}"),),
    ),
]

POLLS = f"collector_polls_total{{{PLATFORM}}}"
# Polls, parse failures and writes add up over a fleet's replicas; the spool, the scheduler and the
# scrape are each replica's own, one line per `instance`, so a replica in trouble stands out.
COLLECTOR_HEALTH = [
    Row("Polls"),
    Chart(
        "Poll outcomes by reason",
        "reqps",
        ((f"sum by (platform, outcome) (rate({POLLS}[{RATE}])) > 0", "{{platform}} {{outcome}}"),),
        stacked=True,
    ),
    Chart(
        "Success rate (ok or not live)",
        "percentunit",
        (
            (
                f'sum by (platform) (rate(collector_polls_total{{outcome=~"ok|not_live", {PLATFORM}}}[{RATE}]))'
                f" / sum by (platform) (rate({POLLS}[{RATE}]))",
                "{{platform}}",
            ),
        ),
    ),
    Chart(
        "Parse failures by reason (a layout change shows here first)",
        "reqps",
        (
            (
                f"sum by (platform, kind, reason) (rate(collector_parse_failures_total{{{PLATFORM}}}[{RATE}]))",
                "{{platform}} {{kind}} {{reason}}",
            ),
        ),
    ),
    Chart(
        "Last success age by target",
        "s",
        (("time() - max by (target) (collector_last_success_timestamp_seconds)", "{{target}}"),),
    ),
    Chart(
        "Poll duration p95",
        "s",
        (
            (
                "histogram_quantile(0.95, sum by (le, platform, kind) "
                f"(rate(collector_poll_duration_seconds_bucket{{{PLATFORM}}}[{RATE}])))",
                "{{platform}} {{kind}}",
            ),
        ),
    ),
    States(
        "Circuit breakers (the most open over replicas)",
        (f"max by (platform) (collector_circuit_state{{{PLATFORM}}})", "{{platform}}"),
        CIRCUIT_STATE,
    ),
    Row("Fleet (replicas sharing the targets by lease)"),
    Number("Replicas alive", ("max(collector_fleet_replicas)", "replicas")),
    Number(
        "Targets held by no replica",
        ("max(collector_fleet_targets) - sum(collector_fleet_leases_held)", "unheld"),
    ),
    Number(
        "Targets taken over (last hour)",
        ("sum(increase(collector_fleet_lease_takeovers_total[1h]))", "targets"),
    ),
    Number("Leases lost (last hour)", ("sum(increase(collector_fleet_leases_lost_total[1h]))", "targets")),
    Chart(
        "Leases held per replica",
        "short",
        (("sum by (instance) (collector_fleet_leases_held)", "{{instance}}"),),
        stacked=True,
    ),
    Chart(
        "Lease takeovers, releases and losses",
        "short",
        (
            (f"sum(rate(collector_fleet_lease_takeovers_total[{RATE}]))", "taken over/s (a replica died)"),
            (
                f"sum(rate(collector_fleet_lease_releases_total[{RATE}]))",
                "handed over/s (rebalance, reload)",
            ),
            (
                f"sum by (instance) (rate(collector_fleet_leases_lost_total[{RATE}]))",
                "lost/s {{instance}} (cut off from the database)",
            ),
        ),
    ),
    Chart(
        "Fleet-wide politeness: time spent waiting for a host's turn",
        "s",
        (
            (
                f"sum by (platform) (rate(collector_fleet_budget_wait_seconds_total{{{PLATFORM}}}[{RATE}]))",
                "{{platform}} waiting (s/s)",
            ),
            (
                f"sum by (platform) (rate(collector_fleet_budget_fallbacks_total{{{PLATFORM}}}[{RATE}]))",
                "{{platform}} spaced locally/s (PostgreSQL away)",
            ),
        ),
    ),
    Row("Storage, browser, scrape"),
    Chart(
        "Spool and write queue depth",
        "short",
        (
            ("collector_spool_records", "spool {{instance}}"),
            ("collector_pending_records", "in memory {{instance}}"),
        ),
        width=8,
    ),
    Chart(
        "Database writes",
        "short",
        (
            (f"sum(rate(collector_samples_written_total[{RATE}]))", "samples/s"),
            (f"rate(collector_write_failures_total[{RATE}])", "failed batches/s {{instance}}"),
            ("sum by (reason) (increase(collector_dropped_records_total[1h]))", "dropped/h {{reason}}"),
        ),
        width=8,
    ),
    Chart(
        "Browser restarts (last hour)",
        "short",
        (("sum by (reason) (increase(collector_browser_restarts_total[1h]))", "{{reason}}"),),
        width=8,
    ),
    Chart(
        "Scrape duration of /metrics",
        "s",
        ((f"scrape_duration_seconds{{{JOB}}}", "{{instance}}"),),
    ),
    Chart(
        "Series per scrape",
        "short",
        ((f"scrape_samples_scraped{{{JOB}}}", "{{instance}}"),),
    ),
    Chart(
        "Scheduler heartbeat age",
        "s",
        (("time() - collector_scheduler_heartbeat_timestamp_seconds", "{{instance}}"),),
    ),
    Chart(
        "Last configuration reload applied (1) or refused (0)",
        "short",
        (("collector_config_last_reload_successful", "{{instance}}"),),
    ),
]

DASHBOARDS = {
    "event-overview.json": lambda: dashboard(
        "livestream-event-overview",
        "Tổng quan sự kiện (event overview)",
        "Live viewers, views, sales and hashtag reach of the campaign, by platform.",
        [variable("platform", "Nền tảng"), variable("campaign", "Chiến dịch")],
        EVENT_OVERVIEW,
    ),
    "target-drilldown.json": lambda: dashboard(
        "livestream-target",
        "Chi tiết kênh (per-target drill-down)",
        "Every counter of the chosen targets, with provenance, live status and poll health.",
        [
            variable("platform", "Nền tảng"),
            variable("campaign", "Chiến dịch"),
            variable("target", "Kênh", f"{VARIABLE_SOURCE}{{{PLATFORM}, {CAMPAIGN}}}"),
        ],
        TARGET_DRILLDOWN,
    ),
    "collector-health.json": lambda: dashboard(
        "livestream-collector-health",
        "Collector health",
        "Is the collector polling, parsing, writing and keeping up? Alerts: deploy/prometheus/alerts.yml.",
        [variable("platform", "Platform")],
        COLLECTOR_HEALTH,
    ),
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
