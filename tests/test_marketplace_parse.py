"""Tiki, Sendo and Lazada: parse functions on fixtures reconstructed from the documented shapes
(shared/marketplaces.md; none was captured from the live sites), the sales estimate's arithmetic and
bounds, refusals classified, and property tests that only PollErrors escape the parsers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api import RawResponse, check_status
from collector.outcomes import Blocked, NotFound, ParseFailure, PollError, RateLimited
from schemas.types import Metric, Provenance
from scrapers import lazada, sendo, tiki
from scrapers.marketplace import Listing, SalesEstimate, Sold, display_sold, exact_sold, money
from tests.fuzzing import DELETE, json_values, mutate, paths

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2025, 9, 9, 12, tzinfo=UTC)
LISTING_URL = "https://www.lazada.vn/ocop-lai-chau/?ajax=true&page=1"


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def raw(
    body: bytes, url: str = LISTING_URL, status: int = 200, content_type: str = "application/json"
) -> RawResponse:
    return RawResponse(url, status, content_type, body, NOW)


def raises(cls: type[PollError], call: Callable[[], object]) -> PollError:
    with pytest.raises(PollError) as info:
        call()
    assert type(info.value) is cls, f"expected {cls.__name__}, got {info.value!r}"
    return info.value


def values(readings: list[Any]) -> dict[Metric, float]:
    assert all(r.provenance is Provenance.ESTIMATED for r in readings if r.metric is not Metric.PRICE)
    return {r.metric: r.value for r in readings}


# --- Tiki ----------------------------------------------------------------------------------------


def test_tiki_product_reads_the_exact_counter_and_the_sellers_price() -> None:
    listing = tiki.parse_product(fixture("tiki/product.json"))
    assert listing == Listing("74021317", Sold(497, 497), 3110000, "Trà Shan Tuyết cổ thụ Lai Châu hộp 200g")


def test_tiki_unknown_product_is_not_found() -> None:
    raises(NotFound, lambda: tiki.parse_product(fixture("tiki/product_not_found.json")))


def test_tiki_shop_page_lists_products_and_knows_it_is_the_last() -> None:
    listings, at_end = tiki.parse_shop_page(fixture("tiki/shop_page.json"))
    assert [(x.product_id, x.sold, x.price) for x in listings] == [
        ("74021317", Sold(497, 497), 310000),
        ("74021320", Sold(1204, 1204), 245000),  # the exact counter, not the rounded text
        ("74021333", Sold(0, 0), 185000),
    ]
    assert at_end


def test_tiki_429_is_rate_limiting_with_its_wait() -> None:
    answer = RawResponse("https://tiki.vn/api/v2/products/1", 429, "text/html", b"Too Many", NOW, 30.0)
    error = raises(RateLimited, lambda: check_status(answer, tiki.adapter.markers))
    assert error.retry_after == 30.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("74021317", "74021317"),
        ("https://tiki.vn/tra-shan-tuyet-co-thu-p74021317.html?spid=74021318", "74021317"),
        ("tra-shan-tuyet", None),
        ("0", None),
    ],
)
def test_tiki_product_references(ref: str, expected: str | None) -> None:
    assert tiki.product_ref(ref) == expected


def test_tiki_shop_reference_from_a_url() -> None:
    assert tiki.shop_ref("https://tiki.vn/cua-hang/ocop-lai-chau?seller_id=40395&source=x") == "40395"
    assert [p.field for p in tiki.check_shop({"shop": "ocop", "max_products": "0"})] == [
        "shop",
        "max_products",
    ]


# --- Sendo ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sendo/product.json", "sendo/product_wap_v2.json"])
def test_sendo_product_reads_order_count_and_the_selling_price(name: str) -> None:
    listing = sendo.parse_product(fixture(name))
    assert (listing.product_id, listing.sold, listing.price) == ("34406369", Sold(219, 219), 49000)


def test_sendo_unknown_product_is_not_found() -> None:
    raises(NotFound, lambda: sendo.parse_product(fixture("sendo/product_not_found.json")))


def test_sendo_shop_page_lists_products_with_their_counts() -> None:
    listings, total = sendo.parse_shop_page(fixture("sendo/shop_page.json"))
    assert total == 3
    assert [(x.product_id, x.sold, x.price) for x in listings] == [
        ("34406369", Sold(219, 219), 49000),
        ("34406370", Sold(12, 12), 150000),
        ("34406371", Sold(0, 0), 320000),
    ]


def test_sendo_product_references() -> None:
    url = "https://www.sendo.vn/mien-dong-binh-lu-500g-34406369.html?source_block_id=x"
    assert sendo.product_ref(url) == "mien-dong-binh-lu-500g-34406369"
    assert sendo.product_ref("Mien-Dong") == "mien-dong"
    assert sendo.product_ref("không phải slug") is None


# --- Lazada --------------------------------------------------------------------------------------


def test_lazada_listing_reads_rounded_sold_text_as_bounds() -> None:
    listings, total = lazada.parse_listing(raw(fixture("lazada/shop_page.json")))
    assert total == 3
    assert [(x.product_id, x.sold, x.price) for x in listings] == [
        ("231630079", Sold(1150, 1299), 40000),
        ("231630085", Sold(87, 87), 189000),
        ("231630091", None, 165000),  # no sold text: unknown, never zero
    ]


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        ("1,2k đã bán", (1150, 1299)),
        ("Da ban 1,2K", (1150, 1299)),
        ("1.2k Đã bán", (1150, 1299)),
        ("10.0K sold", (9950, 10099)),
        ("2k đã bán", (1500, 2999)),
        ("Đã bán 999", (999, 999)),
        ("1.234 đã bán", (1234, 1234)),
        ("đã bán", None),
        ("1,2k và 3k", None),
    ],
)
def test_display_counts_become_intervals(text: str, bounds: tuple[int, int] | None) -> None:
    assert display_sold(text) == (None if bounds is None else Sold(*bounds))


def test_lazada_rgv587_body_is_blocked_never_zero_sales() -> None:
    raises(Blocked, lambda: lazada.parse_listing(raw(fixture("lazada/rgv587.json"))))


def test_lazada_punish_redirect_is_blocked_by_its_url() -> None:
    gate = "https://www.lazada.vn//_____tmd_____/punish?x5secdata=xd3f1a8c2b9e&x5step=1"
    answer = raw(fixture("lazada/punish.html"), gate, content_type="text/html")
    check_status(answer, lazada.adapter.markers)  # nothing in the page itself says so
    raises(Blocked, lambda: lazada.parse_listing(answer))


def test_lazada_slider_page_is_blocked_by_the_core() -> None:
    answer = raw(fixture("lazada/slider.html"), content_type="text/html; charset=utf-8")
    raises(Blocked, lambda: check_status(answer, lazada.adapter.markers))
    raises(Blocked, lambda: lazada.parse_listing(answer))


def test_lazada_unknown_html_is_a_parse_failure() -> None:
    error = raises(ParseFailure, lambda: lazada.parse_listing(raw(b"<html><body>Lazada</body></html>")))
    assert error.reason == "not_json"  # type: ignore[attr-defined]


def test_lazada_shop_references() -> None:
    assert lazada.shop_ref("https://www.lazada.vn/shop/ocop-lai-chau/?langFlag=vi") == "ocop-lai-chau"
    assert lazada.shop_ref("OCOP-Lai-Chau") == "ocop-lai-chau"
    assert [p.field for p in lazada.check_product({"shop": "a b", "product_id": "x1"})] == [
        "shop",
        "product_id",
    ]


# --- the estimate --------------------------------------------------------------------------------


def exact(product: str, sold: int, price: int | None = 1000) -> Listing:
    return Listing(product, Sold(sold, sold), price)


def test_the_first_reading_is_the_baseline_and_increases_times_price_are_sales() -> None:
    estimate = SalesEstimate()
    assert values(estimate.update([exact("a", 100), exact("b", 7, 50_000)])) == {
        Metric.ITEMS_SOLD: 0,
        Metric.REVENUE: 0,
    }
    # a: +20 at 1 000; b: +3 at its new price 45 000 (the price when the rise was seen).
    found = values(estimate.update([exact("a", 120), exact("b", 10, 45_000)]))
    assert found == {Metric.ITEMS_SOLD: 23, Metric.REVENUE: 20 * 1000 + 3 * 45_000}


def test_a_counter_going_down_is_a_correction_not_negative_sales() -> None:
    estimate = SalesEstimate()
    estimate.update([exact("a", 100)])
    estimate.update([exact("a", 150)])
    assert values(estimate.update([exact("a", 140)]))[Metric.ITEMS_SOLD] == 50  # kept, not 40
    assert values(estimate.update([exact("a", 145)]))[Metric.ITEMS_SOLD] == 55  # counts on from 140


def test_products_joining_later_and_leaving_keep_their_share() -> None:
    estimate = SalesEstimate()
    estimate.update([exact("a", 10)])
    estimate.update([exact("a", 12), exact("b", 500)])  # b joins at 500: adds nothing now
    found = values(estimate.update([exact("b", 505)]))  # a left the listing: its +2 stays
    assert found[Metric.ITEMS_SOLD] == 7


def test_a_product_without_price_adds_items_but_no_revenue() -> None:
    estimate = SalesEstimate()
    estimate.update([exact("a", 1, None)])
    assert values(estimate.update([exact("a", 4, None)])) == {Metric.ITEMS_SOLD: 3, Metric.REVENUE: 0}


def test_rounded_counts_give_bounds_not_a_point() -> None:
    estimate = SalesEstimate(rounded=True)
    start = display_sold("1,2k đã bán")  # 1150..1299
    estimate.update([Listing("a", start, 40_000), Listing("b", Sold(87, 87), 100)])
    found = values(
        estimate.update([Listing("a", display_sold("1,5k đã bán"), 40_000), Listing("b", Sold(90, 90), 100)])
    )
    # a: now 1450..1599 -> rise between 1450-1299=151 and 1599-1150=449; b: exactly 3.
    assert found[Metric.ITEMS_SOLD] == 151 + 3
    assert found[Metric.ITEMS_SOLD_UPPER] == 449 + 3
    assert found[Metric.REVENUE] == 151 * 40_000 + 300
    assert found[Metric.REVENUE_UPPER] == 449 * 40_000 + 300


def test_an_unchanged_rounded_count_may_still_hide_sales() -> None:
    estimate = SalesEstimate(rounded=True)
    estimate.update([Listing("a", display_sold("1,2k"), 10)])
    found = values(estimate.update([Listing("a", display_sold("1,2k"), 10)]))
    assert (found[Metric.ITEMS_SOLD], found[Metric.ITEMS_SOLD_UPPER]) == (0, 149)


def test_exact_counters_write_no_upper_bound() -> None:
    assert Metric.ITEMS_SOLD_UPPER not in values(SalesEstimate().update([exact("a", 1)]))


def test_money_and_exact_counters_refuse_junk() -> None:
    assert money("40000.00") == 40000 and money(49000) == 49000 and money(1.5e3) == 1500
    assert money("-1") is None and money(True) is None and money("nan") is None and money([1]) is None
    assert exact_sold("219") == Sold(219, 219) and exact_sold(-3) is None and exact_sold(1.5) is None


# --- fuzzing: only PollErrors escape -------------------------------------------------------------

PARSERS: dict[str, Callable[[bytes], object]] = {
    "tiki_product": tiki.parse_product,
    "tiki_shop": tiki.parse_shop_page,
    "sendo_product": sendo.parse_product,
    "sendo_shop": sendo.parse_shop_page,
    "lazada_listing": lambda body: lazada.parse_listing(raw(body)),
}
DOCUMENTS = [
    ("tiki_product", "tiki/product.json"),
    ("tiki_shop", "tiki/shop_page.json"),
    ("sendo_product", "sendo/product.json"),
    ("sendo_product", "sendo/product_wap_v2.json"),
    ("sendo_shop", "sendo/shop_page.json"),
    ("lazada_listing", "lazada/shop_page.json"),
]
KEYS = st.sampled_from(
    ["id", "data", "list", "total", "price", "final_price", "order_count", "all_time_quantity_sold",
     "quantity_sold", "value", "current_seller", "paging", "error", "code", "result", "mods", "listItems",
     "itemId", "nid", "itemSoldCntShow", "mainInfo", "totalResults", "rgv587_flag", "product_id"]
)  # fmt: skip
JSON_VALUES = json_values(KEYS, ["1,2k đã bán", "40000.00", "Đã bán 497", "-1", "1e400", "0"], [404, 10**30])


def only_poll_errors(kind: str, body: bytes) -> None:
    """The parser raises a PollError or gives listings whose ids, counts and prices are sound."""
    try:
        result = PARSERS[kind](body)
    except PollError:
        return
    listings = [result] if isinstance(result, Listing) else result[0]  # type: ignore[index]
    for listing in listings:
        assert listing.product_id.isdigit()
        assert listing.sold is None or 0 <= listing.sold.low <= listing.sold.high
        assert listing.price is None or listing.price >= 0


@pytest.mark.parametrize("kind", PARSERS)
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_poll_errors(kind: str, body: bytes) -> None:
    only_poll_errors(kind, body)


@pytest.mark.parametrize("kind", PARSERS)
@given(value=JSON_VALUES)
def test_arbitrary_json_only_raises_poll_errors(kind: str, value: Any) -> None:
    only_poll_errors(kind, json.dumps(value, ensure_ascii=False).encode())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures_only_raise_poll_errors(data: st.DataObject) -> None:
    kind, name = data.draw(st.sampled_from(DOCUMENTS), label="fixture")
    doc = json.loads(fixture(name))
    path = data.draw(st.sampled_from(list(paths(doc))), label="path")
    value = data.draw(st.just(DELETE) | JSON_VALUES, label="value")
    only_poll_errors(kind, json.dumps(mutate(doc, path, value), ensure_ascii=False).encode())


@given(text=st.text(max_size=120))
def test_display_counts_are_intervals_or_nothing(text: str) -> None:
    sold = display_sold(text)
    assert sold is None or 0 <= sold.low <= sold.high
    # A reference is refused or becomes what the URLs are built from: digits, or a lower-case slug.
    for ref, shape in ((tiki.product_ref, r"[0-9]+"), (tiki.shop_ref, r"[0-9]+"),
                       (sendo.product_ref, r"[a-z0-9][a-z0-9-]*"), (lazada.shop_ref, r"[a-z0-9][a-z0-9._-]*")):  # fmt: skip
        found = ref(text)
        assert found is None or re.fullmatch(shape, found), (ref.__name__, text, found)
