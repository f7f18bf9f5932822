"""The event-screen scoreboard: `/board/<campaign>` and its JSON, `/api/campaigns/<campaign>`.

The JSON is the same document as `collector report --format json`. It is read from the database, never
from the network, and kept for a few seconds so a room full of screens costs one query per interval.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from collector.campaign import ReportError, campaign_names
from collector.campaign_totals import as_dict
from collector.config import Config
from collector.report import read_rollup
from collector.report_format import LABELS, LANGS

log = logging.getLogger(__name__)
CACHE_SECONDS = 3.0
POLL_SECONDS = 5.0


class CampaignDocuments:
    """Campaign JSON documents, recomputed at most once per `ttl` each (one query at a time)."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.config, self.ttl, self.clock = engine, config, ttl, clock
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._known: tuple[float, frozenset[str]] | None = None
        self._lock = asyncio.Lock()

    async def document(self, campaign: str) -> dict[str, Any] | None:
        """The campaign's document, or None for a campaign neither configured nor in the database."""
        async with self._lock:
            if campaign not in await self._campaigns():
                return None
            cached = self._documents.get(campaign)
            if cached is not None and self.clock() - cached[0] < self.ttl:
                return cached[1]
            try:
                doc = as_dict(await read_rollup(self.engine, self.config, campaign))
            except ReportError:
                # Declared in the configuration but nothing stored yet.
                doc = None
            if doc is not None:
                self._documents[campaign] = (self.clock(), doc)
            return doc

    async def _campaigns(self) -> frozenset[str]:
        # Only names that exist are ever cached, so a URL cannot grow the cache.
        if self._known is None or self.clock() - self._known[0] >= self.ttl:
            stored = await campaign_names(self.engine)
            self._known = (self.clock(), frozenset(stored) | frozenset(self.config.campaigns))
        return self._known[1]


def board_routes(documents: CampaignDocuments) -> Callable[[web.Application], None]:
    async def api(request: web.Request) -> web.Response:
        campaign = request.match_info["campaign"]
        try:
            doc = await documents.document(campaign)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("scoreboard: database unavailable: %s", type(exc).__name__)
            return web.json_response({"error": "database unavailable"}, status=503)
        if doc is None:
            return web.json_response({"error": f"unknown campaign {campaign!r}"}, status=404)
        return web.json_response(doc, headers={"Cache-Control": "no-store"})

    async def page(request: web.Request) -> web.Response:
        lang = request.query.get("lang", "vi")
        if lang not in LANGS:
            return web.Response(status=400, text=f"lang must be one of: {', '.join(LANGS)}\n")
        campaign = request.match_info["campaign"]
        title = campaign
        declared = documents.config.campaigns.get(campaign)
        if declared is not None:
            title = declared.title
        return web.Response(text=board_page(campaign, title, lang), content_type="text/html", charset="utf-8")

    def add(app: web.Application) -> None:
        app.router.add_get("/api/campaigns/{campaign}", api)
        app.router.add_get("/board/{campaign}", page)

    return add


def board_page(campaign: str, title: str, lang: str) -> str:
    settings = json.dumps(
        {"campaign": campaign, "lang": lang, "poll_ms": int(POLL_SECONDS * 1000), "labels": LABELS[lang]},
        ensure_ascii=False,
    ).replace("</", "<\\/")
    return (
        _PAGE.replace("{{lang}}", lang)
        .replace("{{title}}", html.escape(title))
        .replace("{{settings}}", settings)
    )


_PAGE = """<!doctype html>
<html lang="{{lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{title}}</title>
<style>
:root{--bg:#0b0f17;--panel:#151c2a;--text:#f4f6fb;--muted:#9aa7bd;--accent:#ff3d6e;--ok:#38d39f}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font-family:"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif}
main{padding:1.6vw 2.6vw;min-height:100vh;display:flex;flex-direction:column;gap:1.2vw}
header{display:flex;justify-content:space-between;align-items:baseline;gap:2vw}
h1{font-size:clamp(24px,2.8vw,60px);margin:0;font-weight:800}
#status{font-size:clamp(14px,1.3vw,26px);color:var(--muted);white-space:nowrap}
#status.offline{color:var(--accent)}
.dot{display:inline-block;width:.7em;height:.7em;border-radius:50%;background:var(--ok);margin-right:.4em}
#status.offline .dot{background:var(--accent)}
.cards{display:grid;grid-template-columns:1fr 1.45fr 1fr;gap:1.2vw}
.card{background:var(--panel);border-radius:1vw;padding:1.1vw 1.6vw}
.label{font-size:clamp(14px,1.35vw,28px);color:var(--muted)}
.value{font-size:clamp(30px,4vw,100px);font-weight:800;line-height:1.1;white-space:nowrap;font-variant-numeric:tabular-nums}
.card.main .value{color:var(--accent)}
.sub{font-size:clamp(12px,1.2vw,24px);color:var(--muted);margin-top:.3vw}
.bar{height:.6vw;min-height:6px;background:#26324a;border-radius:1vw;margin-top:.8vw;overflow:hidden}
.bar span{display:block;height:100%;background:var(--accent)}
.row{display:grid;grid-template-columns:1.1fr 1fr;gap:1.4vw;flex:1}
table{width:100%;border-collapse:collapse;font-size:clamp(14px,1.3vw,28px);font-variant-numeric:tabular-nums}
th{color:var(--muted);font-weight:600;text-align:right;padding:.3vw .6vw;white-space:nowrap}
td{text-align:right;padding:.4vw .6vw;border-top:1px solid #26324a}
th:first-child,td:first-child{text-align:left}
h2{font-size:clamp(16px,1.7vw,34px);margin:0 0 .6vw;color:var(--muted);font-weight:600}
.live{display:inline-block;background:var(--accent);color:#fff;border-radius:.4em;padding:0 .4em;font-size:.7em;margin-right:.4em;vertical-align:middle}
.empty{color:var(--muted);font-size:clamp(14px,1.5vw,30px)}
</style></head>
<body><main>
<header><h1 id="title">{{title}}</h1><div id="status"><span class="dot"></span><span id="updated">…</span></div></header>
<section class="cards" id="cards"></section>
<section class="row">
  <div class="card"><h2 id="platforms-title"></h2><table id="platforms"></table></div>
  <div class="card"><h2 id="live-title"></h2><div id="live"></div></div>
</section>
</main>
<script>
"use strict";
const S = {{settings}};
const L = S.labels;
const VI = S.lang === "vi";
const SEP = VI ? "." : ",", DEC = VI ? "," : ".";
const $ = (id) => document.getElementById(id);
function num(v) {
  if (v === null || v === undefined) return "–";
  const s = Math.round(Math.abs(v)).toString().replace(/\\B(?=(\\d{3})+(?!\\d))/g, SEP);
  return (v < 0 ? "-" : "") + s;
}
function compact(v) {
  if (v === null || v === undefined) return "–";
  const steps = [[1e9, "Tỷ", "B"], [1e6, "Tr", "M"], [1e3, "N", "K"]];
  for (const [t, vi, en] of steps) {
    if (Math.abs(v) >= t) {
      let s = (v / t).toFixed(1).replace(".", DEC);
      if (s.endsWith(DEC + "0")) s = s.slice(0, -2);
      return VI ? s + " " + vi : s + en;
    }
  }
  return num(v);
}
// Rounded marketplace sold counters make the revenue a lower bound.
function roundedMark(p) { return p.revenue.estimated_upper > p.revenue.estimated ? "≥ " : ""; }
function money(v, cur) {
  if (v === null || v === undefined) return "–";
  cur = cur || "VND";
  return VI ? num(v) + " " + (cur === "VND" ? "₫" : cur) : num(v) + " " + cur;
}
function esc(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
function card(key, label, value, shown, sub, goal, main) {
  const share = goal ? Math.min(100, 100 * (value || 0) / goal) : null;
  return `<div class="card${main ? " main" : ""}" data-key="${key}"><div class="label">${esc(label)}</div>` +
    `<div class="value" data-value="${value}">${esc(shown)}</div><div class="sub">${esc(sub)}</div>` +
    (share === null ? "" : `<div class="bar"><span style="width:${share.toFixed(1)}%"></span></div>`) + `</div>`;
}
function goalNote(goal, value) {
  return goal ? `${L.goal} ${compact(goal)} · ${(100 * (value || 0) / goal).toFixed(1).replace(".", DEC)} %` : "";
}
function render(d) {
  const t = d.totals, r = t.revenue, g = d.goals || {};
  if (d.title) { $("title").textContent = d.title; document.title = d.title; }
  $("cards").innerHTML = [
    card("live_views", L.live_views, t.live_views, num(t.live_views),
         goalNote(g.live_views, t.live_views) || `${compact(t.live_views)} ${L.views_unit}`, g.live_views, true),
    card("revenue", L.headline, r.headline, money(r.headline, r.currency),
         `${L.reported} ${compact(r.reported)} · ${L.estimated} ${compact(r.estimated)}`, g.revenue, true),
    card("orders", L.orders, t.orders.reported, num(t.orders.reported),
         `${L.reported} · ${L.items_sold.toLowerCase()} ${num(t.items_sold.reported)}`, g.orders, false),
    card("viewers_now", L.viewers_now, t.viewers_now, num(t.viewers_now),
         `${L.peak_concurrent_viewers}: ${num(t.peak_concurrent_viewers)}`, null, false),
    card("hashtag_views", L.hashtag_views, t.hashtag_views, compact(t.hashtag_views),
         `${L.growth} ${compact(t.hashtag_views_growth)}`, g.hashtag_views, false),
    card("sessions", L.sessions, t.sessions, num(t.sessions),
         `${L.sessions_live_now}: ${num(t.sessions_live_now)}`, g.sessions, false),
  ].join("");
  $("platforms-title").textContent = L.by_platform;
  const rows = Object.entries(d.by_platform).map(([name, p]) =>
    `<tr data-platform="${esc(name)}"><td>${esc(name)}</td><td>${compact(p.live_views)}</td>` +
    `<td>${num(p.viewers_now)}</td><td>${roundedMark(p)}${compact(p.revenue.headline)}</td>` +
    `<td>${num(p.sessions)}</td></tr>`);
  $("platforms").innerHTML = `<tr><th>${esc(L.platform)}</th><th>${esc(L.views)}</th>` +
    `<th>${esc(L.viewers_now)}</th><th>${esc(L.revenue)}</th><th>${esc(L.sessions)}</th></tr>` + rows.join("");
  $("live-title").textContent = L.live_now;
  const live = d.sessions.filter((s) => s.live_now);
  $("live").innerHTML = live.length === 0 ? `<div class="empty">${esc(L.none_live)}</div>` :
    `<table><tr><th>${esc(L.session)}</th><th>${esc(L.viewers_now)}</th><th>${esc(L.views)}</th></tr>` +
    live.map((s) => `<tr data-session="${esc(s.session_id)}"><td><span class="live">LIVE</span>${esc(s.platform)} · ` +
      `${esc(s.title || s.session_id)}</td><td>${num(s.viewers_now)}</td><td>${compact(s.views)}</td></tr>`).join("") +
    `</table>`;
}
async function tick() {
  try {
    const response = await fetch("/api/campaigns/" + encodeURIComponent(S.campaign), {cache: "no-store"});
    if (!response.ok) throw new Error(String(response.status));
    render(await response.json());
    $("status").className = "";
    $("updated").textContent = `${L.updated} ${new Date().toLocaleTimeString(VI ? "vi-VN" : "en-GB")}`;
  } catch (err) {
    $("status").className = "offline";
    $("updated").textContent = L.offline;
  } finally {
    setTimeout(tick, S.poll_ms);
  }
}
tick();
</script></body></html>
"""
