"""What storing per-target state costs: the store's time for one poll round of 10,000 targets when
every target's state changed (the worst case; an unchanged state is not sent at all), next to the same
round without states, and the state upserts alone next to empty batches (the round's noise hides them);
the spool's time to append a record with and without a state; and the poller's time to dump and
compare one state after a poll.

Each target is a Shopee live target with a sales estimate over 12 live-bag items (about 1.4 KB of JSON;
only a capped marketplace shop keeps more). The store is timed through `Store.write`, 500 records per
transaction as the writer calls it, and the spool through `Spool.append` without its per-batch fsync,
so neither figure carries disk-flush noise. One database per backend, prepared once and warmed with a
first round; then the variants alternate (each a later poll round, so states are updated in place as
in steady state) and the medians of three rounds are printed.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import orjson

from bench.postgres import fresh_databases, throwaway_postgres
from bench.writer import BATCH, START
from collector.adapters import registered_adapters
from collector.api import PollRecord, TargetConfig
from collector.outcomes import Outcome
from collector.spool import Spool
from collector.store import Store
from collector.target_state import canonical, definition_key, envelope
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation
from scrapers.shopee import Item, SalesEstimate
from scrapers.shopee import LiveState as ShopeeState

TARGETS = 10_000
ITEMS = 12
ROUNDS = 3
METRICS = (Metric.VIEWERS, Metric.LIKES, Metric.ITEMS_SOLD, Metric.REVENUE, Metric.LIVE_STATUS)
SPEC = registered_adapters()["shopee"].kinds["live"]
CONFIGS = [TargetConfig(f"sp-{i}", "shopee", "live", 15.0, {"session_id": str(10**8 + i)}, "bench") for i in range(TARGETS)]  # fmt: skip


def target_state(i: int, n: int) -> ShopeeState:
    items = [Item(f"{i}{k:03d}", 1000 + k + n, 125_000 + k) for k in range(ITEMS)]
    sales = SalesEstimate(str(10**8 + i), {item.item_id: 1000 + k for k, item in enumerate(items)})
    sales.update(items)
    return ShopeeState((str(10**8 + i), str(10**8 + i)), sales)


def poll_round(n: int, with_state: bool, with_samples: bool = True) -> list[PollRecord]:
    at = START + timedelta(seconds=15 * n)
    records = []
    for i, target in enumerate(CONFIGS):
        key = target.params["session_id"]
        samples = [
            Sample(target.name, "shopee", "live", m, float(n + k), at, Provenance.OBSERVED, key)
            for k, m in enumerate(METRICS)
        ] if with_samples else []  # fmt: skip
        session = SessionObservation(key, LiveStatus.LIVE, "Sale 9.9", START) if with_samples else None
        state = envelope(definition_key(target), SPEC, target_state(i, n), 0, None) if with_state else None
        records.append(PollRecord(target.name, at, Outcome.OK, samples, session, [], at, state=state))
    return records


async def write_round(store: Store, records: list[PollRecord]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(records), BATCH):
        await store.write(records[i : i + BATCH], poll_outcomes=bool(records[i].samples))
    return time.perf_counter() - wall, time.process_time() - cpu


# (title, with state, with samples): a whole poll round, and the state upsert alone next to an empty batch.
VARIANTS = (
    ("poll round, every state", True, True),
    ("baseline: no state", False, True),
    ("states alone", True, False),
    ("baseline: empty batches", False, False),
)


async def measure(label: str, url: str) -> None:
    store = Store(url, CONFIGS)
    await store.prepare()
    results: dict[str, list[tuple[float, float]]] = {title: [] for title, _, _ in VARIANTS}
    await write_round(store, poll_round(0, True))  # every target gets its row: later rounds update
    n = last_with_state = 0
    for _ in range(ROUNDS):
        for title, with_state, with_samples in VARIANTS:
            n += 1
            last_with_state = n if with_state else last_with_state
            results[title].append(await write_round(store, poll_round(n, with_state, with_samples)))
    stored = await store.load_target_states([CONFIGS[-1].name])
    await store.close()
    written = envelope(definition_key(CONFIGS[-1]), SPEC, target_state(TARGETS - 1, last_with_state), 0, None)
    if stored[CONFIGS[-1].name] != orjson.loads(orjson.dumps(written)):
        raise SystemExit("the stored state is not the last one written")
    medians = {
        title: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for title, runs in results.items()
    }
    for title, (wall, cpu) in medians.items():
        print(f"{label:10s} {title:26s} {wall * 1000:7.0f} ms/round {cpu:6.2f} CPU-s/round")
    (wall, cpu), (base_wall, base_cpu) = medians["states alone"], medians["baseline: empty batches"]
    print(
        f"{label:10s} {'state upsert':26s} {(wall - base_wall) * 1e6 / TARGETS:7.0f} µs per changed state, "
        f"{(cpu - base_cpu) * 1e6 / TARGETS:.0f} µs CPU"
    )


def dump_and_compare() -> None:
    """The poller's side: one changed state dumped and compared per poll (`Poller._changed_state`)."""
    states = [target_state(i, 1) for i in range(2_000)]
    definitions = [definition_key(target) for target in CONFIGS[: len(states)]]  # kept per target
    took = []
    for _ in range(5):
        started = time.perf_counter()
        for definition, state in zip(definitions, states, strict=True):
            canonical(envelope(definition, SPEC, state, 0, None))
        took.append((time.perf_counter() - started) / len(states))
    size = len(canonical(envelope(definition_key(CONFIGS[0]), SPEC, states[0], 0, None)))
    print(
        f"poller     dump + compare one state   {statistics.median(took) * 1e6:8.0f} µs ({size:,} bytes of JSON)"
    )


def spool_append() -> None:
    """The spool's side: the state travels in the record's line."""
    took: dict[bool, list[float]] = {True: [], False: []}
    rounds = {with_state: poll_round(1, with_state)[:2_000] for with_state in (True, False)}
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder), max_bytes=1 << 31)
        for _ in range(ROUNDS):
            for with_state, records in rounds.items():
                started = time.perf_counter()
                for record in records:
                    spool.append(record)
                took[with_state].append((time.perf_counter() - started) / len(records))
        spool.close()
    with_state, without = (statistics.median(took[k]) * 1e6 for k in (True, False))
    print(
        f"spool      append one record          {with_state:8.0f} µs with its state, {without:.0f} µs without"
    )


def main() -> None:
    print(
        f"target state: one poll round of {TARGETS:,} targets through the writer ({ITEMS} items per estimate)"
    )
    dump_and_compare()
    spool_append()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure("SQLite", f"sqlite+aiosqlite:///{folder}/bench.db"))
    with throwaway_postgres("PostgreSQL rows") as server:
        if server is not None:
            asyncio.run(measure("PostgreSQL", fresh_databases(server, "bench_state")()))


if __name__ == "__main__":
    main()
