"""Shopee Open Platform (`open_platform`): the documented v2 signature, the simulator's checks, reported
GMV and orders equal to the shop's own numbers and in the public page's session row, and the access
token (which rides in the query) kept out of stored URLs and errors."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import zlib
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import ClientSession
from sqlalchemy import select

from collector.adapters import registered_adapters
from collector.api import HttpError, LoginWall, NotFound, RateLimited, Transient
from collector.config import build_config
from collector.http import HttpClient
from collector.metrics import LiveState, SelfMetrics
from collector.poller import Poller
from collector.store import Store
from schemas.models import LiveSessionRow, RawSnapshotRow
from schemas.types import LiveStatus, Metric
from scrapers.shopee_open import parse_session, sign_shop_request
from simulator import shopee_open as sim
from simulator.clock import SimClock
from simulator.scenario import event_week
from tests.harness import simulator_in_process

START = 1_757_400_000.0
SESSION, SHOP = "653166490", 807580713  # event week's first Shopee session: 3600 s .. 10800 s


def test_signature_is_the_documented_shop_level_hmac() -> None:
    # partner_id + path + timestamp + access_token + shop_id, keyed by the partner key.
    message = b"2001234/api/v2/livestream/get_session_detail1757400000tok-1807580713"
    expected = hmac.new(b"pkey", message, hashlib.sha256).hexdigest()
    assert (
        expected == "ad9f88f89b091c9bf9343423611afa8be1ce6c14ce9885220d1952f57852912e"
    )  # the vector, pinned
    signed = sign_shop_request(
        "pkey", "2001234", "/api/v2/livestream/get_session_detail", "1757400000", "tok-1", "807580713"
    )
    assert signed == expected


def _answer(response: object = None, error: str = "") -> bytes:
    return orjson.dumps({"error": error, "message": "m", "request_id": "r", "response": response})


def test_detail_and_metric_parse_into_reported_counters() -> None:
    detail = _answer({"session_id": 42, "title": "Sale", "status": 2, "start_time": 1757400000,
                      "end_time": "1757407200"})  # fmt: skip
    metric = _answer({"gmv": 1234567.0, "orders": "31", "ccu": 0, "peak_ccu": 950, "views": 8000,
                      "likes": 700, "comments": 90, "shares": 12, "atc": 80, "ctr": 0.1, "co": 0.2})  # fmt: skip
    parsed = parse_session(detail, metric, "TWD")
    values = {r.metric: (r.value, r.provenance.value, r.currency) for r in parsed.readings}
    assert values[Metric.REVENUE] == (1234567.0, "reported", "TWD")
    assert values[Metric.ORDERS] == (31, "reported", None)
    assert values[Metric.PEAK_VIEWERS] == (950, "reported", None)
    assert values[Metric.LIVE_STATUS][0] == 4
    assert parsed.session is not None and parsed.session.key == "42"
    assert parsed.session.status is LiveStatus.ENDED and parsed.session.ended_at is not None


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        ("error_sign", LoginWall),
        ("invalid_access_token", LoginWall),
        ("error_too_many_request", RateLimited),
        ("error_not_found", NotFound),
        ("error_server", Transient),
        ("error_param", HttpError),
    ],
)
def test_errors_are_classified(error: str, raised: type[Exception]) -> None:
    with pytest.raises(raised):
        parse_session(_answer(error=error), _answer({}), "VND")


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async with simulator_in_process(event_week(1), SimClock(freeze_at=3600 + 1800, start=START)) as url:
        yield url


def _query(
    path: str, *, key: str = sim.PARTNER_KEY, token: str | None = None, stamp: int | None = None
) -> dict:
    token = token if token is not None else sim.access_token(SHOP)
    ts = str(stamp if stamp is not None else int(time.time()))
    message = f"{sim.PARTNER_ID}{path}{ts}{token}{SHOP}".encode()
    return {
        "partner_id": sim.PARTNER_ID, "timestamp": ts, "access_token": token, "shop_id": str(SHOP),
        "session_id": SESSION, "sign": hmac.new(key.encode(), message, hashlib.sha256).hexdigest(),
    }  # fmt: skip


async def test_simulator_checks_signature_timestamp_and_token(base: str) -> None:
    url = base + sim.OPEN + sim.DETAIL_PATH

    async def error(params: dict) -> str:
        async with ClientSession() as http, http.get(url, params=params) as r:
            return (await r.json())["error"]

    assert await error(_query(sim.DETAIL_PATH)) == ""
    assert await error({**_query(sim.DETAIL_PATH), "session_id": "712139530"}) == "error_not_found"
    assert await error(_query(sim.DETAIL_PATH, key="wrong")) == "error_sign"
    assert await error({**_query(sim.DETAIL_PATH), "timestamp": str(int(time.time()) + 1)}) == "error_sign"
    assert await error(_query(sim.DETAIL_PATH, stamp=int(time.time()) - 301)) == "error_sign"
    assert await error(_query(sim.DETAIL_PATH, token="sim-shopee-access-1")) == "invalid_access_token"


async def test_reported_numbers_join_the_public_session_row_and_the_token_is_never_kept(
    base: str, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="collector")
    env = {
        "SP_PARTNER_ID": sim.PARTNER_ID, "SP_PARTNER_KEY": sim.PARTNER_KEY, "SP_SHOP_ID": str(SHOP),
        "SP_TOKEN": sim.access_token(SHOP), "SP_WRONG_KEY": "PLANTED-PARTNER-KEY-77aa",
    }  # fmt: skip
    shop = {"platform": "shopee", "kind": "open_platform", "session_id": SESSION, "keep_every_body": True,
            "partner_id_env": "SP_PARTNER_ID", "shop_id_env": "SP_SHOP_ID", "access_token_env": "SP_TOKEN"}  # fmt: skip
    config = build_config(
        {
            "platforms": {
                "shopee": {
                    "base_urls": {"open": f"{base}{sim.OPEN}", "live": f"{base}/live.shopee.vn"},
                    "min_interval": "1s",
                    "requests_per_second": 50.0,
                }
            },
            "targets": [
                {
                    "name": "public",
                    "platform": "shopee",
                    "kind": "live",
                    "session_id": SESSION,
                    "fetch": "http",
                },
                {"name": "open", **shop, "partner_key_env": "SP_PARTNER_KEY"},
                {"name": "open-wrong-key", **shop, "partner_key_env": "SP_WRONG_KEY"},
            ],
        },
        source="test",
        adapters=registered_adapters(),
        env=env,
    )
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/o.db", config.targets)
    live = LiveState(config.targets)
    try:
        async with HttpClient(config.http) as http:
            poller = Poller(config, http, live, SelfMetrics(live), lambda _r: None)
            records = [await poller.poll(t) for t in config.targets]
            # A failing server: the fetcher's error names the URL, whose query carries the token.
            async with ClientSession() as client:
                await client.post(
                    f"{base}/_sim/faults", json=[{"mode": "500", "match": "get_session_detail"}]
                )
            failed = await poller.poll(config.targets[1])
        assert failed.outcome.value == "http_error" and "access_token=***" in (failed.detail or "")
        assert "access_token=***" in caplog.text
        await store.write(records)
        public, reported, wrong = records
        async with ClientSession() as client, client.get(f"{base}/_sim/truth") as r:
            truth = (await r.json())["shopee"]["sessions"][SESSION]["dashboard"]
        values = {s.metric: s.value for s in reported.samples}
        assert reported.outcome.value == "ok"
        assert values[Metric.REVENUE] == truth["placedGmv"] > 0
        assert values[Metric.ORDERS] == truth["placedOrder"] > 0
        assert public.outcome.value == "ok" and reported.session and public.session
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(LiveSessionRow.session_key))).all()
            kept = (await conn.execute(select(RawSnapshotRow.url, RawSnapshotRow.body_zlib))).all()
        assert [tuple(r) for r in rows] == [(SESSION,)], "one row for the broadcast"
        assert wrong.outcome.value == "login_wall"
        token = sim.access_token(SHOP)
        open_urls = [url for url, _ in kept if "partner.shopeemobile.com" in url]
        assert open_urls and all("access_token=***" in url for url in open_urls)
        for where, text in {
            "stored urls and bodies": repr([(url, zlib.decompress(body)) for url, body in kept]),
            "error": repr(wrong) + repr(failed),
            "log": caplog.text,
        }.items():
            assert token not in text and "PLANTED-PARTNER-KEY" not in text, where
    finally:
        await store.close()
