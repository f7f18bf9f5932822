"""Per-target state that survives a restart or a move: every kind's state round-trips through its codec,
a new process carries a Shopee estimate on from the first process's baseline (same session row), a stored
state that does not apply starts fresh with a warning, and a state spooled during an outage arrives."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import types
import typing
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from collector.adapters import registered_adapters
from collector.api import (
    MEMORY_ONLY,
    NO_MARKERS,
    KindSpec,
    PollContext,
    PollRecord,
    PollResult,
    StateShapeError,
    TargetConfig,
)
from collector.config import Config, build_config
from collector.http import HttpClient
from collector.metrics import LiveState, SelfMetrics
from collector.outcomes import Outcome
from collector.poller import Poller
from collector.service import _restore_states, poll_once
from collector.spool import Spool
from collector.state_codec import codec_for
from collector.store import Store
from collector.target_state import definition_key, envelope
from collector.writer import BatchWriter
from schemas.models import LiveSessionRow, SampleRow
from schemas.types import Metric, ParseResult, Provenance, Reading
from scrapers.tiktok.live import RoomState
from simulator import shopee as shopee_world
from simulator.clock import SimClock
from simulator.scenario import event_week
from tests.harness import simulator_in_process

ADAPTERS = registered_adapters()
START = 1_757_400_000.0  # scenario second 0
SESSION = "653166490"  # event-week's first Shopee session: live from scenario second 3600 to 10800
T0 = datetime(2025, 9, 9, 12, tzinfo=UTC)


# --- the codec over every kind ----------------------------------------------------------------------


def example(tp: Any, seed: int = 1) -> Any:
    """A value of `tp` unlike any default (non-empty, non-zero), so a field the codec drops shows."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return example(next(a for a in args if a is not type(None)), seed)
    if tp is str:
        return f"v{seed}"
    if tp is bool:
        return True
    if tp is int:
        return 1000 + seed
    if tp is float:
        return seed + 0.5
    if tp is datetime:
        return T0 + timedelta(seconds=seed)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return list(tp)[-1]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: example(hints[f.name], seed + i) for i, f in enumerate(dataclasses.fields(tp))})
    if origin is dict:
        return {f"k{seed}": example(args[1], seed + 1), f"k{seed + 1}": example(args[1], seed + 2)}
    if origin is list:
        return [example(args[0], seed), example(args[0], seed + 1)]
    if origin is tuple and args[-1] is Ellipsis:
        return (example(args[0], seed),)
    if origin is tuple:
        return tuple(example(a, seed + i) for i, a in enumerate(args))
    raise AssertionError(f"no example for {tp!r}: extend `example` along with the codec")


def kinds_with_state() -> Iterator[tuple[str, KindSpec]]:
    for platform, adapter in ADAPTERS.items():
        for kind, spec in adapter.kinds.items():
            yield f"{platform}/{kind}", spec


@pytest.mark.parametrize(("kind", "spec"), list(kinds_with_state()), ids=[k for k, _ in kinds_with_state()])
def test_every_kinds_state_round_trips_through_json(kind: str, spec: KindSpec) -> None:
    fresh = spec.new_state()
    if fresh is None:
        assert spec.load_state(orjson.loads(orjson.dumps(spec.dump_state(None)))) is None
        return
    full = example(type(fresh))
    memory_only = [f for f in dataclasses.fields(full) if not f.metadata.get("persist", True)]
    # What comes back is the state with its memory-only fields (credentials) as a fresh state has them.
    expected = dataclasses.replace(full, **{f.name: getattr(fresh, f.name) for f in memory_only})
    stored = orjson.loads(orjson.dumps(spec.dump_state(full)))  # through real JSON text
    assert spec.load_state(stored) == expected
    assert spec.load_state(orjson.loads(orjson.dumps(spec.dump_state(fresh)))) == fresh
    for f in memory_only:
        assert str(getattr(full, f.name)) not in orjson.dumps(stored).decode(), f"{kind}: {f.name} stored"


def test_credentials_never_leave_the_process() -> None:
    spec = ADAPTERS["tiktok"].kinds["shop_lives"]
    state = spec.new_state()
    state.access_token, state.refresh_token, state.loaded = "tok-123", "ref-456", True
    assert spec.dump_state(state) == {}
    assert spec.load_state({}) == spec.new_state()


@dataclasses.dataclass
class _Nested:
    when: datetime
    counts: tuple[int, int]
    ratio: float = 0.0


@dataclasses.dataclass
class _Sample:
    name: str
    nested: dict[str, _Nested]
    hidden: str | None = dataclasses.field(default=None, metadata=MEMORY_ONLY)


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ({"name": 3, "nested": {}}, "_Sample.name: expected str, got int"),
        ({"name": "a", "nested": {}, "extra": 1}, "unknown ['extra']"),
        ({"name": "a"}, "missing ['nested']"),
        ({"name": "a", "nested": {"x": {"when": "2025-09-09T12:00:00", "counts": [1, 2], "ratio": 1}}},
         ".nested['x'].when: expected an ISO time with its UTC offset"),
        ({"name": "a", "nested": {"x": {"when": "2025-09-09T12:00:00+00:00", "counts": [1], "ratio": 1}}},
         ".nested['x'].counts: expected a list of 2"),
        ({"name": "a", "nested": {"x": {"when": "2025-09-09T12:00:00+00:00", "counts": [1, True],
                                        "ratio": 1}}}, ".counts[1]: expected int, got bool"),
        ([], "expected an object for _Sample, got list"),
    ],
)  # fmt: skip
def test_a_stored_state_that_does_not_fit_is_refused_naming_the_field(stored: Any, problem: str) -> None:
    with pytest.raises(StateShapeError) as caught:
        codec_for(_Sample).load(stored)
    assert problem in str(caught.value)


def test_non_finite_floats_and_aware_times_survive() -> None:
    state = _Sample("a", {"x": _Nested(T0, (1, 2), float("inf"))}, hidden="secret")
    data = orjson.loads(orjson.dumps(codec_for(_Sample).dump(state)))
    assert codec_for(_Sample).load(data) == dataclasses.replace(state, hidden=None)


def test_a_state_field_the_codec_cannot_store_is_named_when_the_codec_is_built() -> None:
    @dataclasses.dataclass
    class Loose:
        anything: Any

    with pytest.raises(TypeError, match=r"Loose\.anything: a state field of type"):
        codec_for(Loose)


# --- restoring into a poller ------------------------------------------------------------------------


def config_of(
    targets: list[dict[str, Any]], platforms: Mapping[str, Any] | None = None, **collector: Any
) -> Config:
    return build_config(
        {"collector": collector, "platforms": dict(platforms or {}), "targets": targets},
        source="test",
        adapters=ADAPTERS,
        env={},
    )


@asynccontextmanager
async def poller_for(config: Config, sink: Any = None) -> AsyncIterator[Poller]:
    live = LiveState(config.targets)
    async with HttpClient(config.http) as http:
        yield Poller(config, http, live, SelfMetrics(live), sink or (lambda _r: None))


def stored_for(
    target: TargetConfig, state: Any, failures: int = 0, hold: datetime | None = None
) -> dict[str, Any]:
    spec = ADAPTERS[target.platform].kinds[target.kind]
    return orjson.loads(orjson.dumps(envelope(definition_key(target), spec, state, failures, hold)))


ROOMS = [{"name": n, "platform": "tiktok", "kind": "live", "account": f"@{n}"} for n in "abcdef"]


async def test_a_stored_state_that_does_not_apply_starts_fresh_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = config_of(ROOMS)
    a, b, _c, d, e, f = config.targets
    stored = {
        "a": stored_for(a, RoomState("111")) | {"state": {"room_id": 111, "ended_room_id": None}},
        "b": stored_for(b, RoomState("222")) | {"version": 99},
        "c": {"state": {"room_id": "333"}},
        "d": stored_for(dataclasses.replace(d, params={"account": "@someone_else"}), RoomState("444")),
        "e": stored_for(e, RoomState("555"), failures=3, hold=datetime.now(UTC) + timedelta(seconds=100)),
        "f": stored_for(f, RoomState("666")) | {"failures": "3"},
    }

    async def load(names: list[str]) -> dict[str, Any]:
        return {name: stored[name] for name in names if name in stored}

    caplog.set_level(logging.INFO, "collector.target_state")
    async with poller_for(config) as poller:
        assert await poller.restore_states(config.targets, load) == 1
        rooms = {t.name: poller._target_state(t).adapter_state.room_id for t in config.targets}
        assert rooms == {"a": None, "b": None, "c": None, "d": None, "e": "555", "f": None}
        assert poller.backoff.failures("e") == 3 and 90 < poller.hold_off(e) <= 100
    messages = {r.getMessage(): r.levelno for r in caplog.records}
    assert messages == {
        "a: stored state cannot be loaded (RoomState.room_id: expected str, got int), starting fresh": logging.WARNING,
        "b: stored state is version 99, this tiktok/live keeps version 1: starting fresh": logging.WARNING,
        "c: stored state has an unknown format, starting fresh": logging.WARNING,
        "d: target changed since its state was stored, starting fresh": logging.INFO,
        "f: stored state cannot be loaded (failures: expected a count, got '3'), starting fresh": logging.WARNING,
    }  # fmt: skip


async def test_a_changed_target_starts_fresh_and_its_old_state_never_comes_back() -> None:
    config = config_of(ROOMS[:2])
    a, b = config.targets
    stored = {"a": stored_for(a, RoomState("111")), "b": stored_for(b, RoomState("222"))}

    async def load(names: list[str]) -> dict[str, Any]:
        return {name: stored[name] for name in names}

    changed = config_of([ROOMS[0] | {"account": "@another"}, ROOMS[1]])
    async with poller_for(config) as poller:
        assert await poller.restore_states(config.targets, load) == 2
        poller.update_targets(changed, forget=["a"])  # what a reload does with a changed target
        # A replica that gains the targets again (or a restart) reads the state stored before the change.
        assert await poller.restore_states(changed.targets, load) == 0
        assert poller._target_state(changed.targets[0]).adapter_state == RoomState()
        assert poller._target_state(b).adapter_state == RoomState("222")
        poller.forget_targets(["b"])  # lost to another replica; gained back unchanged: it carries on
        assert await poller.restore_states(changed.targets, load) == 1
        assert poller._target_state(b).adapter_state == RoomState("222")


async def test_a_state_the_codec_cannot_take_never_stops_a_poll(caplog: pytest.LogCaptureFixture) -> None:
    @dataclasses.dataclass
    class Loose:
        anything: Any = None

    async def poll(ctx: PollContext[Loose]) -> PollResult:
        return PollResult(Outcome.OK, ParseResult([Reading(Metric.VIEWERS, 5.0, Provenance.OBSERVED)]))

    class LooseAdapter:
        name, kinds, default_base_urls, markers = (
            "tiktok",
            {"live": KindSpec(poll, new_state=Loose)},
            {},
            NO_MARKERS,
        )

    config = config_of(ROOMS[:1])
    async with poller_for(config) as poller:
        poller.adapters = {"tiktok": LooseAdapter()}  # type: ignore[dict-item]
        records = [await poller.poll(config.targets[0]) for _ in range(2)]
    assert [(r.outcome, r.state, [s.value for s in r.samples]) for r in records] == [
        (Outcome.OK, None, [5.0])
    ] * 2
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "a: state cannot be stored; it will not survive a restart"
    ]  # once, not every poll


# --- a Shopee estimate across two processes, through the real store ---------------------------------


def shopee_config(base: str, database_url: str) -> Config:
    urls = {
        "live": f"{base}/live.shopee.vn",
        "creator": f"{base}/creator.shopee.vn",
        "short": f"{base}/vn.shp.ee",
    }
    return config_of(
        [{"name": "sp", "platform": "shopee", "kind": "live", "session_id": SESSION, "fetch": "http"}],
        {"shopee": {"base_urls": urls, "min_interval": "1s", "requests_per_second": 100.0}},
        database_url=database_url,
    )


@asynccontextmanager
async def collector_process(config: Config) -> AsyncIterator[tuple[Poller, BatchWriter, Store]]:
    """What one collector process holds: its own store, writer and poller; only the database is shared."""
    store = Store(config.collector.database_url, config.targets)
    await store.prepare()
    metrics = SelfMetrics(LiveState(config.targets))
    writer = BatchWriter(
        store, metrics, flush_interval=1.0, batch_size=100, pending_limit=1000, raw_retention=3600.0
    )
    try:
        async with poller_for(config, writer.submit) as poller:
            yield poller, writer, store
    finally:
        await store.close()


def estimate_truth(elapsed: float) -> tuple[int, int]:
    found = shopee_world.truth(event_week(1), elapsed, START)["sessions"][SESSION]
    return found["estimated_items_sold"], found["estimated_revenue"]


async def test_a_new_process_carries_the_estimate_on_from_the_first_baseline(database_url: str) -> None:
    clock = SimClock(freeze_at=4200.0, start=START)
    async with simulator_in_process(event_week(1), clock) as base:
        config = shopee_config(base, database_url)
        target = config.targets[0]
        async with collector_process(config) as (poller, writer, _):
            assert await poller.restore_states(config.targets, writer.store.load_target_states) == 0
            first = await poller.poll(target)  # the baseline
            clock.freeze_at = 6000.0
            second = await poller.poll(target)
            assert first.state is not None and second.state is not None
            assert await writer.flush_once()
        clock.freeze_at = 8000.0
        async with collector_process(config) as (poller, writer, store):
            assert await poller.restore_states(config.targets, store.load_target_states) == 1
            third = await poller.poll(target)
            assert await writer.flush_once()
            async with store.engine.connect() as conn:
                sessions = (await conn.execute(select(LiveSessionRow.id, LiveSessionRow.session_key))).all()
                rows = (
                    await conn.execute(
                        select(SampleRow.observed_at, SampleRow.metric, SampleRow.value, SampleRow.session_id)
                        .where(SampleRow.metric.in_([Metric.ITEMS_SOLD.value, Metric.REVENUE.value]))
                        .order_by(SampleRow.observed_at)
                    )
                ).all()
        async with poller_for(config) as fresh:  # what the second process gave before states were kept
            restarted = await fresh.poll(target)
    assert [key for _, key in sessions] == [SESSION]
    assert {session_id for *_, session_id in rows} == {sessions[0][0]}
    stored = {}
    for at, metric, value, _ in rows:
        stored.setdefault(at, {})[metric] = value
    assert [at for at in stored] == [first.observed_at, second.observed_at, third.observed_at]
    baseline = estimate_truth(4200.0)
    expected = [tuple(float(now - then) for now, then in zip(estimate_truth(t), baseline, strict=True))
                for t in (4200.0, 6000.0, 8000.0)]  # fmt: skip
    assert [(v["items_sold"], v["revenue"]) for v in stored.values()] == expected
    assert expected[0] == (0, 0) and 0 < expected[1][0] < expected[2][0]
    fresh_values = {s.metric: s.value for s in restarted.samples}
    assert (fresh_values[Metric.ITEMS_SOLD], fresh_values[Metric.REVENUE]) == (0, 0)


async def test_an_unchanged_state_is_not_sent_again(tmp_path: Path) -> None:
    clock = SimClock(freeze_at=12_000.0, start=START)  # the session has ended: nothing moves
    async with simulator_in_process(event_week(1), clock) as base:
        config = shopee_config(base, f"sqlite+aiosqlite:///{tmp_path}/unused.db")
        async with poller_for(config) as poller:
            records = [await poller.poll(config.targets[0]) for _ in range(3)]
    assert [r.outcome for r in records] == [Outcome.NOT_LIVE] * 3
    assert [r.state is not None for r in records] == [True, False, False]


# --- the spool ----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_state_spooled_in_an_outage_is_written_after_and_never_overwrites_a_newer_one(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = config_of(ROOMS[:2], database_url=postgres_url)
    a, b = config.targets
    older = [
        PollRecord(t.name, T0, Outcome.OK, state=stored_for(t, RoomState(f"{t.name}-old"))) for t in (a, b)
    ]
    newer_a = PollRecord("a", T0 + timedelta(seconds=10), Outcome.OK, state=stored_for(a, RoomState("a-new")))
    metrics = SelfMetrics(LiveState(config.targets))
    settings = {"flush_interval": 1.0, "batch_size": 100, "pending_limit": 1000, "raw_retention": 3600.0}

    async def outage() -> None:
        store = Store(postgres_url, config.targets)
        await store.prepare()
        spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
        writer = BatchWriter(store, metrics, spool=spool, **settings)
        postgres_server.stop()
        for record in older:
            writer.submit(record)
        assert not await writer.flush_once()  # the records wait in the spool
        spool.close()
        await store.close()

    async def next_start() -> dict[str, Any]:
        store = Store(postgres_url, config.targets)
        try:
            await store.write([newer_a])  # meanwhile another replica stored a newer state of `a`
            spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
            replay = BatchWriter(store, metrics, spool=spool, **settings)
            assert len(replay.pending) == 2
            assert await replay.flush_once()
            spool.close()
            return await store.load_target_states(["a", "b"])
        finally:
            await store.close()

    asyncio.run(outage())
    postgres_server.start()
    states = asyncio.run(next_start())
    assert {name: data["state"]["room_id"] for name, data in states.items()} == {"a": "a-new", "b": "b-old"}


async def test_at_start_a_state_the_previous_run_left_in_the_spool_wins_over_the_database(
    tmp_path: Path,
) -> None:
    config = config_of(ROOMS[:1], database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    a = config.targets[0]
    store = Store(config.collector.database_url, config.targets)
    await store.prepare()
    await store.write([PollRecord("a", T0, Outcome.OK, state=stored_for(a, RoomState("in-the-database")))])
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)  # the previous run died before writing this
    spool.append(
        PollRecord("a", T0 + timedelta(seconds=15), Outcome.OK, state=stored_for(a, RoomState("spooled")))
    )
    spool.close()
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    writer = BatchWriter(
        store, SelfMetrics(LiveState(config.targets)), flush_interval=1.0, batch_size=100,
        pending_limit=1000, raw_retention=3600.0, spool=spool,
    )  # fmt: skip
    try:
        async with poller_for(config, writer.submit) as poller:
            await _restore_states(store, writer, poller, config.targets)
            assert poller._target_state(a).adapter_state == RoomState("spooled")
    finally:
        spool.close()
        await store.close()


async def test_collector_once_carries_the_estimate_on_between_runs(tmp_path: Path) -> None:
    clock = SimClock(freeze_at=4200.0, start=START)
    async with simulator_in_process(event_week(1), clock) as base:
        config = shopee_config(base, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
        await poll_once(config)  # the baseline
        clock.freeze_at = 8000.0
        [record] = await poll_once(config)
    values = {s.metric: s.value for s in record.samples}
    now, baseline = estimate_truth(8000.0), estimate_truth(4200.0)
    assert (values[Metric.ITEMS_SOLD], values[Metric.REVENUE]) == (now[0] - baseline[0], now[1] - baseline[1])
    assert values[Metric.ITEMS_SOLD] > 0
