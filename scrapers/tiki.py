"""Tiki products and shops: sales estimated from the exact public sold counter (shared/marketplaces.md).

Kind `product` (`product_id`: a number or a product URL `…-p{id}.html`): `GET {web}/api/v2/products/{id}`
[V]: `all_time_quantity_sold` (exact [V]; `quantity_sold.value` stands in), selling price
`current_seller.price` (else `price`) in whole VND [V].
Kind `shop` (`shop`: a seller id or a shop URL with `seller_id=`): `GET {api}/seller-store/v2/collections/
1/products?seller_id=&cursor=&limit=` with `x-source: local` [V URL and header]. The answer's shape is
[U]: read as `data[]` of products shaped like the listing (`id`, `price`, `quantity_sold{value}` or
`all_time_quantity_sold`), `cursor` as an offset, and the last page as one shorter than `limit` (or
`paging.last_page` reached). Up to `max_products` (default 200) products a poll.

Refusals: HTTP 429 is rate limiting (the core backs off); an unknown product (`{"error":{"code":404}}`
[U] or HTTP 404) is NotFound. Sales: `scrapers.marketplace` (baseline, corrections).
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

PAGE_SIZE = 100  # the collections endpoint's largest page [V]
HOUR = 3600.0
_PRODUCT_URL = re.compile(r"-p(\d{1,15})\.html")
_SELLER_PARAM = re.compile(r"[?&]seller_id=(\d{1,15})(?!\d)")


def _object(body: bytes, what: str) -> dict[str, Any]:
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("missing_keys", f"{what} is not a JSON object")
    error = doc.get("error")
    if isinstance(error, dict) and first(error, ("code",)) in (404, "404"):
        raise NotFound(f"Tiki answered {what} with error 404")
    return doc


def _listing(raw: object) -> Listing | None:
    if not isinstance(raw, dict) or (product_id := numeric_id(raw.get("id"))) is None:
        return None
    sold = exact_sold(first(raw, ("all_time_quantity_sold",), ("quantity_sold", "value")))
    if sold is None and first(raw, ("all_time_quantity_sold",), ("quantity_sold",)) is None:
        sold = exact_sold(0)  # [U] a product nobody bought yet carries no sold field
    price = money(first(raw, ("current_seller", "price"), ("price",)))
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    return Listing(product_id, sold, price, name)


def parse_product(body: bytes) -> Listing:
    """`/api/v2/products/{id}` -> the product's exact sold counter and selling price."""
    listing = _listing(_object(body, "product"))
    if listing is None:
        raise ParseFailure("missing_keys", "product without an id")
    if listing.sold is None:
        raise ParseFailure("bad_number", "product sold counter unreadable")
    return listing


def parse_shop_page(body: bytes) -> tuple[list[Listing], bool]:
    """One collections page -> (its products, whether it was the last page)."""
    doc = _object(body, "shop products")
    data = doc.get("data")
    if not isinstance(data, list):
        raise ParseFailure("missing_keys", "shop products without data[]")
    listings = [listing for raw in data if (listing := _listing(raw)) is not None]
    paging = doc.get("paging") if isinstance(doc.get("paging"), dict) else {}
    current, last = paging.get("current_page"), paging.get("last_page")
    at_end = len(data) < PAGE_SIZE or (type(current) is int and type(last) is int and current >= last)
    return listings, at_end


def product_ref(value: str) -> str | None:
    text = value.strip()
    if match := _PRODUCT_URL.search(text):
        return numeric_id(match[1])
    return numeric_id(text)


def shop_ref(value: str) -> str | None:
    text = value.strip()
    if match := _SELLER_PARAM.search(text):
        return numeric_id(match[1])
    return numeric_id(text)


def check_product(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("product_id", "")
    if ref and product_ref(ref) is None:
        yield FieldProblem("product_id", f"not a Tiki product id or product URL: {ref[:80]!r}")


def check_shop(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("shop", "")
    if ref and shop_ref(ref) is None:
        yield FieldProblem("shop", f"not a Tiki seller id or shop URL with seller_id=: {ref[:80]!r}")
    if problem := check_max_products(params.get("max_products")):
        yield FieldProblem("max_products", problem)


async def poll_product(ctx: PollContext[SalesEstimate]) -> PollResult:
    product_id = product_ref(ctx.target.params["product_id"])
    web = ctx.base_urls["web"].rstrip("/")
    url = f"{web}/api/v2/products/{product_id}"
    raw = await fetch(ctx.http, url, "Tiki product", params={"platform": "web"})
    readings = product_readings(parse_product(raw.body), ctx.state)
    return PollResult(Outcome.OK, ParseResult(readings))


async def poll_shop(ctx: PollContext[SalesEstimate]) -> PollResult:
    seller = shop_ref(ctx.target.params["shop"])
    api = ctx.base_urls["api"].rstrip("/")
    cap, found = max_products(ctx.target.params), []
    while len(found) < cap:
        query = {"seller_id": str(seller), "cursor": str(len(found)), "limit": str(PAGE_SIZE)}
        url = f"{api}/seller-store/v2/collections/1/products"
        raw = await fetch(ctx.http, url, "Tiki shop", params=query, headers={"x-source": "local"})
        listings, at_end = parse_shop_page(raw.body)
        found += listings
        if at_end or not listings:
            break
    return PollResult(Outcome.OK, ParseResult(ctx.state.update(found[:cap])))


def reparse_product(raw: RawResponse) -> ParseResult | None:
    """A stored product body with a fresh estimate: its price only (the estimate needs the history)."""
    if "/api/v2/products/" not in raw.url:
        return None
    return ParseResult(price_readings(parse_product(raw.body)))


class TikiAdapter:
    name = "tiki"
    kinds = {
        "product": KindSpec(
            poll_product,
            required=("product_id",),
            check=check_product,
            new_state=new_estimate,
            reparse=reparse_product,
            default_interval=HOUR / 2,
            summary="a product's estimated sales since its baseline (exact sold counter) and its price",
        ),
        "shop": KindSpec(
            poll_shop,
            required=("shop",),
            optional=("max_products",),
            check=check_shop,
            new_state=new_estimate,
            default_interval=HOUR / 2,
            summary="a shop's estimated sales over its products (capped), from exact sold counters",
        ),
    }
    default_base_urls = {"web": "https://tiki.vn", "api": "https://api.tiki.vn"}
    markers = NO_MARKERS  # open JSON; refusals are HTTP 429 [U]


adapter = TikiAdapter()
