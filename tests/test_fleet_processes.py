"""Three real `collector run` replicas, one real PostgreSQL, the simulator: failover and scale-down.

What is measured comes from the database the replicas wrote (every poll of a live TikTok room stores
its samples with the poll's time) and from each replica's /metrics.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from tests.harness import (
    free_port,
    metric_value,
    run_cli,
    scrape,
    service,
    simulator,
    wait_for,
    write_config,
)
from tests.postgres import query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INTERVAL = 2.0
LEASE = 8.0  # renewed every 2.7 s: a survivor starved of CPU for that long still keeps its own
JITTER = 0.1
# A takeover waits for the lease to run out, then for the next claim tick (1 s); the first poll there
# adds its own time and the writer's flush (200 ms). Stated once, used by every bound below.
TAKEOVER_SLACK = 2.5
ACCOUNTS = ["shop_vn", "nongsanlaichau_official"]
# Nine targets over two live rooms: each room is watched by several targets, so a session row made
# twice (one per replica that polled it) would show.
TARGETS = "".join(
    f"""
[[targets]]
name = "room-{i}"
platform = "tiktok"
kind = "live"
account = "{ACCOUNTS[i % 2]}"
interval = "{INTERVAL:g}s"
"""
    for i in range(9)
)


def replica_config(root: Path, name: str, url: str, sim: str) -> tuple[Path, int]:
    home = root / name
    home.mkdir()
    port = free_port()
    config = write_config(
        home / "config.toml",
        database_url=url,
        sim_url=sim,
        metrics_port=port,
        targets=TARGETS,
        fleet_lease=LEASE,
    )
    # The gaps below are measured between stored samples, so every poll must store its values: store on
    # change (collector.keep_unchanged_every) would leave out some and widen them by up to one interval.
    text = config.read_text().replace("[collector]\n", '[collector]\nkeep_unchanged_every = "off"\n', 1)
    config.write_text(text)
    return config, port


def held(port: int) -> int:
    return int(metric_value(scrape(port), "collector_fleet_leases_held") or 0)


def poll_times(url: str) -> dict[str, list[datetime]]:
    times: dict[str, list[datetime]] = defaultdict(list)
    sql = "SELECT DISTINCT t.name, s.observed_at FROM samples s JOIN targets t ON t.id = s.target_id ORDER BY 1, 2"
    for row in query(url, sql):
        times[row["name"]].append(row["observed_at"])
    return times


def described(port: int) -> set[str]:
    """The targets whose series a replica exposes."""
    return {
        m.group(1)
        for m in re.finditer(r'^collector_target_interval_seconds\{[^}]*target="([^"]+)"', scrape(port), re.M)
    }


def check_views(config: Path, procs: list[subprocess.Popen[str]]) -> None:
    """`collector fleet` and `collector status` say who holds what, from any machine with the config."""
    pids = {str(p.pid) for p in procs}
    fleet = json.loads(run_cli("fleet", "--config", str(config), "--format", "json").stdout)
    assert {r["id"].rsplit(":", 1)[1] for r in fleet["replicas"] if r["alive"]} == pids
    assert [r["targets_held"] for r in fleet["replicas"]] == [3, 3, 3]
    assert (fleet["targets_enabled"], fleet["targets_held"], fleet["unheld"]) == (9, 9, [])
    text = run_cli("fleet", "--config", str(config)).stdout
    assert "9 of 9 enabled targets held by 3 live replicas (lease 8s)" in text
    status = json.loads(run_cli("status", "--config", str(config), "--format", "json").stdout)
    holders = {t["held_by"].rsplit(":", 1)[1] for t in status["targets"]}
    assert holders == pids
    assert all(t["held_since"] for t in status["targets"])


def test_three_replicas_share_survive_kill_9_and_hand_over_on_sigterm(
    postgres_url: str, tmp_path: Path
) -> None:
    with simulator() as sim, ExitStack() as stack:
        configs = [replica_config(tmp_path, name, postgres_url, sim) for name in ("a", "b", "c")]
        procs: list[subprocess.Popen[str]] = []
        for config, _ in configs:
            procs.append(stack.enter_context(service(config)))
            time.sleep(0.3)  # a staggered start, as a rollout does
        ports = [port for _, port in configs]

        # All three hold a share: 3 each once the fleet has settled.
        assert wait_for(lambda: [held(p) for p in ports] == [3, 3, 3], 40), [held(p) for p in ports]
        check_views(configs[0][0], procs)
        # Each replica exposes the series of what it holds, and only that: summed, every target once.
        exposed = [described(p) for p in ports]
        assert [len(e) for e in exposed] == [3, 3, 3] and len(set().union(*exposed)) == 9
        time.sleep(3 * INTERVAL)

        # kill -9 one replica: its targets wait for the lease, then the others take them.
        victim, survivors = 0, [1, 2]
        victims_targets = {
            r["name"]
            for r in query(
                postgres_url,
                "SELECT t.name FROM target_leases l JOIN targets t ON t.id = l.target_id "
                f"WHERE l.holder LIKE '%:{procs[victim].pid}'",
            )
        }
        assert len(victims_targets) == 3
        procs[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        procs[victim].wait(10)
        assert wait_for(lambda: sum(held(ports[i]) for i in survivors) == 9, LEASE + 10)
        takeover = time.monotonic() - killed_at
        assert takeover <= LEASE + TAKEOVER_SLACK, takeover
        takeovers = sum(
            metric_value(scrape(ports[i]), "collector_fleet_lease_takeovers_total") or 0 for i in survivors
        )
        # The victim's three; on a machine starved past a lease a survivor may also lose one to the other.
        assert takeovers >= 3, takeovers
        time.sleep(3 * INTERVAL)

        # SIGTERM: a graceful scale-down hands over at once, without waiting for the lease.
        leaving, last = survivors
        procs[leaving].send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert wait_for(lambda: held(ports[last]) == 9, LEASE)
        handover = time.monotonic() - stopped_at
        assert handover < LEASE - 1, handover
        assert procs[leaving].wait(20) == 0
        assert described(ports[last]) == {f"room-{i}" for i in range(9)}
        time.sleep(3 * INTERVAL)
        procs[last].send_signal(signal.SIGTERM)
        assert procs[last].wait(20) == 0

    times = poll_times(postgres_url)
    assert set(times) == {f"room-{i}" for i in range(9)}
    worst_gap, closest = {}, {}
    for name, seen in times.items():
        steps = [(b - a).total_seconds() for a, b in pairwise(seen)]
        worst_gap[name], closest[name] = max(steps), min(steps)
    # No target is ever polled by two replicas at once: polls stay about an interval apart...
    # (A stalled scheduler resumes half a step on, and a slow poll stamps its samples late, so a
    # target's polls may come ~1 s apart; two replicas polling it at independent phases would put
    # some of theirs much closer.)
    assert min(closest.values()) >= INTERVAL / 4, closest
    # ...and the longest silence is a takeover's, at most interval + lease (+ the stated slack).
    bound = INTERVAL * (1 + JITTER) + LEASE + TAKEOVER_SLACK
    assert max(worst_gap.values()) <= bound, worst_gap
    assert max(worst_gap[n] for n in victims_targets) > LEASE / 2  # the failover did happen to those
    others = [worst_gap[n] for n in worst_gap if n not in victims_targets]
    assert max(others) <= INTERVAL * (1 + JITTER) + TAKEOVER_SLACK, worst_gap  # the SIGTERM handover

    # One session row per broadcast, though three replicas took turns on every room.
    sessions = query(postgres_url, "SELECT platform, session_key FROM live_sessions")
    per_target = query(
        postgres_url,
        "SELECT t.name, count(DISTINCT s.session_id) AS n FROM samples s JOIN targets t ON t.id = s.target_id "
        "WHERE s.session_id IS NOT NULL GROUP BY t.name",
    )
    assert len(sessions) == len({(r["platform"], r["session_key"]) for r in sessions}) <= len(ACCOUNTS)
    assert {r["n"] for r in per_target} == {1}
    duplicates = query(
        postgres_url,
        "SELECT target_id, metric, observed_at FROM samples GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert duplicates == []
    print(
        f"\nfleet failover: takeover {takeover:.1f}s after kill -9 (lease {LEASE:g}s), "
        f"SIGTERM handover {handover:.1f}s, largest gap {max(worst_gap.values()):.1f}s "
        f"(bound {bound:.1f}s), closest polls {min(closest.values()):.2f}s apart"
    )
