"""Sendo's public JSON (shared/marketplaces.md): the product detail API and a shop's product filter.

Choices where the shape is [U]: an unknown slug answers HTTP 404 `{"data": null, "error": …}`;
`order_count` counts units; no block answer is simulated (none is known).
"""

from __future__ import annotations

from aiohttp import web

from simulator import marketplace
from simulator.keys import CLOCK, SCENARIO, json_response

NAME = "sendo"
DETAIL = "/detail-api.sendo.vn"
SHOP = "/shop-home.sendo.vn"


def product_body(product: marketplace.Product, sold: int, shop: marketplace.Shop) -> dict:
    return {
        "id": int(product.product_id),
        "product_id": int(product.product_id),
        "name": product.name,
        "category_path": product.slug,
        "price": product.price + product.price // 5,
        "final_price": product.price,
        "order_count": sold,
        "quantity": 250,
        "stock_status": 1,
        "shop_info": {"shop_id": int(shop.ref), "shop_name": shop.name, "rating_avg": 4.8},
    }


async def handle_detail(request: web.Request) -> web.Response:
    scenario, elapsed = request.app[SCENARIO].name, request.app[CLOCK].elapsed()
    if found := marketplace.locate(scenario, NAME, lambda p: p.slug == request.match_info["slug"]):
        shop, product = found
        sold = marketplace.sold_at(marketplace.world_for(scenario), product, elapsed)
        return json_response({"data": product_body(product, sold, shop)})
    return json_response({"data": None, "error": {"code": 404, "message": "Product not found"}}, status=404)


async def handle_filter(request: web.Request) -> web.Response:
    scenario, elapsed = request.app[SCENARIO].name, request.app[CLOCK].elapsed()
    try:
        page, limit = int(request.query.get("page", "1")), int(request.query.get("limit", "20"))
    except ValueError:
        return json_response({"status": 400, "data": None}, status=400)
    shop = marketplace.shops_of(scenario, NAME).get(request.query.get("seller_admin_id", ""))
    products = shop.products if shop else ()
    world = marketplace.world_for(scenario)
    rows = [
        product_body(p, marketplace.sold_at(world, p, elapsed), shop)  # type: ignore[arg-type]
        for p in products[(page - 1) * limit : page * limit]
    ]
    return json_response({"data": {"total": len(products), "list": rows}})


def truth(scenario, elapsed: float, _epoch: float) -> dict:  # type: ignore[no-untyped-def]
    return marketplace.truth(scenario.name, NAME, elapsed)


def register(app: web.Application) -> None:
    app.router.add_get(DETAIL + "/full/{slug}", handle_detail)
    app.router.add_get(SHOP + "/api/v1/product/filter", handle_filter)
