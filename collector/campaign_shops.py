"""Marketplace shops in a campaign rollup: a target's estimated sales that belong to no live session.

Marketplace adapters write a running estimate per target (`items_sold`, `revenue`, provenance
`estimated`, counted from the target's own baseline, never decreasing) and, where the public counter is
rounded, its upper bounds (`items_sold_upper`, `revenue_upper`). A shop's figure for the campaign window
is the rise of that estimate inside the window: last reading minus first. With bounds, the rise lies
between (lower last − upper first) and (upper last − lower first). Each shop becomes one entry of the
rollup, keyed `shop:<target>` on its platform, so platform columns, totals and the board take it in like
a broadcast, with provenance `estimated` and `rounded` set where bounds exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SHOP_METRICS = ("items_sold", "revenue", "items_sold_upper", "revenue_upper")
SHOP_KEY_PREFIX = "shop:"
ESTIMATED = "estimated"
MARKETPLACE_METHOD = (
    "estimated: the rise of each product's public sold counter inside the window (from the first poll "
    "in it) times its selling price when the rise was seen; a counter that goes down is a correction"
)
ROUNDED_METHOD = (
    "rounded: the sold counter is shown rounded (1,2k), so items and revenue are lower bounds and "
    "`items_sold_upper`/`revenue_upper` the upper bounds; never an exact figure"
)
UPPER = {"items_sold": "items_sold_upper", "revenue": "revenue_upper"}


@dataclass(slots=True)
class ShopEdges:
    """The first and last estimate of one marketplace target in the window."""

    platform: str
    target: str
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, tuple[datetime, float, str | None]] = field(default_factory=dict)
    first_at: datetime | None = None

    @property
    def rounded(self) -> bool:
        return any(metric in self.last for metric in UPPER.values())

    def rise(self, metric: str) -> tuple[float, float] | None:
        """(lower, upper) rise of `metric` in the window; lower == upper for an exact counter."""
        if metric not in self.last or metric not in self.first:
            return None
        upper = UPPER[metric]
        low_first, low_last = self.first[metric], self.last[metric][1]
        high_first, high_last = self.first.get(upper, low_first), self.last.get(upper, (None, low_last))[1]
        return max(0.0, low_last - high_first), max(0.0, high_last - low_first)


def add_shop_edge(shops: dict[int, ShopEdges], target: Any, row: Any) -> None:
    """Fold one edge row (first/last sample of a metric in the window) of a marketplace target."""
    if row.provenance != ESTIMATED:
        return
    shop = shops.get(target.id)
    if shop is None:
        shop = shops[target.id] = ShopEdges(target.platform, target.name)
    if row.is_first:
        shop.first[row.metric] = row.value
        shop.first_at = row.observed_at if shop.first_at is None else min(shop.first_at, row.observed_at)
    if row.is_last:
        shop.last[row.metric] = (row.observed_at, row.value, row.currency)


def is_shop_metric(row: Any) -> bool:
    return row.session_id is None and row.metric in SHOP_METRICS


def shop_key(target: str) -> str:
    return SHOP_KEY_PREFIX + target


def shop_figures(shop: ShopEdges) -> dict[str, tuple[datetime, float, str | None]]:
    """metric -> (last seen, rise in the window, currency): lower bounds under the metric's own name,
    upper bounds under `*_upper` when the shop's counters are rounded."""
    figures = {}
    for metric, upper in UPPER.items():
        rise = shop.rise(metric)
        if rise is None:
            continue
        at, _, currency = shop.last[metric]
        figures[metric] = (at, rise[0], currency)
        if shop.rounded:
            figures[upper] = (at, rise[1], currency)
    return figures
