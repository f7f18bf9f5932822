"""TikTok Shop Partner API (`shop_lives`): the documented signature, the simulator's checks, reported
orders and GMV of the event week linked to the public rooms of the same broadcasts, the per-minute
backfill, token refresh and expiry, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession
from click.testing import CliRunner
from prometheus_client import generate_latest
from sqlalchemy import select

from collector.adapters import kind_spec, registered_adapters
from collector.api import (
    HttpError,
    LoginWall,
    Outcome,
    PollContext,
    PollRecord,
    RateLimited,
    RawResponse,
    Transient,
)
from collector.backfill import Backfill, Scope
from collector.cli import main
from collector.config import Config, build_config, load_config
from collector.http import HttpClient
from collector.jobs import JobBook, utcnow
from collector.metrics import LiveState, SelfMetrics
from collector.poller import Poller
from collector.store import Store
from schemas.models import LiveSessionKeyRow, LiveSessionRow, RawSnapshotRow, SampleRow, TargetRow
from schemas.types import LiveStatus, Metric
from scrapers.tiktok.shop import (
    SESSIONS_PATH,
    parse_minutes,
    parse_sessions,
    poll_shop,
    reparse_shop,
    sign_request,
)
from simulator import tiktok_shop as sim
from simulator.clock import SimClock
from simulator.scenario import DAY, EVENT_WEEK_SESSION, demo, event_week
from tests.harness import simulator_in_process

START = 1_757_400_000.0  # scenario second 0: 2025-09-09 06:40 UTC
SHOP_VN = (1_800.0, 1_800.0 + EVENT_WEEK_SESSION)  # shop_vn's broadcast, scenario seconds
NONGSAN = (DAY + 3_600.0, DAY + 3_600.0 + EVENT_WEEK_SESSION)
SHOPS = ("shop_vn", "nongsanlaichau_official")


# --- signature ----------------------------------------------------------------------------------


def test_signature_matches_the_documented_algorithm_step_by_step() -> None:
    secret, path = "my-app-secret", "/analytics/202509/shop_lives/performance"
    params = {
        "timestamp": "1757400000",
        "app_key": "abc123",
        "shop_cipher": "ROW_xyz",
        "start_date_ge": "2025-09-09",
        "sign": "ignored",
        "access_token": "ignored-too",
    }
    body = b'{"a":1}'
    # Written out as platforms.md 5b states it: keys sorted, `sign` and `access_token` left out,
    # each key followed by its value, the path before and the body after, wrapped in the secret.
    wrapped = (
        "my-app-secret"
        "/analytics/202509/shop_lives/performance"
        "app_keyabc123"
        "shop_cipherROW_xyz"
        "start_date_ge2025-09-09"
        "timestamp1757400000"
        '{"a":1}'
        "my-app-secret"
    )
    expected = hmac.new(b"my-app-secret", wrapped.encode(), hashlib.sha256).hexdigest()
    assert sign_request(secret, path, params, body) == expected
    # The same vector as a literal, so a change to how the test builds the message cannot hide.
    assert expected == "24b45f35ef6d9605d1dc8eb6cb99731cc1498d1eed7c73b535c54fed2040c2a5"
    # Without a body (every analytics call is a GET) the message simply has nothing between.
    no_body = "f2dba56fb2da27274d14f4e9ad61911c90895ac685d748dd647ef457982ac53d"  # HMAC(k, "k/pa1b2k")
    assert sign_request("k", "/p", {"b": "2", "a": "1"}) == no_body


# --- parsing and error codes --------------------------------------------------------------------


def _envelope(code: int, data: object = None) -> bytes:
    return orjson.dumps({"code": code, "message": "m", "request_id": "r", "data": data})


def test_session_list_parses_reported_totals_and_a_live_session() -> None:
    body = _envelope(
        0,
        {
            "live_stream_sessions": [
                {
                    "id": "7300000000000000001",
                    "title": "Sale",
                    "username": "Shop_VN",
                    "start_time": "1757400000",
                    "end_time": "0",
                    "sales_performance": {
                        "gmv": {"amount": "1250000.50", "currency": "VND"},
                        "sku_orders": 12,
                        "items_sold": "15",
                        "customers": 11,
                    },
                    "interaction_performance": {"views": 900, "viewers": 700, "likes": 50, "comments": 4,
                                                "shares": 2, "new_followers": 3},
                },
                {"title": "no id: skipped"},
            ],
            "next_page_token": "abc",
        },
    )  # fmt: skip
    page = parse_sessions(body)
    assert page.next_page_token == "abc" and len(page.sessions) == 1
    [session] = page.sessions
    assert (session.live_id, session.account, session.status) == (
        "7300000000000000001",
        "shop_vn",
        LiveStatus.LIVE,
    )
    values = {r.metric: (r.value, r.provenance.value, r.currency) for r in session.readings}
    assert values == {
        Metric.REVENUE: (1250000.5, "reported", "VND"),
        Metric.ORDERS: (12, "reported", None),
        Metric.ITEMS_SOLD: (15, "reported", None),
        Metric.BUYERS: (11, "reported", None),
        Metric.VIEWS: (900, "reported", None),
        Metric.UNIQUE_VIEWERS: (700, "reported", None),
        Metric.LIKES: (50, "reported", None),
        Metric.COMMENTS: (4, "reported", None),
        Metric.SHARES: (2, "reported", None),
        Metric.NEW_FOLLOWERS: (3, "reported", None),
    }


def test_a_stored_session_list_reparses_to_its_current_session() -> None:
    row = {"id": "7300000000000000002", "username": "shop_vn", "start_time": "1757400000", "end_time": "0",
           "sales_performance": {"gmv": {"amount": "5000", "currency": "VND"}, "sku_orders": 2}}  # fmt: skip
    ended = {**row, "id": "7300000000000000001", "start_time": "1757300000", "end_time": "1757307200"}
    body = _envelope(0, {"live_stream_sessions": [ended, row]})
    at = datetime(2025, 9, 9, tzinfo=UTC)
    stored = RawResponse(
        f"https://open-api.tiktokglobalshop.com{SESSIONS_PATH}?page_size=100",
        200,
        "application/json",
        body,
        at,
    )
    again = reparse_shop(stored)
    assert again is not None and again.session is not None
    assert again.session.key == "7300000000000000002" and again.session.status is LiveStatus.LIVE
    assert again == parse_sessions(body).sessions[1].parsed()
    minutes = dataclasses.replace(
        stored,
        url="https://open-api.tiktokglobalshop.com/analytics/202510/shop_lives/1/performance_per_minutes",
    )
    assert reparse_shop(minutes) is None  # minutes come only through `backfill history`


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (sim.BAD_SIGNATURE, LoginWall),
        (sim.TOKEN_EXPIRED, LoginWall),
        (sim.RATE_LIMITED, RateLimited),
        (sim.LOOK_BACK_EXCEEDED, HttpError),
        (98001001, Transient),
        (12345, HttpError),
    ],
)
def test_error_codes_are_classified(code: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_sessions(_envelope(code))
    with pytest.raises(error):
        parse_minutes(_envelope(code))


# --- the simulator's checks ---------------------------------------------------------------------


@pytest.fixture
async def sim_url() -> AsyncIterator[str]:
    async with simulator_in_process(event_week(1), SimClock(freeze_at=SHOP_VN[1] + 60, start=START)) as url:
        yield url


def _signed(path: str, body: bytes = b"", **extra: str) -> dict[str, str]:
    params = {
        "app_key": sim.APP_KEY,
        "shop_cipher": sim.shop_cipher("shop_vn"),
        "timestamp": str(int(time.time())),
        "start_date_ge": "2025-09-09",
        "end_date_lt": "2025-09-12",
        "page_size": "100",
        **extra,
    }
    pairs = "".join(k + params[k] for k in sorted(params))
    message = (sim.APP_SECRET + path + pairs).encode() + body + sim.APP_SECRET.encode()
    params["sign"] = hmac.new(sim.APP_SECRET.encode(), message, hashlib.sha256).hexdigest()
    return params


async def _code(http: ClientSession, url: str, params: dict[str, str], body: bytes = b"") -> tuple[int, int]:
    headers = {"x-tts-access-token": sim.access_token("shop_vn")}
    async with http.get(
        url + sim.PARTNER + sim.SESSIONS_PATH, params=params, data=body, headers=headers
    ) as r:
        return r.status, (await r.json())["code"]


async def test_simulator_rejects_tampered_query_body_and_stale_timestamp(sim_url: str) -> None:
    async with ClientSession() as http:
        good = _signed(sim.SESSIONS_PATH)
        assert await _code(http, sim_url, good) == (200, 0)
        assert await _code(http, sim_url, {**good, "end_date_lt": "2025-09-13"}) == (200, sim.BAD_SIGNATURE)
        assert await _code(http, sim_url, {**good, "extra": "1"}) == (200, sim.BAD_SIGNATURE)
        with_body = _signed(sim.SESSIONS_PATH, b'{"x":1}')
        assert await _code(http, sim_url, with_body, b'{"x":1}') == (200, 0)
        assert await _code(http, sim_url, with_body, b'{"x":2}') == (200, sim.BAD_SIGNATURE)
        stale = _signed(sim.SESSIONS_PATH, timestamp=str(int(time.time()) - 301))
        assert await _code(http, sim_url, stale) == (200, sim.BAD_TIMESTAMP)
        ahead = _signed(sim.SESSIONS_PATH, timestamp=str(int(time.time()) + 31))
        assert await _code(http, sim_url, ahead) == (200, sim.BAD_TIMESTAMP)


async def test_simulator_rate_limits_the_app_like_the_real_api(sim_url: str) -> None:
    async with ClientSession() as http:
        answers = [
            await _code(http, sim_url, _signed(sim.SESSIONS_PATH)) for _ in range(int(sim.RATE_BURST) + 3)
        ]
    assert answers[0] == (200, 0)
    assert (429, sim.RATE_LIMITED) in answers
    assert answers.count((200, 0)) <= sim.RATE_BURST + 1  # one token may refill during the loop


# --- the collector against the event week -------------------------------------------------------


@dataclasses.dataclass
class Rig:
    config: Config
    store: Store
    poller: Poller
    metrics: SelfMetrics
    clock: SimClock
    base: str

    async def poll(self, at: float, *names: str) -> list[PollRecord]:
        self.clock.freeze_at = at
        wanted = [t for t in self.config.targets if t.name in names]
        records = [await self.poller.poll(t) for t in wanted]
        await self.store.write(records)
        return records

    async def history(self, *targets: str) -> dict[str, int]:
        book = JobBook(self.store)
        job = await book.create("history", Scope(targets=targets).to_args(), utcnow())
        claimed = await book.claim(job.id, "test", utcnow())
        assert claimed is not None
        done = await Backfill(self.config, self.store, book, self.poller, kind_spec).run(claimed)
        assert done.status == "done" and not done.errors, done.errors
        return done.counts

    async def refreshes(self) -> int:
        async with ClientSession() as http, http.get(f"{self.base}/_sim/requests") as r:
            return sum("/token/refresh" in e["path"] for e in (await r.json())["requests"])

    async def truth(self) -> dict:
        async with ClientSession() as http, http.get(f"{self.base}/_sim/truth") as r:
            return (await r.json())["tiktok_shop"]


SECRET_ENV = {
    "SHOP_APP_KEY": sim.APP_KEY,
    "SHOP_APP_SECRET": sim.APP_SECRET,
    "SHOP_VN_CIPHER": sim.shop_cipher("shop_vn"),
    "SHOP_VN_TOKEN": sim.access_token("shop_vn"),
    "NONGSAN_CIPHER": sim.shop_cipher("nongsanlaichau_official"),
    "NONGSAN_REFRESH": sim.refresh_token("nongsanlaichau_official"),
}


def _shop(name: str, cipher: str, **secrets: str) -> dict[str, str]:
    return {
        "name": name, "platform": "tiktok", "kind": "shop_lives", "interval": "60s",
        "start_date": "2025-09-09", "end_date": "2025-09-11", "keep_every_body": "true",
        "app_key_env": "SHOP_APP_KEY", "app_secret_env": "SHOP_APP_SECRET", "shop_cipher_env": cipher,
        **secrets,
    }  # fmt: skip


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    clock = SimClock(freeze_at=0.0, start=START)
    async with simulator_in_process(event_week(1), clock) as base:
        async for rig in _rig(database_url, clock, base):
            yield rig


async def _rig(database_url: str, clock: SimClock, base: str) -> AsyncIterator[Rig]:
    targets = [
        {"name": "room-shop-vn", "platform": "tiktok", "kind": "live", "account": "@shop_vn", "interval": "10s"},
        {"name": "room-nongsan", "platform": "tiktok", "kind": "live", "account": "@nongsanlaichau_official",
         "interval": "10s"},
        _shop("tts-shop-vn", "SHOP_VN_CIPHER", access_token_env="SHOP_VN_TOKEN"),
        _shop("tts-nongsan", "NONGSAN_CIPHER", refresh_token_env="NONGSAN_REFRESH"),
    ]  # fmt: skip
    urls = {
        "web": f"{base}/www.tiktok.com",
        "webcast": f"{base}/webcast.tiktok.com",
        "partner": f"{base}{sim.PARTNER}",
        "auth": f"{base}{sim.AUTH}",
    }
    config = build_config(
        {
            "platforms": {"tiktok": {"base_urls": urls, "min_interval": "1s", "requests_per_second": 50.0}},
            "targets": [
                {k: (v == "true" if k == "keep_every_body" else v) for k, v in t.items()} for t in targets
            ],
        },
        source="test",
        adapters=registered_adapters(),
        env=SECRET_ENV,
    )
    store = Store(database_url, config.targets)
    await store.prepare()
    live = LiveState(config.targets)
    metrics = SelfMetrics(live)
    try:
        async with HttpClient(config.http) as http:
            yield Rig(
                config, store, Poller(config, http, live, metrics, lambda _r: None), metrics, clock, base
            )
    finally:
        await store.close()


async def _final(store: Store, target: str) -> dict[str, dict[str, float]]:
    """Per session key of the broadcast row: the target's last value of each metric."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(LiveSessionRow.session_key, SampleRow.metric, SampleRow.value)
            .join(SampleRow, SampleRow.session_id == LiveSessionRow.id)
            .join(TargetRow, SampleRow.target_id == TargetRow.id)
            .where(TargetRow.name == target)
            .order_by(SampleRow.observed_at)
        )
        final: dict[str, dict[str, float]] = {}
        for key, metric, value in rows:
            final.setdefault(key, {})[metric] = value
        return final


async def test_event_week_reported_gmv_and_orders_equal_truth_linked_to_the_public_rooms(rig: Rig) -> None:
    # shop_vn: the public room is seen first; nongsan: the shop's session list first.
    await rig.poll(SHOP_VN[0] + 900, "room-shop-vn")
    await rig.poll(SHOP_VN[0] + 900, "tts-shop-vn")
    await rig.poll(SHOP_VN[1] + 120, "room-shop-vn", "tts-shop-vn")
    await rig.poll(NONGSAN[0] + 900, "tts-nongsan")
    await rig.poll(NONGSAN[0] + 900, "room-nongsan")
    await rig.poll(NONGSAN[1] + 120, "tts-nongsan", "room-nongsan")
    truth = await rig.truth()

    async with rig.store.engine.connect() as conn:
        sessions = (await conn.execute(select(LiveSessionRow))).all()
        keys = (await conn.execute(select(LiveSessionKeyRow.session_id, LiveSessionKeyRow.source,
                                          LiveSessionKeyRow.session_key))).all()  # fmt: skip
    assert len(sessions) == 2, "each broadcast is one row, whichever source saw it first"
    by_row = {s.id: s for s in sessions}
    for shop in SHOPS:
        [broadcast] = truth[shop]["sessions"]
        ids = {source: key for row, source, key in keys if by_row[row].account == shop}
        assert ids == {"live": broadcast["room_id"], "shop_lives": broadcast["live_id"]}
        row = next(s for s in sessions if s.account == shop)
        assert row.last_status == "ended" and row.peak_viewers and row.peak_viewers > 0
    # Both targets' samples point at the one row; the shop's last values are the simulator's totals.
    for target, shop in (("tts-shop-vn", "shop_vn"), ("tts-nongsan", "nongsanlaichau_official")):
        [broadcast] = truth[shop]["sessions"]
        reported = await _final(rig.store, target)
        observed = await _final(rig.store, "room-" + target.removeprefix("tts-"))
        assert reported.keys() == observed.keys()
        [values] = reported.values()
        assert values["revenue"] == broadcast["gmv"] > 0
        assert values["orders"] == broadcast["orders"] > 0
        assert (values["items_sold"], values["buyers"]) == (broadcast["items_sold"], broadcast["buyers"])
    # Money is labelled with its currency.
    async with rig.store.engine.connect() as conn:
        currencies = set(await conn.scalars(select(SampleRow.currency).where(SampleRow.metric == "revenue")))
    assert currencies == {"VND"}


async def test_token_refresh_replaces_a_missing_or_expired_token_and_expiry_is_exported(rig: Rig) -> None:
    [record] = await rig.poll(NONGSAN[0] + 900, "tts-nongsan")  # configured with a refresh token only
    assert record.outcome.value == "ok" and record.credentials_expire_at is not None
    assert record.credentials_expire_at.timestamp() > time.time() + 6 * 86_400
    exposition = generate_latest(rig.metrics.registry).decode()
    assert 'collector_credentials_expiry_timestamp_seconds{target="tts-nongsan"}' in exposition
    async with rig.store.engine.connect() as conn:
        stored = await conn.scalar(
            select(TargetRow.credentials_expire_at).where(TargetRow.name == "tts-nongsan")
        )
    assert stored == record.credentials_expire_at
    # A token the API calls expired is refreshed and the call repeated, within the same poll.
    expired = dataclasses.replace(
        next(t for t in rig.config.targets if t.name == "tts-nongsan"), name="tts-expired"
    )
    state = kind_spec(expired).new_state()
    state.access_token, state.refresh_token, state.loaded = (
        sim.EXPIRED_TOKEN,
        sim.refresh_token("nongsanlaichau_official"),
        True,
    )
    fetcher = rig.poller.fetcher_for(expired)
    result = await poll_shop(
        PollContext(expired, rig.config.platforms["tiktok"].base_urls, fetcher, None, state)
    )
    assert result.parsed.session is not None and state.access_token.startswith("sim-refreshed-")
    assert all("token/refresh" not in raw.url for raw in fetcher.responses)


async def test_history_writes_minutes_idempotently_and_reports_a_failing_endpoint_as_a_gap(rig: Rig) -> None:
    await rig.poll(SHOP_VN[0] + 900, "room-shop-vn", "tts-shop-vn")
    rig.clock.freeze_at = NONGSAN[1] + 600  # both broadcasts over; nobody polled the second one
    async with ClientSession() as http:
        rule = [{"mode": "500", "match": "/performance_per_minutes", "count": None}]
        async with http.post(f"{rig.base}/_sim/faults", json=rule) as r:
            assert r.status == 200
        first = await rig.history("tts-shop-vn", "tts-nongsan")
        async with http.delete(f"{rig.base}/_sim/faults") as r:
            assert r.status == 200
    book = JobBook(rig.store)
    gaps = await book.gaps()
    assert {g.target for g in gaps} == {"tts-shop-vn", "tts-nongsan"} and all(
        g.status == "unfillable" for g in gaps
    )
    assert all("per-minute history" in (g.detail or "") for g in gaps)
    # The session totals stand, at each broadcast's end time; no minute was invented.
    totals = await _samples(rig.store)
    shop_rows = [r for r in totals if r[0].startswith("tts-") and r[1] == "revenue"]
    assert len(shop_rows) == 3 and first["written"] > 0  # shop_vn's live poll, then each broadcast's end

    second = await rig.history("tts-shop-vn", "tts-nongsan")
    rows = await _samples(rig.store)
    truth = await rig.truth()
    minutes = int(EVENT_WEEK_SESSION // 60)
    for target, shop, span in (
        ("tts-shop-vn", "shop_vn", SHOP_VN),
        ("tts-nongsan", "nongsanlaichau_official", NONGSAN),
    ):
        [broadcast] = truth[shop]["sessions"]
        end = datetime.fromtimestamp(START + span[1] + sim.SHOP_CLOCK_SKEW, UTC)
        # (The live poll's sample carries the collector's own clock, after the scenario's times.)
        revenue = [(at, v) for t, m, at, v in rows if t == target and m == "revenue" and at <= end]
        # A running total at the end of each minute, then the session's total at its end time.
        assert revenue[-1] == (end, broadcast["gmv"])
        by_minute = [v for _, v in revenue[:-1]]
        assert len(by_minute) == minutes - 1 and by_minute == sorted(by_minute)
        assert 0 < by_minute[-1] <= broadcast["gmv"]
    assert second["written"] > 0
    third = await rig.history("tts-shop-vn", "tts-nongsan")
    assert third["written"] == 0 and third["already_stored"] > 0
    assert await _samples(rig.store) == rows


async def _samples(store: Store) -> list[tuple[str, str, datetime, float]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(TargetRow.name, SampleRow.metric, SampleRow.observed_at, SampleRow.value)
            .join(TargetRow, SampleRow.target_id == TargetRow.id)
            .order_by(TargetRow.name, SampleRow.metric, SampleRow.observed_at)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_app_secret_and_tokens_appear_in_no_log_metric_export_or_stored_body(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await rig.poll(SHOP_VN[0] + 900, "tts-shop-vn", "tts-nongsan", "room-shop-vn")
    rig.clock.freeze_at = NONGSAN[1] + 600
    await rig.history("tts-shop-vn", "tts-nongsan")
    # An error path: a wrong secret is refused; its message must not carry the secret either.
    wrong = dataclasses.replace(
        next(t for t in rig.config.targets if t.name == "tts-shop-vn"), name="tts-wrong"
    )
    bad = await rig.poller.poll(
        dataclasses.replace(
            wrong, secrets={**wrong.secrets, "app_secret": _Planted("PLANTED-APP-SECRET-3b9d")}
        )
    )
    assert bad.outcome.value == "login_wall" and "106001" in (bad.detail or "")
    assert await rig.refreshes() > 0, "the refresh flow ran"
    secrets = [sim.APP_SECRET, sim.access_token("shop_vn"), sim.refresh_token("nongsanlaichau_official"),
               "PLANTED-APP-SECRET-3b9d", "sim-refreshed-"]  # fmt: skip
    seen = {
        # Everything logged but the simulator's own access log (the platform's side of the wire).
        "log": "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access"),
        "metrics": generate_latest(rig.metrics.registry).decode(),
        "error": repr(bad),
    }
    seen["export"] = repr([r async for r in rig.store.export_rows()])
    async with rig.store.engine.connect() as conn:
        seen["status"] = repr((await conn.execute(select(TargetRow))).all())
        snapshots = (await conn.execute(select(RawSnapshotRow.url, RawSnapshotRow.body_zlib))).all()
    seen["stored bodies"] = repr([(url, zlib.decompress(body)) for url, body in snapshots])
    assert snapshots, "bodies were kept (keep_every_body), so the check looks at real ones"
    for where, text in seen.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:12]}... leaked into {where}"


class _Planted:
    source = "env TEST"

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


async def test_status_lists_token_expiry_in_a_section_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f"""
[collector]
database_url = "sqlite+aiosqlite:///{tmp_path}/s.db"

[[targets]]
name = "tts-shop-vn"
platform = "tiktok"
kind = "shop_lives"
app_key_env = "SHOP_APP_KEY"
app_secret_env = "SHOP_APP_SECRET"
shop_cipher_env = "SHOP_VN_CIPHER"
access_token_env = "SHOP_VN_TOKEN"
""",
        encoding="utf-8",
    )
    config = load_config(path, adapters=registered_adapters(), env=SECRET_ENV)
    store = Store(config.collector.database_url, config.targets)
    expires = datetime.now(UTC) + timedelta(days=2, hours=5, minutes=1)
    record = PollRecord("tts-shop-vn", datetime.now(UTC), Outcome.OK, credentials_expire_at=expires)
    try:
        await store.write([record])
    finally:
        await store.close()
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["status", "-c", str(path)], env={**SECRET_ENV, "COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    section = result.output.split("API access tokens", 1)[1]
    assert f"tts-shop-vn: in 2d 5h ({expires:%Y-%m-%d %H:%M} UTC)" in section
    assert all(len(line) <= 80 for line in result.output.splitlines())
    document = await asyncio.to_thread(
        CliRunner().invoke, main, ["status", "-c", str(path), "--format", "json"], env=SECRET_ENV
    )
    [target] = orjson.loads(document.output)["targets"]
    assert target["credentials_expire_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def test_consecutive_broadcasts_of_one_account_are_never_merged(database_url: str) -> None:
    # Demo scenario: shop_vn broadcasts 40 min, pauses 3 min, broadcasts again under new ids.
    cycle, first_start = 2_580.0, -300.0
    clock = SimClock(freeze_at=0.0, start=START)
    async with simulator_in_process(demo(1), clock) as base:
        async for rig in _rig(database_url, clock, base):
            await rig.poll(600, "room-shop-vn")  # broadcast A: only the public page saw it
            second, third = first_start + cycle + 600, first_start + 2 * cycle + 600
            await rig.poll(second, "tts-shop-vn")  # broadcast B: the shop first, then the page
            # (The page's first poll finds its room A ended; the next one looks the new room up.)
            await rig.poll(second, "room-shop-vn")
            await rig.poll(second, "room-shop-vn")
            await rig.poll(third, "room-shop-vn")  # broadcast C: the page first, then the shop
            await rig.poll(third, "room-shop-vn")
            await rig.poll(third, "tts-shop-vn")
            async with rig.store.engine.connect() as conn:
                rows = (
                    await conn.execute(select(LiveSessionRow.id).order_by(LiveSessionRow.started_at))
                ).all()
                keys = (
                    await conn.execute(select(LiveSessionKeyRow.session_id, LiveSessionKeyRow.source))
                ).all()
            sources = [sorted(source for row, source in keys if row == id_) for (id_,) in rows]
            assert sources == [["live"], ["live", "shop_lives"], ["live", "shop_lives"]]
