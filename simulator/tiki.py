"""Tiki's public JSON (shared/marketplaces.md): the product API and a shop's collection listing.

Choices where the shape is [U]: an unknown product answers HTTP 404 `{"error": {"code": 404}}`; the
collection listing (which needs `x-source: local`, else HTTP 400) answers `data[]` and `paging`, with
`cursor` an offset. Rate limiting is the `429` fault mode.
"""

from __future__ import annotations

from aiohttp import web

from simulator import marketplace
from simulator.keys import CLOCK, SCENARIO, json_response

NAME = "tiki"
WEB = "/tiki.vn"
API = "/api.tiki.vn"
MAX_LIMIT = 100


def product_body(product: marketplace.Product, sold: int, seller: marketplace.Shop) -> dict:
    return {
        "id": int(product.product_id),
        "name": product.name,
        "price": product.price,
        "list_price": product.price + product.price // 10,
        "all_time_quantity_sold": sold,
        "quantity_sold": {"text": f"Đã bán {sold}", "value": sold},
        "stock_item": {"max_sale_qty": 1000, "qty": 1000},
        "seller": None,
        "current_seller": {"id": int(seller.ref), "name": seller.name, "price": product.price,
                           "product_id": product.product_id, "store_id": 40000 + int(seller.ref) % 1000},
    }  # fmt: skip


def _now(request: web.Request) -> tuple[str, float]:
    return request.app[SCENARIO].name, request.app[CLOCK].elapsed()


async def handle_product(request: web.Request) -> web.Response:
    scenario, elapsed = _now(request)
    wanted = request.match_info["product_id"]
    for shop in marketplace.shops_of(scenario, NAME).values():
        for product in shop.products:
            if product.product_id == wanted:
                world = marketplace.world_for(scenario)
                return json_response(
                    product_body(product, marketplace.sold_at(world, product, elapsed), shop)
                )
    return json_response({"error": {"code": 404, "message": "Không tìm thấy sản phẩm"}}, status=404)


async def handle_collection(request: web.Request) -> web.Response:
    if request.headers.get("x-source") != "local":
        return json_response({"error": {"code": 400, "message": "missing x-source"}}, status=400)
    scenario, elapsed = _now(request)
    try:
        cursor = int(request.query.get("cursor", "0"))
        limit = min(MAX_LIMIT, int(request.query.get("limit", "20")))
    except ValueError:
        return json_response({"error": {"code": 400, "message": "bad paging"}}, status=400)
    shop = marketplace.shops_of(scenario, NAME).get(request.query.get("seller_id", ""))
    products = shop.products if shop else ()
    world = marketplace.world_for(scenario)
    page = [
        product_body(p, marketplace.sold_at(world, p, elapsed), shop)  # type: ignore[arg-type]
        for p in products[cursor : cursor + limit]
    ]
    last_page = max(1, -(-len(products) // max(1, limit)))
    paging = {"total": len(products), "per_page": limit, "current_page": cursor // max(1, limit) + 1,
              "last_page": last_page}  # fmt: skip
    return json_response({"data": page, "paging": paging})


def truth(scenario, elapsed: float, _epoch: float) -> dict:  # type: ignore[no-untyped-def]
    return marketplace.truth(scenario.name, NAME, elapsed)


def register(app: web.Application) -> None:
    app.router.add_get(WEB + "/api/v2/products/{product_id}", handle_product)
    app.router.add_get(API + "/seller-store/v2/collections/{collection}/products", handle_collection)
