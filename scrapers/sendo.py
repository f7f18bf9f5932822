"""Sendo products and shops: sales estimated from the exact public `order_count` (shared/marketplaces.md).

Kind `product` (`product`: the product's slug or its URL `sendo.vn/{slug}.html`): `GET {detail}/full/{slug}`
with a `Referer` [V]: `data.{id, name, final_price (selling), price (list), order_count}`; the legacy
wap_v2 envelope `result.data` is read too [V, old]. Whether `order_count` counts units or orders is [U]:
it is written as `items_sold`, and the report states the method.
Kind `shop` (`shop`: the numeric `seller_admin_id`): `GET {shop}/api/v1/product/filter?seller_admin_id=
&page=&limit=` [V]: `data.total` and `data.list[]` whose entries carry `product_id`, `final_price` and
`order_count` themselves (capture KhaB-BIT/Truth-Review), so one request per page of the shop is enough.
Up to `max_products` (default 200) products a poll.

No block answers are known for Sendo [U]: anything unreadable is a ParseFailure with its body kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from collector.api import (
    NO_MARKERS,
    FieldProblem,
    KindSpec,
    NotFound,
    Outcome,
    ParseFailure,
    PollContext,
    PollResult,
    RawResponse,
)
from schemas.types import ParseResult
from scrapers.extract import first, load_json
from scrapers.marketplace import (
    Listing,
    SalesEstimate,
    check_max_products,
    exact_sold,
    fetch,
    max_products,
    money,
    new_estimate,
    numeric_id,
    price_readings,
    product_readings,
)

PAGE_SIZE = 60
HOUR = 3600.0
MAX_PAGES = 50  # a shop listing that never ends is junk, not a reason to poll forever
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,200}")
_PRODUCT_URL = re.compile(r"sendo\.vn/(?:san-pham/)?([a-z0-9][a-z0-9-]{0,200})(?:\.html)?", re.IGNORECASE)


def _listing(raw: object) -> Listing | None:
    if not isinstance(raw, dict) or (product_id := numeric_id(first(raw, ("product_id",), ("id",)))) is None:
        return None
    sold = exact_sold(raw.get("order_count", 0))  # [U] no `order_count`: nothing sold yet
    price = money(first(raw, ("final_price",), ("price",)))
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    return Listing(product_id, sold, price, name)


def parse_product(body: bytes) -> Listing:
    """`detail-api…/full/{slug}` (or wap_v2's `result.data`) -> order_count and the selling price."""
    doc = load_json(body)
    data = first(doc, ("data",), ("result", "data")) if isinstance(doc, dict) else None
    if isinstance(doc, dict) and data is None and ("data" in doc or "result" in doc):
        raise NotFound("Sendo has no such product (no data)")
    listing = _listing(data)
    if listing is None:
        raise ParseFailure("missing_keys", "product without data.id")
    if listing.sold is None:
        raise ParseFailure("bad_number", "product order_count unreadable")
    return listing


def parse_shop_page(body: bytes) -> tuple[list[Listing], int | None]:
    """One `product/filter` page -> (its products, the shop's product total if stated)."""
    doc = load_json(body)
    data = doc.get("data") if isinstance(doc, dict) else None
    rows = data.get("list") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ParseFailure("missing_keys", "shop products without data.list[]")
    total = data.get("total")  # type: ignore[union-attr]
    listings = [listing for raw in rows if (listing := _listing(raw)) is not None]
    return listings, total if type(total) is int and total >= 0 else None


def product_ref(value: str) -> str | None:
    text = value.strip()
    if match := _PRODUCT_URL.search(text):
        return match[1].lower()
    return text.lower() if _SLUG.fullmatch(text.lower()) else None


def check_product(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("product", "")
    if ref and product_ref(ref) is None:
        yield FieldProblem("product", f"not a Sendo product slug or product URL: {ref[:80]!r}")


def check_shop(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("shop", "")
    if ref and numeric_id(ref) is None:
        yield FieldProblem("shop", f"not a Sendo seller_admin_id (a number): {ref[:80]!r}")
    if problem := check_max_products(params.get("max_products")):
        yield FieldProblem("max_products", problem)


def _headers(ctx: PollContext[Any]) -> dict[str, str]:
    return {"Referer": ctx.base_urls["web"].rstrip("/") + "/"}


async def poll_product(ctx: PollContext[SalesEstimate]) -> PollResult:
    slug = product_ref(ctx.target.params["product"])
    url = f"{ctx.base_urls['detail'].rstrip('/')}/full/{slug}"
    raw = await fetch(ctx.http, url, "Sendo product", headers=_headers(ctx))
    return PollResult(Outcome.OK, ParseResult(product_readings(parse_product(raw.body), ctx.state)))


async def poll_shop(ctx: PollContext[SalesEstimate]) -> PollResult:
    seller = ctx.target.params["shop"].strip()
    url = f"{ctx.base_urls['shop'].rstrip('/')}/api/v1/product/filter"
    cap, found = max_products(ctx.target.params), []
    for page in range(1, MAX_PAGES + 1):
        query = {"seller_admin_id": seller, "page": str(page), "limit": str(PAGE_SIZE), "platform": "web",
                 "sortType": "norder_30_desc"}  # fmt: skip
        raw = await fetch(ctx.http, url, "Sendo shop", params=query, headers=_headers(ctx))
        listings, total = parse_shop_page(raw.body)
        found += listings
        if not listings or len(found) >= min(cap, total if total is not None else cap):
            break
    if not found:
        raise NotFound(f"Sendo shop {seller} lists no products")
    return PollResult(Outcome.OK, ParseResult(ctx.state.update(found[:cap])))


def reparse_product(raw: RawResponse) -> ParseResult | None:
    """A stored product body: its price (the estimate needs the poll history, not one body)."""
    return ParseResult(price_readings(parse_product(raw.body))) if "/full/" in raw.url else None


class SendoAdapter:
    name = "sendo"
    kinds = {
        "product": KindSpec(
            poll_product,
            required=("product",),
            check=check_product,
            new_state=new_estimate,
            reparse=reparse_product,
            default_interval=HOUR,
            summary="a product's estimated sales since its baseline (exact order_count) and its price",
        ),
        "shop": KindSpec(
            poll_shop,
            required=("shop",),
            optional=("max_products",),
            check=check_shop,
            new_state=new_estimate,
            default_interval=HOUR,
            summary="a shop's estimated sales over its products (capped), from exact order counts",
        ),
    }
    default_base_urls = {
        "web": "https://www.sendo.vn",
        "detail": "https://detail-api.sendo.vn",
        "shop": "https://shop-home.sendo.vn",
    }
    markers = NO_MARKERS


adapter = SendoAdapter()
