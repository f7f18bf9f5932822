"""A Shopee sales estimate moves between real `collector run` replicas (kill -9, then SIGTERM) and carries
on from its first baseline: one zero (the baseline poll), never a restart, one session row."""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from simulator import shopee as shopee_world
from tests.harness import free_port, metric_value, scrape, service, simulator, wait_for, write_config
from tests.postgres import query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEASE = 6.0
SESSION = shopee_world.demo_world(1)[1].session_id  # the demo's Shopee session live at start


def replica(root: Path, name: str, url: str, sim: str) -> tuple[Path, int]:
    home = root / name
    home.mkdir()
    port = free_port()
    shopee = f"""
[platforms.shopee]
base_urls = {{ live = "{sim}/live.shopee.vn", creator = "{sim}/creator.shopee.vn", short = "{sim}/vn.shp.ee" }}
min_interval = "1s"
requests_per_second = 50.0

[[targets]]
name = "sp"
platform = "shopee"
kind = "live"
session_id = "{SESSION}"
fetch = "http"
interval = "1s"
"""
    config = write_config(
        home / "config.toml",
        database_url=url,
        sim_url=sim,
        metrics_port=port,
        targets=shopee,
        fleet_lease=LEASE,
    )
    return config, port


def holds(port: int) -> bool:
    return (metric_value(scrape(port), "collector_fleet_leases_held") or 0) == 1


def test_an_estimate_carries_on_across_kill_9_and_a_graceful_handover(
    postgres_url: str, tmp_path: Path
) -> None:
    # 30 scenario seconds a second: the live bag sells a few items between two polls.
    with simulator("--speed", "30") as sim, ExitStack() as stack:
        (a, a_port), (b, b_port), (c, c_port) = (replica(tmp_path, n, postgres_url, sim) for n in "abc")
        first = stack.enter_context(service(a))
        assert wait_for(lambda: holds(a_port), 30)
        second = stack.enter_context(service(b))
        time.sleep(4)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert wait_for(lambda: holds(b_port), LEASE + 10)
        time.sleep(4)
        stack.enter_context(service(c))
        time.sleep(2)
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        assert wait_for(lambda: holds(c_port), LEASE)
        time.sleep(4)

    sold = [
        r["value"]
        for r in query(
            postgres_url,
            "SELECT s.value FROM samples s JOIN targets t ON t.id = s.target_id "
            "WHERE t.name = 'sp' AND s.metric = 'items_sold' ORDER BY s.observed_at",
        )
    ]
    assert len(sold) >= 8 and sold[0] == 0 and sold[-1] > 0, sold
    assert sold == sorted(sold), sold  # a restarted estimate would drop back to 0
    assert len(query(postgres_url, "SELECT id FROM live_sessions")) == 1
    [state] = query(postgres_url, "SELECT state::text FROM target_state")
    assert f'"session":"{SESSION}"' in state["state"].replace(" ", "")
