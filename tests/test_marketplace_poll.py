"""Tiki, Sendo and Lazada targets polled over real HTTP against the simulator: the estimate a shop target
gives between two instants equals the simulator's truth (Lazada: the truth lies within the bounds), and
each refusal the simulator serves is classified."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from collector.api import Adapter, PollResult, TargetConfig
from collector.config import HttpSettings
from collector.http import HttpClient, HttpFetcher
from collector.outcomes import Blocked, NotFound, Outcome, PollError, RateLimited
from schemas.types import Metric, Provenance
from scrapers import lazada, sendo, tiki
from simulator import marketplace as world
from simulator.app import build_app
from simulator.clock import SimClock
from simulator.faults import FaultRule
from simulator.scenario import event_week
from tests.polling import poll_kind

HOSTS = {
    "tiki": {"web": "tiki.vn", "api": "api.tiki.vn"},
    "sendo": {"web": "www.sendo.vn", "detail": "detail-api.sendo.vn", "shop": "shop-home.sendo.vn"},
    "lazada": {"web": "www.lazada.vn"},
}
ADAPTERS: dict[str, Adapter] = {"tiki": tiki.adapter, "sendo": sendo.adapter, "lazada": lazada.adapter}
BEFORE, DURING = 600.0, 40_000.0  # scenario seconds: before the sales window opens, and inside it


@dataclasses.dataclass
class Sim:
    clock: SimClock
    base: str
    client: HttpClient

    def urls(self, platform: str) -> dict[str, str]:
        return {key: f"{self.base}/{host}" for key, host in HOSTS[platform].items()}

    async def poll(self, target: TargetConfig, state: Any = None) -> PollResult:
        adapter = ADAPTERS[target.platform]
        fetcher = HttpFetcher(self.client, markers=adapter.markers)
        return await poll_kind(adapter, target, self.urls(target.platform), fetcher, state=state)


@asynccontextmanager
async def simulator(faults: list[FaultRule] | None = None) -> AsyncIterator[Sim]:
    clock = SimClock(freeze_at=BEFORE, start=1_725_850_000.0)
    app = build_app(event_week(1), clock, faults=faults)
    async with TestServer(app) as server, HttpClient(HttpSettings(timeout=10, retries=0)) as client:
        yield Sim(clock, str(server.make_url("")).rstrip("/"), client)


def target(platform: str, kind: str, **params: str) -> TargetConfig:
    return TargetConfig(f"{platform}-{kind}", platform, kind, 3600.0, params, campaign="event")


def readings(result: PollResult) -> dict[Metric, float]:
    assert all(
        r.provenance is (Provenance.OBSERVED if r.metric is Metric.PRICE else Provenance.ESTIMATED)
        for r in result.parsed.readings
    )
    return {r.metric: r.value for r in result.parsed.readings}


SHOPS = [
    ("tiki", target("tiki", "shop", shop="https://tiki.vn/cua-hang/ocop?seller_id=40395"), "40395"),
    ("sendo", target("sendo", "shop", shop="717078"), "717078"),
    ("lazada", target("lazada", "shop", shop="https://www.lazada.vn/shop/ocop-lai-chau/"), "ocop-lai-chau"),
    ("lazada", target("lazada", "shop", shop="mat-ong-sin-ho"), "mat-ong-sin-ho"),
]


@pytest.mark.parametrize(("platform", "shop", "ref"), SHOPS, ids=[ref for _, _, ref in SHOPS])
async def test_a_shops_estimate_equals_the_truth_within_the_stated_rounding(
    platform: str, shop: TargetConfig, ref: str
) -> None:
    spec = ADAPTERS[platform].kinds["shop"]
    state = spec.new_state()
    async with simulator() as s:
        first = readings(await s.poll(shop, state))
        assert (first[Metric.ITEMS_SOLD], first[Metric.REVENUE]) == (0, 0)  # the baseline
        s.clock.freeze_at = DURING
        found = readings(await s.poll(shop, state))
    truth = world.truth("event-week", platform, DURING)["shops"][ref]
    assert truth["items_sold"] > 0
    assert len(state.products) == len(world.shops_of("event-week", platform)[ref].products)  # every page
    if platform != "lazada":
        assert (found[Metric.ITEMS_SOLD], found[Metric.REVENUE]) == (truth["items_sold"], truth["revenue"])
        assert Metric.ITEMS_SOLD_UPPER not in found
        return
    assert found[Metric.ITEMS_SOLD] <= truth["items_sold"] <= found[Metric.ITEMS_SOLD_UPPER]
    # Each product shown rounded at both readings ("1,2k" = 1150..1299) widens the interval by <= 298.
    rounded = sum(1 for sold in truth["products"].values() if sold >= 1000)
    assert found[Metric.ITEMS_SOLD_UPPER] - found[Metric.ITEMS_SOLD] <= 298 * rounded
    assert found[Metric.REVENUE] <= truth["revenue"] <= found[Metric.REVENUE_UPPER]


async def test_product_targets_give_their_price_and_sales() -> None:
    product = world.shops_of("event-week", "sendo")["717078"].products[1]
    targets = [
        target("tiki", "product", product_id="https://tiki.vn/che-shan-tuyet-p74021318.html"),
        target("sendo", "product", product=f"https://www.sendo.vn/{product.slug}.html"),
        target("lazada", "product", shop="ocop-lai-chau", product_id="231630120"),  # on the second page
    ]
    states = [ADAPTERS[t.platform].kinds["product"].new_state() for t in targets]
    async with simulator() as s:
        for t, state in zip(targets, states, strict=True):
            await s.poll(t, state)
        s.clock.freeze_at = DURING
        found = [readings(await s.poll(t, state)) for t, state in zip(targets, states, strict=True)]
    expected = [("tiki", "74021318"), ("sendo", product.product_id), ("lazada", "231630120")]
    for values, (platform, product_id) in zip(found, expected, strict=True):
        located = world.locate("event-week", platform, lambda p, i=product_id: p.product_id == i)
        assert located is not None
        item = located[1]
        gained = world.sold_at(world.world_for("event-week"), item, DURING) - item.base_sold
        assert values[Metric.PRICE] == item.price
        assert values[Metric.ITEMS_SOLD] <= gained <= values.get(Metric.ITEMS_SOLD_UPPER, gained)
        assert values[Metric.ITEMS_SOLD] * item.price == values[Metric.REVENUE]


REFUSALS = [
    ("429", "api/v2/products", target("tiki", "product", product_id="74021317"), RateLimited),
    ("punish_redirect", "ocop-lai-chau", target("lazada", "shop", shop="ocop-lai-chau"), Blocked),
    ("rgv587", "ocop-lai-chau", target("lazada", "shop", shop="ocop-lai-chau"), Blocked),
    ("slider", "ocop-lai-chau", target("lazada", "shop", shop="ocop-lai-chau"), Blocked),
]


@pytest.mark.parametrize(("mode", "match", "polled", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refusals_are_classified_never_zero_sales(
    mode: str, match: str, polled: TargetConfig, error: type[PollError]
) -> None:
    async with simulator([FaultRule(mode, match, retry_after=60)]) as s:
        with pytest.raises(PollError) as info:
            await s.poll(polled)
    assert type(info.value) is error, info.value
    assert info.value.outcome is not Outcome.OK


@pytest.mark.parametrize(
    "unknown",
    [
        target("tiki", "product", product_id="99999999"),
        target("sendo", "product", product="khong-co-san-pham-1"),
        target("lazada", "shop", shop="no-such-shop"),
        target("lazada", "product", shop="ocop-lai-chau", product_id="12345"),
        target("sendo", "shop", shop="1"),
    ],
    ids=lambda t: f"{t.platform}-{t.kind}",
)
async def test_unknown_products_and_shops_are_not_found(unknown: TargetConfig) -> None:
    async with simulator() as s:
        with pytest.raises(NotFound):
            await s.poll(unknown)
