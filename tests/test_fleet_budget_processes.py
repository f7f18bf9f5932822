"""Three real `collector run` replicas, one PostgreSQL, the simulator as TikTok: the platform's request
rate, a Retry-After hold and a proxy rotation are kept by the fleet as a whole, measured where the
requests arrive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from collector.store import Store
from tests.harness import (
    DEMO_TARGETS,
    free_port,
    http_get,
    metric_value,
    proxies,
    scrape,
    service,
    simulator,
    wait_for,
    write_config,
)

RATE = 4.0  # the platform's requests_per_second: what the three replicas together may send
WINDOW = 10.0
# Turns are spaced on PostgreSQL's clock; at the simulator a start may arrive a few milliseconds late
# or early, which can fit one more start into the window, and one more at each edge. So: R·W + 2.
SLACK = 2
HOLD = 5.0  # the Retry-After served once
# A start already past its last check when the 429 was answered may still arrive a moment later.
IN_FLIGHT = 0.5
FROZEN_AT = "650"  # shop_vn is live then
# Ten targets polled every second, split among the replicas by lease: far more requests than RATE.
TARGETS = DEMO_TARGETS + DEMO_TARGETS.replace('name = "', 'name = "again-')


def sim_requests(sim: str, since: float) -> list[dict]:
    status, body = http_get(f"{sim}/_sim/requests?since={since}")
    assert status == 200
    return json.loads(body)["requests"]


def serve_one_429(sim: str) -> None:
    rule = [{"mode": "429", "match": "", "retry_after": HOLD, "count": 1}]
    request = urllib.request.Request(
        f"{sim}/_sim/faults",
        data=json.dumps(rule).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def polls_not_blocked(exposition: str) -> float:
    """Polls that got past the ban: every outcome of `collector_polls_total` but `blocked`."""
    return sum(
        float(line.rpartition(" ")[2])
        for line in exposition.splitlines()
        if line.startswith("collector_polls_total{") and 'outcome="blocked"' not in line
    )


async def migrate(url: str) -> None:
    store = Store(url)
    await store.prepare()
    await store.close()


def replica_config(
    folder: Path, postgres_url: str, sim: str, port: int, platform: str = f"requests_per_second = {RATE}"
) -> Path:
    folder.mkdir()
    config = write_config(
        folder / "c.toml",
        database_url=postgres_url,
        sim_url=sim,
        metrics_port=port,
        targets=TARGETS,
        fleet_lease=30.0,
    )
    config.write_text(config.read_text().replace("requests_per_second = 50.0", platform))
    return config


@pytest.mark.integration
def test_three_replicas_keep_the_platform_rate_and_a_retry_after_together(
    postgres_url: str, tmp_path: Path
) -> None:
    # Migrated once, so the replicas do not race each other through the first migration.
    asyncio.run(migrate(postgres_url))
    ports = [free_port() for _ in range(3)]
    with simulator("--freeze-at", FROZEN_AT) as sim, ExitStack() as stack:
        replicas = [
            stack.enter_context(
                service(
                    replica_config(tmp_path / f"replica-{n}", postgres_url, sim, port), log_level="warning"
                )
            )
            for n, port in enumerate(ports)
        ]

        def all_sharing() -> bool:
            # Each replica has waited for a turn another one took: all three draw on the shared budget.
            return all(
                (metric_value(scrape(p), "collector_fleet_budget_waits_total", platform="tiktok") or 0) > 0
                for p in ports
            )

        assert wait_for(all_sharing, timeout=60), "the three replicas did not all start polling"

        start = time.time()
        time.sleep(WINDOW + 0.5)
        arrived = [r for r in sim_requests(sim, start) if r["time"] < start + WINDOW]
        assert len(arrived) <= RATE * WINDOW + SLACK, f"{len(arrived)} requests in {WINDOW:g}s"
        # ...and the budget is used, not starved: a lone replica would send at RATE too.
        assert len(arrived) >= 0.7 * RATE * WINDOW, f"only {len(arrived)} requests in {WINDOW:g}s"

        serve_one_429(sim)
        asked = time.time()
        refused = wait_for(lambda: [r for r in sim_requests(sim, asked) if r["status"] == 429], timeout=5)
        assert refused, "no 429 served"
        answered = refused[0]["done"]
        time.sleep(HOLD + 1.5)
        after = sim_requests(sim, answered)
        during = [r for r in after if answered + IN_FLIGHT <= r["time"] < answered + HOLD]
        assert during == [], f"{len(during)} requests reached the host during the Retry-After hold"
        resumed = [r for r in after if r["time"] >= answered + HOLD]
        assert resumed, "polling did not resume after the hold"
        for replica in replicas:  # all at once: each drains and flushes while the others do
            replica.send_signal(signal.SIGTERM)


@pytest.mark.integration
def test_a_banned_proxy_is_rotated_away_from_once_for_the_whole_fleet(
    postgres_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(postgres_url))
    ports = [free_port() for _ in range(3)]
    with proxies(True, False, False) as (banned, good, spare), simulator("--freeze-at", FROZEN_AT) as sim:
        env = {**os.environ, "TEST_PROXIES": f"{banned.url},{good.url},{spare.url}"}
        platform = 'requests_per_second = 50.0\nproxies_env = "TEST_PROXIES"'
        with ExitStack() as stack:
            for n, port in enumerate(ports):
                config = replica_config(tmp_path / f"replica-{n}", postgres_url, sim, port, platform)
                stack.enter_context(service(config, env=env, log_level="warning"))

            def all_through_the_next_proxy() -> list[str] | None:
                pages = [scrape(p) for p in ports]
                return pages if all(polls_not_blocked(m) for m in pages) else None

            pages = wait_for(all_through_the_next_proxy, timeout=60)
            progress = [polls_not_blocked(scrape(p)) for p in ports]
    assert pages, f"not every replica polled past the ban: {progress}"
    rotations = [metric_value(m, "collector_proxy_rotations_total", platform="tiktok") or 0 for m in pages]
    fallbacks = [metric_value(m, "collector_fleet_budget_fallbacks_total", platform="tiktok") for m in pages]
    # Replicas met the ban on their first polls (several at once), yet the fleet moved on once.
    assert banned.seen and good.seen
    assert not spare.seen, f"the spare proxy was used; rotations {rotations}, fallbacks {fallbacks}"
    assert sum(rotations) == 1, f"rotations {rotations}, fallbacks {fallbacks}"
