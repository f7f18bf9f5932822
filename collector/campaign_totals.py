"""The campaign's numbers from a rollup: totals, per platform, per session, and the JSON document.

Which source a number comes from, and why provenances are never added, is in `collector.campaign`;
the definitions are stated in the README ("Campaign reports and the scoreboard").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from collector.campaign import (
    MINUTE,
    SALES_METRICS,
    SPLIT_PROVENANCES,
    Broadcast,
    Hashtag,
    ReportError,
    Rollup,
    iso,
    whole,
)
from collector.campaign_shops import MARKETPLACE_METHOD, ROUNDED_METHOD

CARRY_MINUTES = 2


def currency_of(broadcasts: Iterable[Broadcast]) -> str | None:
    found = {
        entry[2] for b in broadcasts for entry in b.last.get("revenue", {}).values() if entry[2] is not None
    }
    if len(found) > 1:
        raise ReportError(f"revenue in several currencies ({', '.join(sorted(found))}): not summed")
    return next(iter(found), None)


def totals(broadcasts: Sequence[Broadcast], hashtags: Sequence[Hashtag], now: datetime) -> dict[str, Any]:
    """The campaign's (or one platform's) headline numbers."""
    out: dict[str, Any] = {}
    out["live_views"] = _sum(b.pick("views")[0] for b in broadcasts)
    out["peak_concurrent_viewers"] = whole(max(concurrent_viewers(broadcasts).values(), default=0))
    for metric in ("likes", "comments", "shares"):
        out[metric] = _sum(b.pick(metric)[0] for b in broadcasts)
    for metric in SALES_METRICS:
        out[metric] = {p: _sum(b.sales(metric, p) for b in broadcasts) for p in SPLIT_PROVENANCES}
    headline = [b.headline_revenue() for b in broadcasts]
    out["revenue"]["headline"] = _sum(value for value, _ in headline)
    out["revenue"]["currency"] = currency_of(broadcasts)
    # Rounded marketplace counters (Lazada) give lower bounds; this is the estimate at their upper bounds.
    out["revenue"]["estimated_upper"] = _sum(
        b.sales("revenue_upper" if b.rounded else "revenue", "estimated") for b in broadcasts
    )
    out["revenue"]["headline_sessions"] = {
        p: sum(1 for (_, q), b in zip(headline, broadcasts, strict=True) if q == p and not b.is_shop)
        for p in SPLIT_PROVENANCES
    }
    out["hashtag_views"] = _sum(t.views_end for t in hashtags)
    out["hashtag_posts"] = _sum(t.posts_end for t in hashtags)
    out["hashtag_views_growth"] = _sum(_growth(t.views_start, t.views_end) for t in hashtags)
    out["sessions"] = sum(1 for b in broadcasts if not b.is_shop)
    out["marketplace_shops"] = sum(1 for b in broadcasts if b.is_shop)
    out["sessions_live_now"] = sum(1 for b in broadcasts if b.is_live(now))
    out["viewers_now"] = _sum(b.pick("viewers")[0] for b in broadcasts if b.is_live(now))
    return out


def _sum(values: Iterable[float | None]) -> int | float:
    return whole(sum(v for v in values if v is not None))


def _growth(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def concurrent_viewers(broadcasts: Iterable[Broadcast]) -> dict[int, float]:
    """Per minute: the summed concurrent viewers of the broadcasts on air in that minute.

    A broadcast polled less than once a minute keeps its last reading for up to `CARRY_MINUTES`
    empty minutes (never past its end), so a minute is not undercounted just because its poll fell
    in the next one."""
    per_minute: dict[int, float] = defaultdict(float)
    for b in broadcasts:
        series = b.series("viewers")
        minutes = sorted(series)
        if not minutes:  # no viewer readings at all (a marketplace shop)
            continue
        last_minute = None if b.ended_at is None else int(b.ended_at.timestamp() // MINUTE)
        for minute, following in zip(minutes, [*minutes[1:], None], strict=True):
            until = (
                minute + CARRY_MINUTES if following is None else min(following - 1, minute + CARRY_MINUTES)
            )
            if following is None and last_minute is not None:
                until = min(until, max(minute, last_minute))
            for held in range(minute, until + 1):
                per_minute[held] += series[minute]
    return dict(per_minute)


def carried_sum(series: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """Per minute: the sum of each series' latest value so far (cumulative counters held between polls)."""
    series = list(series)
    minutes = sorted({m for s in series for m in s})
    latest = [0.0] * len(series)
    out: dict[int, float] = {}
    for minute in minutes:
        for i, s in enumerate(series):
            if minute in s:
                latest[i] = s[minute]
        out[minute] = sum(latest)
    return out


def headline_revenue_series(broadcasts: Iterable[Broadcast]) -> dict[int, float]:
    return carried_sum(b.series("revenue", b.headline_revenue()[1]) for b in broadcasts)


def by_platform(rollup: Rollup) -> dict[str, dict[str, Any]]:
    platforms = sorted({b.platform for b in rollup.broadcasts} | {t.platform for t in rollup.hashtags})
    return {
        p: totals(
            [b for b in rollup.broadcasts if b.platform == p],
            [t for t in rollup.hashtags if t.platform == p],
            rollup.generated_at,
        )
        for p in platforms
    }


def session_entry(b: Broadcast, now: datetime) -> dict[str, Any]:
    views, views_from = b.pick("views")
    likes, likes_from = b.pick("likes")
    peak, peak_from = b.peak()
    headline, headline_from = b.headline_revenue()
    end = b.ended_at or b.last_seen_at  # a live session's duration so far
    return {
        "platform": b.platform,
        "target": ", ".join(sorted(b.targets)),
        "targets": sorted(b.targets),
        "session_id": b.key,
        "title": b.title,
        "started_at": iso(b.started_at),
        "ended_at": iso(b.ended_at),
        "duration_seconds": None
        if b.started_at is None or end is None
        else (end - b.started_at).total_seconds(),
        "live_now": b.is_live(now),
        "viewers_now": b.pick("viewers")[0] if b.is_live(now) else None,
        "peak_viewers": peak,
        "views": views,
        "likes": likes,
        "comments": b.pick("comments")[0],
        "shares": b.pick("shares")[0],
        "orders": {p: b.sales("orders", p) for p in SPLIT_PROVENANCES},
        "items_sold": {p: b.sales("items_sold", p) for p in SPLIT_PROVENANCES},
        "revenue": {
            **{p: b.sales("revenue", p) for p in SPLIT_PROVENANCES},
            "headline": headline,
            "currency": currency_of([b]),
        },
        "channel": "marketplace" if b.is_shop else "live",
        "rounded": b.rounded,  # sales from rounded counters: the figures are lower bounds
        "items_sold_upper": b.sales("items_sold_upper", "estimated"),
        "revenue_upper": b.sales("revenue_upper", "estimated"),
        "provenance": {
            "views": views_from,
            "likes": likes_from,
            "peak_viewers": peak_from,
            "headline_revenue": headline_from,
        },
    }


def as_dict(rollup: Rollup) -> dict[str, Any]:
    """The report's JSON document (the shape is a contract: README, "Campaign reports")."""
    now = rollup.generated_at
    return {
        "campaign": rollup.campaign,
        "title": rollup.title,
        "generated_at": iso(now),
        "window": {"start": iso(rollup.window.start), "end": iso(rollup.window.end)},
        "goals": {name: whole(value) for name, value in rollup.goals.items()},
        "totals": totals(rollup.broadcasts, rollup.hashtags, now),
        "by_platform": by_platform(rollup),
        "methods": {"marketplace": MARKETPLACE_METHOD, "marketplace_rounded": ROUNDED_METHOD},
        "sessions": [session_entry(b, now) for b in rollup.broadcasts],
        "live_now": [b.key for b in rollup.broadcasts if b.is_live(now)],
        "hashtags": [
            {
                "platform": t.platform,
                "target": t.target,
                "tag": t.tag,
                "views_start": t.views_start,
                "views_end": t.views_end,
                "views_growth": _growth(t.views_start, t.views_end),
                "posts_start": t.posts_start,
                "posts_end": t.posts_end,
            }
            for t in rollup.hashtags
        ],
        "gaps": rollup.gaps,
    }
