"""Lazada Vietnam shops: sales estimated from the rounded public sold text (shared/marketplaces.md).

Kind `shop` (`shop`: the storefront slug or URL `lazada.vn/shop/{slug}` / `lazada.vn/{slug}`): the shop
listing `GET {web}/{slug}/?ajax=true&from=wangpu&langFlag=vi&pageTypeId=2&q=All-Products&page=N` [V, 5+
repositories]: `mods.listItems[]` with `itemId` (or `nid`), `price` (a VND string `"40000.00"`), `name`
and `itemSoldCntShow`, and `mainInfo.{totalResults, pageSize}` (numbers or strings). Up to
`max_products` (default 200) products a poll.
Kind `product` (`shop` and `product_id`): the same listing, keeping the one item: no exact or public sold
count of a product page is known (the `__moduleData__` paths named for it are unconfirmed guesses).

`itemSoldCntShow` is display text whose Vietnamese format is [U] ("1,2k đã bán", "Da ban 1,2K", "1.2k Đã
bán" all read); under 1,000 it is exact, above it an interval (`scrapers.marketplace.display_sold`), so
these targets write lower and upper bounds. An item without it is skipped (unknown, not zero) [U].

Refusals, all Blocked and never zero sales: a redirect to `/_____tmd_____/punish?x5secdata=…` [V], an
answer `{"rgv587_flag": "sm", "url": …}` ([V] Alibaba-family pattern, [U] on Lazada VN) and slider
pages (`nc_1_n1z`, `nc_2_n1z`) [V]. The storefront tarpits fast pollers [U], so the default interval is
an hour. LazLive (room status) is not polled yet: `mtop.lazada.live.query` needs no login (a first
call mints the token cookie the signed call uses) but is unconfirmed for Vietnam [U].
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from collector.api import (
    Blocked,
    FieldProblem,
    KindSpec,
    NotFound,
    Outcome,
    PageMarkers,
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
    display_sold,
    fetch,
    max_products,
    money,
    new_rounded_estimate,
    numeric_id,
    price_readings,
)

HOUR = 3600.0
MAX_PAGES = 100  # one code comment says listings stop at about 100 pages [U]
PUNISH_PATH = "/_____tmd_____/punish"
_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,120}")
_SHOP_URL = re.compile(r"lazada\.vn/(?:shop/)?([a-z0-9][a-z0-9._-]{0,120})", re.IGNORECASE)
SLIDER = (re.compile(rb"nc_[12]_n1z"), re.compile(rb"_____tmd_____/punish"), re.compile(rb'"rgv587_flag"'))


def _refusal(raw: RawResponse) -> Blocked | None:
    if PUNISH_PATH in raw.url or "x5secdata=" in raw.url:
        return Blocked(f"Lazada traffic gate (punish redirect): {raw.url[:120]}", url=raw.url)
    head = raw.body[:4096]
    for pattern in SLIDER:
        if match := pattern.search(head):
            return Blocked(f"Lazada block answer ({match[0].decode()}) from {raw.url[:120]}", url=raw.url)
    return None


def _listing(raw: object) -> Listing | None:
    if not isinstance(raw, dict) or (item_id := numeric_id(first(raw, ("itemId",), ("nid",)))) is None:
        return None
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    return Listing(item_id, display_sold(raw.get("itemSoldCntShow")), money(raw.get("price")), name)


def parse_listing(raw: RawResponse) -> tuple[list[Listing], int | None]:
    """One shop-listing page -> (its items, the shop's item total if stated); refusals are Blocked."""
    if (refused := _refusal(raw)) is not None:
        raise refused
    if raw.body.lstrip()[:1] == b"<":
        raise ParseFailure("not_json", "the shop listing answered HTML without a known block marker")
    doc = load_json(raw.body)
    items = first(doc, ("mods", "listItems")) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseFailure("missing_keys", "shop listing without mods.listItems[]")
    total = numeric_id(first(doc, ("mainInfo", "totalResults")))
    listings = [listing for item in items if (listing := _listing(item)) is not None]
    return listings, None if total is None else int(total)


def shop_ref(value: str) -> str | None:
    text = value.strip()
    if match := _SHOP_URL.search(text):
        return match[1].lower()
    return text.lower() if _SLUG.fullmatch(text.lower()) else None


def check_shop(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    ref = params.get("shop", "")
    if ref and shop_ref(ref) is None:
        yield FieldProblem("shop", f"not a Lazada storefront slug or shop URL: {ref[:80]!r}")
    if problem := check_max_products(params.get("max_products")):
        yield FieldProblem("max_products", problem)


def check_product(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    yield from check_shop(params)
    ref = params.get("product_id", "")
    if ref and numeric_id(ref) is None:
        yield FieldProblem("product_id", f"not a Lazada item id (a number): {ref[:80]!r}")


async def shop_listings(ctx: PollContext[Any], wanted: str | None = None) -> list[Listing]:
    """The shop's items page by page, up to the cap (or until `wanted` is found)."""
    slug = shop_ref(ctx.target.params["shop"])
    url = f"{ctx.base_urls['web'].rstrip('/')}/{slug}/"
    cap, found = max_products(ctx.target.params), []
    for page in range(1, MAX_PAGES + 1):
        query = {"ajax": "true", "from": "wangpu", "langFlag": "vi", "pageTypeId": "2",
                 "q": "All-Products", "page": str(page)}  # fmt: skip
        listings, total = parse_listing(await fetch(ctx.http, url, "Lazada storefront", params=query))
        found += listings
        if wanted is not None and any(listing.product_id == wanted for listing in listings):
            break
        if not listings or len(found) >= min(cap, total if total is not None else cap):
            break
    if not found:
        raise NotFound(f"Lazada shop {slug!r} lists no products")
    return found[:cap]


async def poll_shop(ctx: PollContext[SalesEstimate]) -> PollResult:
    return PollResult(Outcome.OK, ParseResult(ctx.state.update(await shop_listings(ctx))))


async def poll_product(ctx: PollContext[SalesEstimate]) -> PollResult:
    wanted = numeric_id(ctx.target.params["product_id"])
    listing = next((item for item in await shop_listings(ctx, wanted) if item.product_id == wanted), None)
    if listing is None:
        raise NotFound(f"Lazada shop {ctx.target.params['shop'][:80]!r} does not list item {wanted}")
    return PollResult(Outcome.OK, ParseResult(ctx.state.update([listing]) + price_readings(listing)))


class LazadaAdapter:
    name = "lazada"
    kinds = {
        "shop": KindSpec(
            poll_shop,
            required=("shop",),
            optional=("max_products",),
            check=check_shop,
            new_state=new_rounded_estimate,
            default_interval=HOUR,
            summary="a storefront's estimated sales (bounds: the sold text is rounded), capped",
        ),
        "product": KindSpec(
            poll_product,
            required=("shop", "product_id"),
            optional=("max_products",),
            check=check_product,
            new_state=new_rounded_estimate,
            default_interval=HOUR,
            summary="one item of a storefront: estimated sales (bounds) and its price",
        ),
    }
    default_base_urls = {"web": "https://www.lazada.vn"}
    # Slider and traffic-gate pages (HTML) are caught by the core; JSON refusals by `parse_listing`.
    markers = PageMarkers(blocked=SLIDER[:2])


adapter = LazadaAdapter()
