"""Campaign charts as PNG bytes, drawn with matplotlib's object API (no pyplot, no global backend state)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from collector.campaign import MINUTE, Rollup
from collector.campaign_totals import carried_sum, concurrent_viewers, headline_revenue_series
from collector.report_format import DISPLAY_ZONE, Labels

SIZE_INCHES = (10.0, 4.2)
DPI = 110
PALETTE = ("#d62d50", "#2b7bb9", "#f29f05", "#3a9e5c", "#7b4ea3", "#8a8a8a")


def campaign_charts(rollup: Rollup, labels: Labels) -> dict[str, bytes]:
    """`{file stem: PNG}` for every chart that has data: viewers, views, revenue, hashtags."""
    charts: dict[str, bytes] = {}
    platforms = sorted({b.platform for b in rollup.broadcasts})
    viewers = {p: concurrent_viewers(b for b in rollup.broadcasts if b.platform == p) for p in platforms}
    if any(viewers.values()):
        charts["concurrent-viewers"] = _lines(viewers, labels.t("chart_viewers"), labels.compact, step=False)
    views = {
        p: carried_sum(b.series("views") for b in rollup.broadcasts if b.platform == p) for p in platforms
    }
    if any(views.values()):
        charts["live-views"] = _lines(views, labels.t("chart_views"), labels.compact, step=True)
    revenue = {labels.t("headline"): headline_revenue_series(rollup.broadcasts)}
    if any(revenue.values()):
        charts["revenue"] = _lines(revenue, labels.t("chart_revenue"), labels.compact, step=True)
    tags = {f"#{t.tag}": t.minutes for t in rollup.hashtags if t.minutes}
    if tags:
        charts["hashtag-views"] = _lines(tags, labels.t("chart_hashtags"), labels.compact, step=True)
    return charts


def _lines(
    series: Mapping[str, Mapping[int, float]], title: str, number: Callable[[float], str], *, step: bool
) -> bytes:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    every_minute: set[int] = set()
    for colour, (name, points) in zip(PALETTE * 4, sorted(series.items()), strict=False):
        if not points:
            continue
        minutes = sorted(points)
        every_minute.update(minutes)
        times = [_local(m) for m in minutes]
        values = [points[m] for m in minutes]
        # A lone reading has no line to draw: a marker keeps it visible.
        marker = "o" if len(times) == 1 else ("." if not step and len(times) < 40 else "")
        if step:
            axes.step(times, values, where="post", label=name, color=colour, linewidth=2.2, marker=marker)
        else:
            axes.plot(times, values, label=name, color=colour, linewidth=1.8, marker=marker)
    if len(every_minute) == 1:
        # One minute of data: give the axis a span, or the date locator spreads it over years.
        (only,) = every_minute
        axes.set_xlim(_local(only - 5), _local(only + 5))
    locator = AutoDateLocator(tz=DISPLAY_ZONE)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=DISPLAY_ZONE))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: number(value)))
    axes.set_ylim(bottom=0)
    axes.set_title(title, loc="left", fontsize=13, fontweight="bold")
    axes.grid(axis="y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(frameon=False, loc="best")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _local(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * MINUTE, UTC).astimezone(DISPLAY_ZONE)
