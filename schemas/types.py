"""Normalised in-memory vocabulary shared by adapters, the store and the metrics exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Provenance(StrEnum):
    """Where a number comes from: a public page, the shop's own dashboard/API, or derived."""

    OBSERVED = "observed"
    REPORTED = "reported"
    ESTIMATED = "estimated"


class LiveStatus(StrEnum):
    """One status vocabulary for every platform's live session."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"
    UNKNOWN = "unknown"


# The numeric encoding exported as the `live_status` metric; Grafana value mappings rely on it.
LIVE_STATUS_CODE: dict[LiveStatus, int] = {
    LiveStatus.UNKNOWN: 0,
    LiveStatus.SCHEDULED: 1,
    LiveStatus.LIVE: 2,
    LiveStatus.PAUSED: 3,
    LiveStatus.ENDED: 4,
}


class Metric(StrEnum):
    """The metric names used everywhere: database rows, exports and Prometheus series."""

    VIEWERS = "viewers"  # concurrent viewers now
    PEAK_VIEWERS = "peak_viewers"
    VIEWS = "views"  # cumulative views/entries of the session
    UNIQUE_VIEWERS = "unique_viewers"  # distinct viewers of the session so far (shop's own API)
    LIKES = "likes"
    COMMENTS = "comments"
    SHARES = "shares"
    FOLLOWERS = "followers"
    NEW_FOLLOWERS = "new_followers"
    ORDERS = "orders"  # placed orders
    ITEMS_SOLD = "items_sold"
    BUYERS = "buyers"  # distinct customers who ordered
    REVENUE = "revenue"  # placed GMV, or estimated from live-bag sales
    ORDERS_CONFIRMED = "orders_confirmed"
    ITEMS_SOLD_CONFIRMED = "items_sold_confirmed"
    REVENUE_CONFIRMED = "revenue_confirmed"
    ITEMS_ON_SALE = "items_on_sale"
    HASHTAG_VIEWS = "hashtag_views"
    HASHTAG_POSTS = "hashtag_posts"
    LIVE_STATUS = "live_status"
    # Marketplace shops (Tiki, Sendo, Lazada): sales estimated from public "sold" counters since the
    # target's baseline. Where the counter is rounded (Lazada's `1,2k đã bán`), `items_sold`/`revenue`
    # are the lower bound and these the upper bound; an exact counter writes no upper bound.
    ITEMS_SOLD_UPPER = "items_sold_upper"
    REVENUE_UPPER = "revenue_upper"
    PRICE = "price"  # a product's selling price now, in the currency's base unit


@dataclass(frozen=True, slots=True)
class Reading:
    """One number a parser found on a page, before it is stamped with target and time."""

    metric: Metric
    value: float
    provenance: Provenance = Provenance.OBSERVED
    currency: str | None = None  # ISO 4217, for money metrics only


@dataclass(frozen=True, slots=True)
class SessionObservation:
    """What a page says about the live session it shows (keyed by the platform's room/session id)."""

    key: str
    status: LiveStatus
    title: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # The broadcasting account's handle, where the source names it: the store links sources that key
    # one broadcast by different ids (a public room id, a shop's live id) by account and time.
    account: str | None = None


@dataclass(slots=True)
class ParseResult:
    """The output of a pure parse function."""

    readings: list[Reading] = field(default_factory=list)
    session: SessionObservation | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """A stamped reading: the unit the store writes and the exporter publishes."""

    target: str
    platform: str
    kind: str
    metric: Metric
    value: float
    observed_at: datetime
    provenance: Provenance
    session_key: str | None = None
    currency: str | None = None
