"""Lazada Vietnam's storefront listing (shared/marketplaces.md) and its traffic gate.

The shop listing `/{slug}/?ajax=true&…&page=N` answers `mods.listItems[]` (40 a page) with prices as
VND strings and the sold count as rounded text: exact under 1,000, else truncated to one decimal of
thousands, the decimal kept when 0 as in "10.0K sold" ("1,2k đã bán", "1,0k đã bán": [U] whether
the site truncates or rounds). `mainInfo` numbers are strings.
The refusals are fault modes (`punish_redirect`, `rgv587`, `slider`); the punish redirect lands on the
gate page served here. An unknown storefront answers HTTP 404.
"""

from __future__ import annotations

from aiohttp import web

from simulator import marketplace
from simulator.keys import CLOCK, SCENARIO, json_response

NAME = "lazada"
WEB = "/www.lazada.vn"
PUNISH = WEB + "/_____tmd_____/punish"
PAGE_SIZE = 40
PUNISH_PAGE = (
    b'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><div class="wrapper">'
    b'<a href="#" class="feedback">Click to feedback &gt;</a></div></body></html>'
)


def sold_text(sold: int) -> str:
    if sold < 1000:
        return f"{sold} đã bán"
    whole, tenth = divmod(sold // 100, 10)  # truncated to one decimal of thousands, kept when 0 ("10.0K")
    return f"{whole},{tenth}k đã bán"


def item_body(product: marketplace.Product, sold: int, shop: marketplace.Shop) -> dict:
    return {
        "name": product.name,
        "nid": product.product_id,
        "itemId": product.product_id,
        "skuId": str(int(product.product_id) + 9_000_000_000),
        "price": f"{product.price}.00",
        "priceShow": f"{product.price:,} ₫".replace(",", "."),
        "sellerName": shop.name,
        "location": "Lai Châu",
        "inStock": True,
        "itemSoldCntShow": sold_text(sold),
        "itemUrl": f"//www.lazada.vn/products/i{product.product_id}.html",
    }


async def handle_storefront(request: web.Request) -> web.Response:
    scenario, elapsed = request.app[SCENARIO].name, request.app[CLOCK].elapsed()
    shop = marketplace.shops_of(scenario, NAME).get(request.match_info["slug"])
    if shop is None:
        return web.Response(status=404, text="Không tìm thấy trang", content_type="text/html")
    if request.query.get("ajax") != "true":
        return web.Response(text=f"<html><title>{shop.name}</title></html>", content_type="text/html")
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    world = marketplace.world_for(scenario)
    items = [
        item_body(p, marketplace.sold_at(world, p, elapsed), shop)
        for p in shop.products[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ]
    main = {"totalResults": str(len(shop.products)), "pageSize": str(PAGE_SIZE), "page": str(page),
            "selectedFilters": {"shopId": str(1_000_000_000 + len(shop.ref))}}  # fmt: skip
    return json_response({"mods": {"listItems": items}, "mainInfo": main})


async def handle_punish(_request: web.Request) -> web.Response:
    return web.Response(body=PUNISH_PAGE, content_type="text/html")


def truth(scenario, elapsed: float, _epoch: float) -> dict:  # type: ignore[no-untyped-def]
    return marketplace.truth(scenario.name, NAME, elapsed)


def register(app: web.Application) -> None:
    app.router.add_get(PUNISH, handle_punish)
    app.router.add_get(WEB + "/{slug}/", handle_storefront)
