"""Campaign rollups: the numbers organisers publish, computed from stored samples.

A broadcast is one `(platform, session key)`: every target that reported on it (the public live page,
the shop's dashboard) contributes to that one broadcast, so nothing is counted twice. Per broadcast,
single-valued counters (views, likes, viewers…) come from the most authoritative source that reported
them (`reported` over `observed` over `estimated`); orders, items sold and revenue keep each
provenance apart, and the headline revenue takes a broadcast's reported figure where there is one and
its estimate otherwise. Definitions are stated in the README ("Campaign reports").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, cast, extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from collector.campaign_shops import (
    SHOP_KEY_PREFIX,
    SHOP_METRICS,
    ShopEdges,
    add_shop_edge,
    is_shop_metric,
    shop_figures,
    shop_key,
)
from schemas.models import GapRow, LiveSessionRow, SampleRow, TargetRow
from schemas.types import LIVE_STATUS_CODE, LiveStatus

# Most authoritative first: a shop's own dashboard beats a public page, a public page beats a derivation.
PRECEDENCE = ("reported", "observed", "estimated")
SPLIT_PROVENANCES = ("reported", "estimated")
SINGLE_METRICS = ("views", "likes", "comments", "shares")
SALES_METRICS = ("orders", "items_sold", "revenue")
HASHTAG_METRICS = ("hashtag_views", "hashtag_posts")
# Minute series: viewers for the concurrent peak always; the others only for charts.
CHART_METRICS = ("views", "revenue", "hashtag_views")
WENT_LIVE = LIVE_STATUS_CODE[LiveStatus.LIVE]  # live, paused and ended all code higher
LAST_METRICS = (
    "viewers",
    *SINGLE_METRICS,
    *SALES_METRICS,
    *HASHTAG_METRICS,
    *SHOP_METRICS,
    "peak_viewers",
    "live_status",
)
LIVE_STATUSES = ("live", "paused")
# A broadcast not seen for this long is not shown as live now, whatever its last status said.
LIVE_NOW_STALE = timedelta(minutes=10)
MINUTE = 60


class ReportError(Exception):
    """A campaign that cannot be reported as asked (unknown, or numbers that must not be summed)."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None  # exclusive


@dataclass(slots=True)
class Broadcast:
    """One live session as every source saw it."""

    platform: str
    key: str
    targets: set[str] = field(default_factory=set)
    title: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_status: str | None = None
    # metric -> provenance -> (observed_at, value, currency): the latest value of each source kind.
    last: dict[str, dict[str, tuple[datetime, float, str | None]]] = field(default_factory=dict)
    # metric -> provenance -> highest value in the window.
    highest: dict[str, dict[str, float]] = field(default_factory=dict)
    # metric -> provenance -> minute -> value (the highest within the minute).
    minutes: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)

    def pick(self, metric: str) -> tuple[float | None, str | None]:
        """The value of the most authoritative source that reported `metric`, and its provenance."""
        found = self.last.get(metric, {})
        for provenance in PRECEDENCE:
            if provenance in found:
                return whole(found[provenance][1]), provenance
        return None, None

    def sales(self, metric: str, provenance: str) -> float | None:
        entry = self.last.get(metric, {}).get(provenance)
        return None if entry is None else whole(entry[1])

    def headline_revenue(self) -> tuple[float | None, str | None]:
        for provenance in SPLIT_PROVENANCES:
            value = self.sales("revenue", provenance)
            if value is not None:
                return value, provenance
        return None, None

    def peak(self) -> tuple[float | None, str | None]:
        """The highest concurrent viewers: readings or the platform's own peak figure, best source first."""
        for provenance in PRECEDENCE:
            found = [self.highest.get(m, {}).get(provenance) for m in ("viewers", "peak_viewers")]
            if any(v is not None for v in found):
                return whole(max(v for v in found if v is not None)), provenance
        return None, None

    def series(self, metric: str, provenance: str | None = None) -> dict[int, float]:
        """Per minute: the metric from `provenance`, or from the most authoritative source that minute
        (a dashboard that starts later than the public page must not blank the minutes before it)."""
        by_provenance = self.minutes.get(metric, {})
        if provenance is not None:
            return by_provenance.get(provenance, {})
        merged: dict[int, float] = {}
        for source in reversed(PRECEDENCE):
            merged.update(by_provenance.get(source, {}))
        return merged

    @property
    def is_shop(self) -> bool:
        """A marketplace shop's sales in the window, not a live session."""
        return self.key.startswith(SHOP_KEY_PREFIX)

    @property
    def rounded(self) -> bool:
        """Its sales come from rounded public counters: the figures are lower bounds of an interval."""
        return "items_sold_upper" in self.last

    def went_live(self) -> bool:
        """Whether the window holds a broadcast: counters, and a status past `scheduled` if one is known.

        An announced session is not a broadcast yet, and a room that only shows up as the account's
        last ended one (status, no counters) was broadcast before the window."""
        statuses = self.highest.get("live_status", {}).values()
        has_counters = any(metric != "live_status" for metric in self.last)
        return has_counters and (not statuses or max(statuses) >= WENT_LIVE)

    def is_live(self, now: datetime) -> bool:
        return (
            self.last_status in LIVE_STATUSES
            and self.ended_at is None
            and self.last_seen_at is not None
            and now - self.last_seen_at <= LIVE_NOW_STALE
        )


@dataclass(slots=True)
class Hashtag:
    platform: str
    target: str
    tag: str
    views_start: float | None = None
    views_end: float | None = None
    posts_start: float | None = None
    posts_end: float | None = None
    last_at: datetime | None = None
    minutes: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class Rollup:
    campaign: str
    title: str
    window: Window
    generated_at: datetime
    broadcasts: list[Broadcast]
    hashtags: list[Hashtag]
    goals: Mapping[str, float] = field(default_factory=dict)
    gaps: list[dict[str, Any]] = field(default_factory=list)


async def campaign_names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(TargetRow.campaign).where(TargetRow.campaign.is_not(None)).distinct()
        )
        return sorted(name for (name,) in rows)


async def load_rollup(
    engine: AsyncEngine,
    campaign: str,
    window: Window,
    *,
    title: str | None = None,
    goals: Mapping[str, float] | None = None,
    now: datetime | None = None,
    series: bool = False,
) -> Rollup:
    """Read the campaign's samples in `window` and group them into broadcasts and hashtags; `series`
    also reads the per-minute views, revenue and hashtag views the charts draw."""
    async with engine.connect() as conn:
        targets = {
            row.id: row
            for row in await conn.execute(
                select(TargetRow.id, TargetRow.name, TargetRow.platform, TargetRow.params).where(
                    TargetRow.campaign == campaign
                )
            )
        }
        if not targets:
            known = await campaign_names(engine)
            raise ReportError(
                f"no targets of campaign {campaign!r} in the database (known: {', '.join(known) or 'none'})"
            )
        in_window = _in_window(list(targets), window)
        last_rows = (await conn.execute(_edge_values(in_window, LAST_METRICS))).all()
        minute_metrics = ("viewers", *(CHART_METRICS if series else ()))
        minute_rows = (
            await conn.execute(_minute_maxima(in_window, minute_metrics, engine.dialect.name))
        ).all()
        gap_rows = (await conn.execute(_gaps(list(targets), window))).all()
        session_ids = {r.session_id for r in (*last_rows, *minute_rows) if r.session_id is not None}
        sessions = {
            row.id: row
            for row in await conn.execute(
                select(
                    LiveSessionRow.id,
                    LiveSessionRow.session_key,
                    LiveSessionRow.title,
                    LiveSessionRow.started_at,
                    LiveSessionRow.ended_at,
                    LiveSessionRow.last_seen_at,
                    LiveSessionRow.last_status,
                ).where(LiveSessionRow.id.in_(session_ids))
            )
        }
    broadcasts: dict[tuple[str, str], Broadcast] = {}

    def broadcast_of(target_id: int, session_id: int) -> Broadcast:
        target, session = targets[target_id], sessions[session_id]
        key = (target.platform, session.session_key)
        found = broadcasts.get(key)
        if found is None:
            found = broadcasts[key] = Broadcast(target.platform, session.session_key)
        found.targets.add(target.name)
        _merge_session(found, session)
        return found

    hashtags: dict[int, Hashtag] = {}
    shops: dict[int, ShopEdges] = {}
    for row in last_rows:
        if is_shop_metric(row):
            add_shop_edge(shops, targets[row.target_id], row)
            continue
        if row.session_id is None:
            if row.metric in HASHTAG_METRICS:
                _hashtag_edge(hashtags, targets[row.target_id], row)
            continue
        b = broadcast_of(row.target_id, row.session_id)
        highest = b.highest.setdefault(row.metric, {})
        highest[row.provenance] = max(highest.get(row.provenance, row.highest), row.highest)
        if not row.is_last:
            continue
        entry = (row.observed_at, row.value, row.currency)
        current = b.last.setdefault(row.metric, {}).get(row.provenance)
        if current is None or current[0] < row.observed_at:
            b.last[row.metric][row.provenance] = entry
    for row in minute_rows:
        if row.session_id is None:
            tag = hashtags.get(row.target_id)
            if tag is not None and row.metric == "hashtag_views":
                tag.minutes[int(row.minute)] = max(tag.minutes.get(int(row.minute), 0.0), row.value)
            continue
        b = broadcast_of(row.target_id, row.session_id)
        cells = b.minutes.setdefault(row.metric, {}).setdefault(row.provenance, {})
        cells[int(row.minute)] = max(cells.get(int(row.minute), 0.0), row.value)
    for shop in shops.values():
        broadcasts[(shop.platform, shop_key(shop.target))] = _shop_broadcast(shop)
    return Rollup(
        campaign=campaign,
        title=title or campaign,
        window=window,
        generated_at=now or datetime.now(UTC),
        broadcasts=sorted((b for b in broadcasts.values() if b.went_live()), key=_broadcast_order),
        hashtags=_distinct_hashtags(hashtags.values()),
        goals=dict(goals or {}),
        gaps=[
            {
                "platform": targets[g.target_id].platform,
                "target": targets[g.target_id].name,
                "start": iso(g.started_at),
                "end": iso(g.ended_at),
                "status": g.status,
                "detail": g.detail,
            }
            for g in gap_rows
        ],
    )


def _in_window(target_ids: list[int], window: Window) -> list[ColumnElement[bool]]:
    conditions = [SampleRow.target_id.in_(target_ids)]
    if window.start is not None:
        conditions.append(SampleRow.observed_at >= window.start)
    if window.end is not None:
        conditions.append(SampleRow.observed_at < window.end)
    return conditions


def _gaps(target_ids: list[int], window: Window) -> Any:
    """Recorded gaps of the campaign's targets that overlap the window (found by `backfill gaps`)."""
    query = select(GapRow.target_id, GapRow.started_at, GapRow.ended_at, GapRow.status, GapRow.detail).where(
        GapRow.target_id.in_(target_ids)
    )
    if window.start is not None:
        query = query.where(GapRow.ended_at > window.start)
    if window.end is not None:
        query = query.where(GapRow.started_at < window.end)
    return query.order_by(GapRow.started_at, GapRow.target_id)


def _edge_values(in_window: list[ColumnElement[bool]], metrics: Sequence[str]) -> Any:
    """The first and last value of every (target, session, metric, provenance) in the window, and its
    highest."""
    groups = (SampleRow.target_id, SampleRow.session_id, SampleRow.metric, SampleRow.provenance)
    edges = (
        select(
            *groups,
            func.min(SampleRow.observed_at).label("first_at"),
            func.max(SampleRow.observed_at).label("last_at"),
            func.max(SampleRow.value).label("highest"),
        )
        .where(*in_window, SampleRow.metric.in_(metrics))
        .group_by(*groups)
        .subquery()
    )
    # (target, metric, observed_at) is unique, so each edge time names exactly one sample.
    return select(
        SampleRow.target_id,
        SampleRow.session_id,
        SampleRow.metric,
        SampleRow.provenance,
        SampleRow.currency,
        SampleRow.value,
        SampleRow.observed_at,
        (SampleRow.observed_at == edges.c.last_at).label("is_last"),
        (SampleRow.observed_at == edges.c.first_at).label("is_first"),
        edges.c.highest,
    ).join(
        edges,
        and_(
            SampleRow.target_id == edges.c.target_id,
            SampleRow.metric == edges.c.metric,
            SampleRow.provenance == edges.c.provenance,
            or_(SampleRow.observed_at == edges.c.first_at, SampleRow.observed_at == edges.c.last_at),
        ),
    )


def _minute_of(dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":
        seconds = cast(func.strftime("%s", SampleRow.observed_at), Integer)
        return (seconds / MINUTE).label("minute")
    return func.floor(extract("epoch", SampleRow.observed_at) / MINUTE).label("minute")


def _minute_maxima(in_window: list[ColumnElement[bool]], metrics: Sequence[str], dialect: str) -> Any:
    minute = _minute_of(dialect)
    groups = (SampleRow.target_id, SampleRow.session_id, SampleRow.metric, SampleRow.provenance, minute)
    return (
        select(*groups, func.max(SampleRow.value).label("value"))
        .where(*in_window, SampleRow.metric.in_(metrics))
        .group_by(*groups)
    )


def _shop_broadcast(shop: ShopEdges) -> Broadcast:
    """A marketplace shop's estimated sales in the window, as one rollup entry of its platform."""
    b = Broadcast(shop.platform, shop_key(shop.target), {shop.target}, title=shop.target)
    b.started_at = shop.first_at
    for metric, (at, value, currency) in shop_figures(shop).items():
        b.last[metric] = {"estimated": (at, value, currency)}
        b.last_seen_at = at
    return b


def _merge_session(b: Broadcast, session: Any) -> None:
    """Fold one live-session row into its broadcast (two rows until sources share one)."""
    b.title = b.title or session.title
    if session.started_at is not None and (b.started_at is None or session.started_at < b.started_at):
        b.started_at = session.started_at
    if session.ended_at is not None and (b.ended_at is None or session.ended_at > b.ended_at):
        b.ended_at = session.ended_at
    if b.last_seen_at is None or session.last_seen_at > b.last_seen_at:
        b.last_seen_at, b.last_status = session.last_seen_at, session.last_status


def _hashtag_edge(hashtags: dict[int, Hashtag], target: Any, row: Any) -> None:
    tag = hashtags.get(target.id)
    if tag is None:
        label = (target.params or {}).get("tag", target.name)
        tag = hashtags[target.id] = Hashtag(target.platform, target.name, label.lstrip("#"))
    name = "views" if row.metric == "hashtag_views" else "posts"
    if row.is_first:
        setattr(tag, f"{name}_start", row.value)
    if row.is_last:
        setattr(tag, f"{name}_end", row.value)
        tag.last_at = max(tag.last_at or row.observed_at, row.observed_at)


def _distinct_hashtags(found: Iterable[Hashtag]) -> list[Hashtag]:
    """One entry per (platform, tag): two targets watching one tag would otherwise add its views twice."""
    chosen: dict[tuple[str, str], Hashtag] = {}
    for tag in found:
        key = (tag.platform, tag.tag.casefold())
        other = chosen.get(key)
        if other is None or (tag.last_at or datetime.min.replace(tzinfo=UTC)) > (
            other.last_at or datetime.min.replace(tzinfo=UTC)
        ):
            chosen[key] = tag
    return sorted(chosen.values(), key=lambda t: (t.platform, t.tag))


def _broadcast_order(b: Broadcast) -> tuple[datetime, str, str]:
    return (b.started_at or b.last_seen_at or datetime.min.replace(tzinfo=UTC), b.platform, b.key)


def whole(value: float) -> int | float:
    """Counts stored as floats read as integers in JSON; a fractional amount stays as it is."""
    return int(value) if float(value).is_integer() else value


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
