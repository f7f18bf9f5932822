"""The campaign report as text (a terminal summary), JSON, CSV (one row per session) or one HTML file."""

from __future__ import annotations

import base64
import csv
import html
import io
import textwrap
from collections.abc import Mapping
from typing import Any

import orjson

from collector.report_format import Labels

FORMATS = ("text", "html", "json", "csv")
CSV_HEADER = (
    "platform", "session_id", "targets", "title", "started_at", "ended_at", "duration_seconds",
    "peak_viewers", "views", "views_provenance", "likes", "comments", "shares",
    "orders_reported", "orders_estimated", "items_sold_reported", "items_sold_estimated",
    "revenue_reported", "revenue_estimated", "revenue_headline", "revenue_headline_provenance", "currency",
)  # fmt: skip
TEXT_WIDTH = 80


def render_json(doc: Mapping[str, Any]) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def render_csv(doc: Mapping[str, Any]) -> str:
    """One row per session, then a `total` row (platform column) with the campaign totals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for s in doc["sessions"]:
        writer.writerow(
            _csv_cells(s["platform"], s["session_id"], " ".join(s["targets"]), s["title"], s["started_at"],
                       s["ended_at"], s["duration_seconds"], s["peak_viewers"], s["views"],
                       s["provenance"]["views"], s["likes"], s["comments"], s["shares"], s["orders"],
                       s["items_sold"], s["revenue"], s["provenance"]["headline_revenue"])
        )  # fmt: skip
    t = doc["totals"]
    writer.writerow(
        _csv_cells("total", "", "", doc["title"], doc["window"]["start"], doc["window"]["end"], None,
                   t["peak_concurrent_viewers"], t["live_views"], "", t["likes"], t["comments"], t["shares"],
                   t["orders"], t["items_sold"], t["revenue"], "")
    )  # fmt: skip
    return out.getvalue()


def _csv_cells(*cells: Any) -> list[str]:
    *head, orders, items, revenue, headline_from = cells
    values = [*head, orders["reported"], orders["estimated"], items["reported"], items["estimated"],
              revenue["reported"], revenue["estimated"], revenue["headline"], headline_from,
              revenue["currency"]]  # fmt: skip
    return ["" if v is None else _plain(v) for v in values]


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- text -------------------------------------------------------------------------------------------


def render_text(doc: Mapping[str, Any], labels: Labels) -> str:
    t, lines = doc["totals"], []
    rev = t["revenue"]
    lines.append(f"{doc['title']}  ({doc['campaign']})")
    lines.append(f"{labels.t('window')}: {_window(doc, labels)}")
    lines.append("")
    rows: list[tuple[str, str, str]] = [
        (labels.t("live_views"), labels.number(t["live_views"]),
         f"{labels.compact(t['live_views'])} {labels.t('views_unit')}"),
        *_goal_row(doc, "live_views", labels),
        (labels.t("peak_concurrent_viewers"), labels.number(t["peak_concurrent_viewers"]), ""),
        (labels.t("headline"), labels.money(rev["headline"], rev["currency"]), ""),
        *_goal_row(doc, "revenue", labels),
        (f"  {labels.t('reported')}", labels.money(rev["reported"], rev["currency"]), ""),
        (f"  {labels.t('estimated')}", labels.money(rev["estimated"], rev["currency"]), ""),
        (labels.t("orders"), labels.number(t["orders"]["reported"]),
         f"{labels.t('reported')}; {labels.t('estimated')} {labels.number(t['orders']['estimated'])}"),
        (labels.t("items_sold"), labels.number(t["items_sold"]["reported"]),
         f"{labels.t('reported')}; {labels.t('estimated')} {labels.number(t['items_sold']['estimated'])}"),
        (labels.t("hashtag_views"), labels.number(t["hashtag_views"]),
         f"{labels.t('growth')} {labels.compact(t['hashtag_views_growth'])}"),
        *_goal_row(doc, "hashtag_views", labels),
        (labels.t("sessions"), labels.number(t["sessions"]), ""),
    ]  # fmt: skip
    label_width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines += [f"{a:<{label_width}}  {b:>{value_width}}  {c}".rstrip() for a, b, c in rows]
    lines.append(f"  ({labels.t('headline_note', **rev['headline_sessions'])})")
    lines.append("")
    lines.append(labels.t("by_platform"))
    header = (labels.t("platform"), labels.t("sessions"), labels.t("views"), labels.t("peak_viewers"),
              labels.t("revenue"))  # fmt: skip
    table = [
        (name, labels.number(p["sessions"]), labels.compact(p["live_views"]),
         labels.compact(p["peak_concurrent_viewers"]), _headline_cell(p["revenue"], labels))
        for name, p in doc["by_platform"].items()
    ]  # fmt: skip
    lines += _table(header, table)
    lines.append("")
    lines.append(labels.t("session_list"))
    header = (labels.t("platform"), labels.t("start"), labels.t("duration"), labels.t("peak_viewers"),
              labels.t("views"), labels.t("revenue"), labels.t("session"))  # fmt: skip
    table = [
        (s["platform"], labels.when(s["started_at"]), labels.duration(s["duration_seconds"]),
         labels.compact(s["peak_viewers"]), labels.compact(s["views"]),
         _revenue_cell(s["revenue"], s["provenance"]["headline_revenue"], labels), s["session_id"])
        for s in doc["sessions"]
        if s.get("channel") != "marketplace"
    ]  # fmt: skip
    lines += _table(header, table)
    lines += _marketplace_text(doc, labels)
    if doc["hashtags"]:
        lines.append("")
        lines.append(labels.t("hashtags"))
        header = (labels.t("tag"), labels.t("views_start"), labels.t("views_end"), labels.t("growth"))
        table = [
            (f"#{h['tag']}", labels.compact(h["views_start"]), labels.compact(h["views_end"]),
             labels.compact(h["views_growth"]))
            for h in doc["hashtags"]
        ]  # fmt: skip
        lines += _table(header, table)
    lines.append("")
    lines.append(labels.t("gaps"))
    lines += [
        f"  {labels.when(g['start'])} → {labels.when(g['end'])}  {g['target']}  {g['status']}"
        for g in doc["gaps"]
    ] or [f"  {labels.t('no_gaps')}"]
    return "\n".join(_fit(line) for line in lines) + "\n"


def _marketplace_text(doc: Mapping[str, Any], labels: Labels) -> list[str]:
    shops = [s for s in doc["sessions"] if s.get("channel") == "marketplace"]
    if not shops:
        return []
    header = (labels.t("platform"), labels.t("shop"), labels.t("items_sold"), labels.t("revenue"))
    table = [
        (s["platform"], s["targets"][0], _bounded(s["items_sold"]["estimated"], s["items_sold_upper"], labels),
         _bounded(s["revenue"]["estimated"], s["revenue_upper"], labels))
        for s in shops
    ]  # fmt: skip
    lines = ["", labels.t("marketplace_shops"), *_table(header, table)]
    for note in marketplace_notes(doc, labels):
        lines += textwrap.wrap(note, TEXT_WIDTH, initial_indent="  ", subsequent_indent="    ")
    return lines


def _headline_cell(revenue: Mapping[str, Any], labels: Labels) -> str:
    """The headline revenue, as an interval where rounded marketplace counters add to it."""
    extra = (revenue.get("estimated_upper") or 0) - (revenue["estimated"] or 0)
    return _bounded(revenue["headline"], revenue["headline"] + extra if extra > 0 else None, labels)


def _bounded(low: float | None, high: float | None, labels: Labels) -> str:
    """A figure, or the interval a rounded counter gives (never a bare point value)."""
    if high is None or high == low:
        return labels.compact(low)
    return f"{labels.compact(low)} – {labels.compact(high)}"


def marketplace_notes(doc: Mapping[str, Any], labels: Labels) -> list[str]:
    """How marketplace figures are made, and the interval of each shop whose counters are rounded."""
    shops = [s for s in doc["sessions"] if s.get("channel") == "marketplace"]
    if not shops:
        return []
    notes = [labels.t("marketplace_note")]
    for s in shops:
        if s["rounded"]:
            currency = s["revenue"]["currency"]
            low, high = (
                labels.money(s["revenue"]["estimated"], currency),
                labels.money(s["revenue_upper"], currency),
            )
            notes.append(
                labels.t("rounded_note", target=s["targets"][0], platform=s["platform"], low=low, high=high)
            )
    return notes


def _window(doc: Mapping[str, Any], labels: Labels) -> str:
    start, end = doc["window"]["start"], doc["window"]["end"]
    first = labels.when(start) if start else "…"
    last = labels.when(end) if end else labels.t("open_end")
    return f"{first} → {last} (UTC+7)"


def _goal_row(doc: Mapping[str, Any], key: str, labels: Labels) -> list[tuple[str, str, str]]:
    goal = doc["goals"].get(key)
    if not goal:
        return []
    value = doc["totals"][key]
    value = value["headline"] if isinstance(value, dict) else value
    shown = (
        labels.money(goal, doc["totals"]["revenue"]["currency"]) if key == "revenue" else labels.number(goal)
    )
    return [(f"  {labels.t('goal')}", shown, labels.percent(value, goal))]


def _revenue_cell(revenue: Mapping[str, Any], provenance: str | None, labels: Labels) -> str:
    if revenue["headline"] is None:
        return "–"
    marker = labels.t(provenance)[0].upper() if provenance else ""
    return f"{labels.compact(revenue['headline'])} {marker}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    # The first column reads left-aligned, the last (an id) too; numbers in between right-aligned.
    def line(cells: tuple[str, ...]) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            out.append(f"{cell:<{width}}" if i in (0, len(cells) - 1) else f"{cell:>{width}}")
        return "  " + "  ".join(out).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _fit(line: str) -> str:
    return line if len(line) <= TEXT_WIDTH else line[: TEXT_WIDTH - 1] + "…"


# --- html -------------------------------------------------------------------------------------------

_CSS = """
body{font-family:"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif;margin:0;background:#f6f6f4;color:#1d1d1f}
main{max-width:1040px;margin:0 auto;padding:32px 24px 48px}
h1{font-size:28px;margin:0 0 4px} h2{font-size:20px;margin:36px 0 12px}
.muted{color:#666;font-size:14px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:14px;margin-top:20px}
.card{background:#fff;border-radius:10px;padding:16px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .label{font-size:14px;color:#555} .card .value{font-size:28px;font-weight:700;margin-top:4px;white-space:nowrap}
.card .sub{font-size:13px;color:#666;margin-top:6px}
.bar{height:6px;background:#e6e6e6;border-radius:3px;margin-top:8px;overflow:hidden}
.bar span{display:block;height:100%;background:#d62d50}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:10px;overflow:hidden;font-size:14px}
th,td{padding:8px 10px;border-bottom:1px solid #eee;text-align:right}
th{background:#fafafa;font-weight:600} th:first-child,td:first-child,td.text{text-align:left}
img{width:100%;height:auto;background:#fff;border-radius:10px;margin-bottom:14px}
.tag{display:inline-block;font-size:11px;padding:1px 6px;border-radius:8px;background:#eee;margin-left:4px}
"""


def render_html(doc: Mapping[str, Any], labels: Labels, charts: Mapping[str, bytes]) -> str:
    """One self-contained page: styles inline, charts as data: URIs, nothing fetched from anywhere."""
    t, rev, e = doc["totals"], doc["totals"]["revenue"], html.escape
    cards = [
        _card(labels.t("live_views"), labels.number(t["live_views"]),
              f"{labels.compact(t['live_views'])} {labels.t('views_unit')}", doc, "live_views", t["live_views"]),
        _card(labels.t("headline"), labels.money(rev["headline"], rev["currency"]),
              labels.t("headline_note", **rev["headline_sessions"]), doc, "revenue", rev["headline"]),
        _card(labels.t("orders"), labels.number(t["orders"]["reported"]),
              f"{labels.t('reported')}; {labels.t('items_sold').lower()} {labels.number(t['items_sold']['reported'])}"
              f" ({labels.t('estimated')} {labels.number(t['items_sold']['estimated'])})", doc, "orders",
              t["orders"]["reported"]),
        _card(labels.t("peak_concurrent_viewers"), labels.number(t["peak_concurrent_viewers"]), "", doc,
              "peak_concurrent_viewers", t["peak_concurrent_viewers"]),
        _card(labels.t("hashtag_views"), labels.compact(t["hashtag_views"]),
              f"{labels.t('growth')} {labels.compact(t['hashtag_views_growth'])}", doc, "hashtag_views",
              t["hashtag_views"]),
        _card(labels.t("sessions"), labels.number(t["sessions"]), "", doc, "sessions", t["sessions"]),
    ]  # fmt: skip
    revenue_rows = [
        (labels.t("reported"), labels.money(rev["reported"], rev["currency"]),
         labels.number(t["orders"]["reported"]), labels.number(t["items_sold"]["reported"])),
        (labels.t("estimated"), labels.money(rev["estimated"], rev["currency"]),
         labels.number(t["orders"]["estimated"]), labels.number(t["items_sold"]["estimated"])),
    ]  # fmt: skip
    platform_rows = [
        (e(name), labels.number(p["sessions"]), labels.number(p["live_views"]),
         labels.number(p["peak_concurrent_viewers"]), labels.money(p["revenue"]["headline"], rev["currency"]),
         labels.number(p["orders"]["reported"]))
        for name, p in doc["by_platform"].items()
    ]  # fmt: skip
    session_rows = [
        (e(s["platform"]), f"{e(s['title'] or '')}<br><span class=muted>{e(s['session_id'])} · "
         f"{e(', '.join(s['targets']))}</span>", labels.when(s["started_at"]), labels.duration(s["duration_seconds"]),
         labels.number(s["peak_viewers"]), labels.number(s["views"]), labels.number(s["likes"]),
         labels.number(s["orders"]["reported"]),
         f"{labels.money(s['revenue']['headline'], s['revenue']['currency'])}"
         + (f"<span class=tag>{labels.t(s['provenance']['headline_revenue'])}</span>"
            if s["provenance"]["headline_revenue"] else ""))
        for s in doc["sessions"]
    ]  # fmt: skip
    hashtag_rows = [
        (f"#{e(h['tag'])}", labels.number(h["views_start"]), labels.number(h["views_end"]),
         labels.number(h["views_growth"]), labels.number(h["posts_end"]))
        for h in doc["hashtags"]
    ]  # fmt: skip
    images = "".join(
        f'<img alt="{e(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for name, png in charts.items()
    )
    gap_rows = [
        (e(g["target"]), labels.when(g["start"]), labels.when(g["end"]), e(g["status"]), e(g["detail"] or ""))
        for g in doc["gaps"]
    ]
    gaps = (
        f"<p class=muted>{labels.t('no_gaps')}</p>"
        if not gap_rows
        else _html_table(
            (labels.t("target"), labels.t("start"), labels.t("end"), labels.t("status"), labels.t("detail")),
            gap_rows,
            text_columns=(3, 4),
        )
    )
    return f"""<!doctype html>
<html lang="{labels.lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(doc["title"])} – {labels.t("report")}</title><style>{_CSS}</style></head>
<body><main>
<div class=muted>{labels.t("report")}</div>
<h1>{e(doc["title"])}</h1>
<div class=muted>{labels.t("window")}: {_window(doc, labels)} · {labels.t("generated")}: \
{labels.when(doc["generated_at"])}</div>
<section class=cards id=headline>{"".join(cards)}</section>
<h2>{labels.t("revenue")}</h2>
{_html_table(("", labels.t("revenue"), labels.t("orders"), labels.t("items_sold")), revenue_rows)}
<p class=muted>{labels.t("provenance_note")}</p>
{"".join(f"<p class=muted>{e(note)}</p>" for note in marketplace_notes(doc, labels))}
<h2>{labels.t("charts")}</h2>
<section id=charts>{images}</section>
<h2>{labels.t("by_platform")}</h2>
{_html_table((labels.t("platform"), labels.t("sessions"), labels.t("live_views"), labels.t("peak_viewers"),
              labels.t("headline"), labels.t("orders")), platform_rows)}
<h2>{labels.t("session_list")}</h2>
{_html_table((labels.t("platform"), labels.t("session"), labels.t("start"), labels.t("duration"),
              labels.t("peak_viewers"), labels.t("views"), labels.t("likes"), labels.t("orders"),
              labels.t("revenue")), session_rows, text_columns=(1,))}
<h2>{labels.t("hashtags")}</h2>
{_html_table((labels.t("tag"), labels.t("views_start"), labels.t("views_end"), labels.t("growth"),
              labels.t("hashtag_posts")), hashtag_rows)}
<h2>{labels.t("gaps")}</h2>
{gaps}
</main></body></html>
"""  # fmt: skip


def _card(label: str, value: str, sub: str, doc: Mapping[str, Any], key: str, current: float) -> str:
    goal = doc["goals"].get(key)
    bar = ""
    if goal:
        share = min(100.0, 100 * (current or 0) / goal)
        bar = f'<div class=bar><span style="width:{share:.1f}%"></span></div>'
    return (
        f'<div class=card data-key="{key}"><div class=label>{html.escape(label)}</div>'
        f'<div class=value data-value="{current}">{html.escape(value)}</div>'
        f"<div class=sub>{html.escape(sub)}</div>{bar}</div>"
    )


def _html_table(
    header: tuple[str, ...], rows: list[tuple[str, ...]], text_columns: tuple[int, ...] = ()
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=text' if i in text_columns else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
