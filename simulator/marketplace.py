"""The campaign's marketplace shops (Tiki, Sendo, Lazada) and their products' lifetime sold counters.

Every counter is a pure function of the script and the scenario second: a product has sold
`base_sold` before the scenario's sales window and sells `window_sales` more, evenly, across it. Prices
do not change, so the truth of a shop (units sold since the window's start × price) is exact, and an
estimate whose baseline was read before the window opened must equal it (within Lazada's rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from simulator.scenario import DAY

# (name, selling price VND) in the style of Lai Châu OCOP products.
CATALOG = (
    ("Chè Shan Tuyết Lai Châu 200g", 185_000),
    ("Mật ong bạc hà Tam Đường 500ml", 320_000),
    ("Gạo Séng Cù Mường Than 5kg", 165_000),
    ("Miến dong Bình Lư 500g", 65_000),
    ("Thảo quả sấy khô Phong Thổ 300g", 120_000),
    ("Măng khô Than Uyên 500g", 135_000),
    ("Hạt dổi rừng Lai Châu 100g", 95_000),
    ("Thịt trâu gác bếp Lai Châu 500g", 450_000),
)


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    price: int
    base_sold: int
    window_sales: int

    @property
    def slug(self) -> str:
        """Sendo's detail slug: the name's ASCII letters and the id."""
        words = "".join(c if c.isascii() and c.isalnum() else " " for c in self.name.lower()).split()
        return "-".join([*words, self.product_id])


@dataclass(frozen=True)
class Shop:
    platform: str
    ref: str  # Tiki seller id, Sendo seller_admin_id, Lazada storefront slug
    name: str
    products: tuple[Product, ...]


@dataclass(frozen=True)
class World:
    window: tuple[float, float]  # scenario seconds in which the shops sell
    shops: tuple[Shop, ...]


def _products(first_id: int, count: int, base: int, sales: int) -> tuple[Product, ...]:
    """`count` products cycling through the catalog; `base` and `sales` vary per product."""
    out = []
    for i in range(count):
        name, price = CATALOG[i % len(CATALOG)]
        label = name if i < len(CATALOG) else f"{name} (combo {i // len(CATALOG) + 1})"
        out.append(Product(str(first_id + i), label, price, base + 37 * i, sales + 11 * (i % 7)))
    return tuple(out)


def _shops(scale: int) -> tuple[Shop, ...]:
    return (
        Shop("tiki", "40395", "OCOP Lai Châu Official", _products(74021317, 6, 120, 3 * scale)),
        Shop("tiki", "40412", "HTX Chè Tam Đường", _products(74031100, 3, 2_400, 2 * scale)),
        Shop("sendo", "717078", "Đặc sản Lai Châu", _products(34406369, 5, 60, scale)),
        # More than one listing page (40 a page) on Lazada, and counts past 1,000 (shown rounded).
        Shop("lazada", "ocop-lai-chau", "OCOP Lai Châu Mall", _products(231630079, 45, 150, scale)),
        Shop("lazada", "mat-ong-sin-ho", "Mật ong Sìn Hồ", _products(231650001, 4, 1_180, 8 * scale)),
    )


@cache
def world_for(scenario: str) -> World:
    if scenario == "event-week":
        # Sales open with the first broadcast and run to the week's end.
        return World((1_800.0, 3 * DAY), _shops(40))
    # The demo: brisk sales from half a minute in (a collector started with it reads every baseline
    # first) for an hour, so a report after a few minutes has numbers.
    return World((30.0, 3600.0), _shops(200))


def sold_at(world: World, product: Product, elapsed: float) -> int:
    start, end = world.window
    share = min(1.0, max(0.0, (elapsed - start) / (end - start)))
    return product.base_sold + math.floor(product.window_sales * share)


def shops_of(scenario: str, platform: str) -> dict[str, Shop]:
    return {shop.ref: shop for shop in world_for(scenario).shops if shop.platform == platform}


def locate(scenario: str, platform: str, matches: Callable[[Product], bool]) -> tuple[Shop, Product] | None:
    """The first product (and its shop) of the platform that `matches`."""
    for shop in shops_of(scenario, platform).values():
        for product in shop.products:
            if matches(product):
                return shop, product
    return None


def truth(scenario: str, platform: str, elapsed: float) -> dict:
    """Per shop: units sold since the sales window opened, their revenue, and each product's count."""
    world = world_for(scenario)
    out = {}
    for shop in shops_of(scenario, platform).values():
        sold = {p.product_id: sold_at(world, p, elapsed) for p in shop.products}
        gained = {p.product_id: sold[p.product_id] - p.base_sold for p in shop.products}
        out[shop.ref] = {
            "name": shop.name,
            "items_sold": sum(gained.values()),
            "revenue": sum(gained[p.product_id] * p.price for p in shop.products),
            "products": sold,
        }
    return {"window": list(world.window), "shops": out}
