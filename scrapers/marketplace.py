"""What the marketplace adapters (Tiki, Sendo, Lazada) share: sold counters with their rounding, the
sales estimate built from them, and the polite paging through a shop's products.

The estimate is the one market trackers publish (shared/marketplaces.md, "how Metric.vn does it"):
units sold = the rise of each product's public lifetime "sold" counter since its baseline, revenue =
those units × the product's selling price when the rise was seen. Provenance `estimated`.

- Baseline: the first reading of each product by this target (a product first seen later joins at
  its count then, adding nothing). The campaign report takes the rise of the estimate inside the
  campaign window (last − first reading in the window), so a target polled before the window starts
  counts from the window's first poll; one started inside the window counts from its first poll.
- A counter that goes down is a correction (cancellations, a platform recount), never negative sales:
  what was counted stays, and the product counts again from the lower value.
- A rounded counter (Lazada's `1,2k đã bán`) is an interval, not a number: `items_sold`/`revenue` are
  then the lower bound and `items_sold_upper`/`revenue_upper` the upper bound. Whether the site
  truncates or rounds is unknown [U], so `1,2k` is read as 1150…1299 (both readings' union).
- Limits: sales before the baseline are missed; a restart of the service starts new baselines (the
  report then counts from the restart's first poll); products past the shop cap are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.api import HttpError, HttpFetch, NotFound, RawResponse
from schemas.types import Metric, Reading
from schemas.types import Provenance as P
from scrapers.normalise import NumberFormatError, parse_count

CURRENCY = "VND"
MAX_NUMBER = 10**13  # larger counts or prices are junk (and would overflow revenue sums)
# The numeral and suffix of a compact count: "1,2k", "10.0K", "1 N"; its last digit's weight is the step.
_COMPACT = re.compile(r"(?<![\w.,])([0-9]+)(?:[.,]([0-9]+))?\s*(k|n|m|tr)(?!\w)", re.IGNORECASE)
_STEP = {"k": 1000, "n": 1000, "m": 10**6, "tr": 10**6}


@dataclass(frozen=True, slots=True)
class Sold:
    """A lifetime sold count: exact when `low == high`."""

    low: int
    high: int

    @property
    def exact(self) -> bool:
        return self.low == self.high


def numeric_id(value: object) -> str | None:
    """A product or seller id as digits (an int or a string of ASCII digits, not all zeros), or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip() if isinstance(value, str) or 0 < value < 10**15 else ""
    return text if text.isascii() and text.isdigit() and text.strip("0") and len(text) <= 15 else None


def exact_sold(value: object) -> Sold | None:
    """An exact integer counter (Tiki `all_time_quantity_sold`, Sendo `order_count`), or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        count = parse_count(value)
    except NumberFormatError:
        return None
    return Sold(count, count) if 0 <= count <= MAX_NUMBER else None


def display_sold(text: object) -> Sold | None:
    """A displayed count ("1,2k đã bán", "Đã bán 999", "10.0K sold") as the interval it stands for."""
    if not isinstance(text, str) or len(text) > 80:
        return None
    try:
        count = parse_count(text)
    except NumberFormatError:
        return None
    if not 0 <= count <= MAX_NUMBER:
        return None
    match = _COMPACT.search(text)
    if match is None:
        return Sold(count, count)
    step = _STEP[match[3].lower()] // 10 ** len(match[2] or "")
    # Truncated ("1,2k" = 1200…1299) or rounded (1150…1249): the union of both.
    return Sold(max(0, count - step // 2), count + step - 1)


def money(value: object) -> int | None:
    """A price in whole VND: an int, a float, or a decimal string ("40000.00"); None when unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    if amount != amount or not 0 <= amount <= MAX_NUMBER:  # NaN, negative, absurd
        return None
    return round(amount)


@dataclass(frozen=True, slots=True)
class Listing:
    """One product as a page shows it: its sold counter and selling price (None where unreadable)."""

    product_id: str
    sold: Sold | None
    price: int | None
    name: str | None = None


@dataclass(slots=True)
class _Product:
    base: Sold
    latest: Sold
    price: int | None
    banked: tuple[int, int, int, int] = (0, 0, 0, 0)  # items low/high, revenue low/high before a correction

    def gained(self) -> tuple[int, int, int, int]:
        low = max(0, self.latest.low - self.base.high)
        high = max(0, self.latest.high - self.base.low)
        price = self.price or 0
        b = self.banked
        return b[0] + low, b[1] + high, b[2] + low * price, b[3] + high * price

    def see(self, sold: Sold, price: int | None) -> None:
        if sold.high < self.latest.low:  # went down for certain: a correction
            self.banked = self.gained()
            self.base = sold
        self.latest, self.price = sold, price if price is not None else self.price


@dataclass(slots=True)
class SalesEstimate:
    """A target's per-product baselines and the estimate they give; kept between its polls."""

    rounded: bool = False  # the platform shows rounded counts: upper bounds are written too
    products: dict[str, _Product] = field(default_factory=dict)

    def update(self, listings: Iterable[Listing]) -> list[Reading]:
        for listing in listings:
            if listing.sold is None:
                continue
            known = self.products.get(listing.product_id)
            if known is None:
                self.products[listing.product_id] = _Product(listing.sold, listing.sold, listing.price)
            else:
                known.see(listing.sold, listing.price)
        return self.readings()

    def totals(self) -> tuple[int, int, int, int]:
        """(items low, items high, revenue low, revenue high) over every product seen."""
        sums = [0, 0, 0, 0]
        for product in self.products.values():
            for i, value in enumerate(product.gained()):
                sums[i] += value
        return sums[0], sums[1], sums[2], sums[3]

    def readings(self) -> list[Reading]:
        items_low, items_high, revenue_low, revenue_high = self.totals()
        readings = [
            Reading(Metric.ITEMS_SOLD, float(items_low), P.ESTIMATED),
            Reading(Metric.REVENUE, float(revenue_low), P.ESTIMATED, CURRENCY),
        ]
        if self.rounded:
            readings += [
                Reading(Metric.ITEMS_SOLD_UPPER, float(items_high), P.ESTIMATED),
                Reading(Metric.REVENUE_UPPER, float(revenue_high), P.ESTIMATED, CURRENCY),
            ]
        return readings


def price_readings(listing: Listing) -> list[Reading]:
    """A product's selling price now (observed), if it shows one."""
    if listing.price is None:
        return []
    return [Reading(Metric.PRICE, float(listing.price), P.OBSERVED, CURRENCY)]


def product_readings(listing: Listing, estimate: SalesEstimate) -> list[Reading]:
    """A product target's estimate plus its price now."""
    return estimate.update([listing]) + price_readings(listing)


def new_estimate() -> SalesEstimate:
    return SalesEstimate()


def new_rounded_estimate() -> SalesEstimate:
    return SalesEstimate(rounded=True)


DEFAULT_MAX_PRODUCTS = 200
MAX_PRODUCTS_LIMIT = 2000


def max_products(params: Mapping[str, str]) -> int:
    raw = params.get("max_products", "").strip()
    return int(raw) if raw.isdigit() else DEFAULT_MAX_PRODUCTS


def check_max_products(raw: str | None) -> str | None:
    """The problem with a `max_products` field, or None."""
    if raw is None:
        return None
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PRODUCTS_LIMIT:
        return f"must be a whole number from 1 to {MAX_PRODUCTS_LIMIT}, not {raw[:20]!r}"
    return None


async def fetch(http: HttpFetch, url: str, what: str, **kwargs: Any) -> RawResponse:
    """GET through the poll's fetcher; HTTP 404 means the product or shop does not exist (NotFound)."""
    try:
        return await http.get(url, **kwargs)
    except HttpError as exc:
        if exc.status == 404:
            raise NotFound(f"no such {what}: {url[:160]}", url=exc.url, status=404) from None
        raise
