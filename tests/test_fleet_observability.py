"""The fleet's dashboard row and alert expressions on a real Prometheus scraping three real replicas.

Each replica is its own scrape target, as in Kubernetes or compose; the queries must add up to the
fleet across them, and the fleet alerts must see a replica killed with -9.
"""

from __future__ import annotations

import json
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from tests.harness import service, simulator, wait_for
from tests.test_fleet_processes import LEASE, held, replica_config
from tests.test_real_scrape import (
    DASHBOARDS,
    RULES,
    grafana_to_promql,
    has_data,
    instant,
    prometheus_config,
    prometheus_server,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UNHELD = "max(collector_fleet_targets) - sum(collector_fleet_leases_held)"


def fleet_row_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of the collector-health dashboard's fleet row."""
    panels = json.loads((DASHBOARDS / "collector-health.json").read_text(encoding="utf-8"))["panels"]
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"].startswith("Fleet"))
    end = next(i for i, p in enumerate(panels) if i > start and p["type"] == "row")
    return [(p["title"], q["expr"]) for p in panels[start + 1 : end] for q in p["targets"]]


def alert_expr(name: str) -> str:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r["alert"] == name]
    return rule["expr"]


def scalar(prometheus: str, expr: str) -> float | None:
    """The value of a query with at most one series (None: no series)."""
    result = instant(prometheus, expr)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def test_fleet_panels_and_alerts_across_three_replicas_and_a_kill_9(
    postgres_url: str, tmp_path: Path
) -> None:
    with simulator() as sim, ExitStack() as stack:
        configs = [replica_config(tmp_path, name, postgres_url, sim) for name in ("a", "b", "c")]
        procs = [stack.enter_context(service(config)) for config, _ in configs]
        ports = [port for _, port in configs]
        prom = stack.enter_context(
            prometheus_server(prometheus_config(tmp_path / "prometheus.yml", *ports), tmp_path / "tsdb")
        )

        def settled() -> bool:
            return (
                scalar(prom, "sum(collector_fleet_leases_held)") == 9
                and scalar(prom, "max(collector_fleet_replicas)") == 3
            )

        assert wait_for(settled, 60), [held(p) for p in ports]
        queries = fleet_row_queries()
        assert len(queries) >= 7
        # A rate or an increase needs two scrapes of a series first.
        pending = dict(queries)

        def all_answered() -> bool:
            for title in [t for t, expr in pending.items() if has_data(prom, grafana_to_promql(expr))]:
                del pending[title]
            return not pending

        assert wait_for(all_answered, 10), pending
        per_replica = instant(prom, "sum by (instance) (collector_fleet_leases_held)")["result"]
        assert sorted(float(s["value"][1]) for s in per_replica) == [3.0, 3.0, 3.0]
        # Each target is described by one replica: taken once per series, the fleet has all nine.
        assert scalar(prom, "count(max without (instance) (collector_target_interval_seconds))") == 9
        assert scalar(prom, UNHELD) == 0
        assert instant(prom, alert_expr("FleetTargetsUnheld"))["result"] == []
        assert instant(prom, alert_expr("FleetReplicaLost"))["result"] == []

        # kill -9: the victim's series go stale at its next failed scrape, so its targets count as
        # unheld until its leases run out and the others take them over.
        victim = procs[2]
        victims = held(ports[2])
        assert victims == 3
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(10)
        assert wait_for(lambda: scalar(prom, UNHELD) == victims, LEASE, interval=0.2)
        unheld = alert_expr("FleetTargetsUnheld")
        assert scalar(prom, unheld) == victims  # pending: `for` is two leases, the takeover takes one
        assert wait_for(lambda: scalar(prom, UNHELD) == 0, LEASE + 5, interval=0.2)
        print(f"\nkill -9: all targets held again in Prometheus {time.monotonic() - killed_at:.1f} s later")
        lost = wait_for(lambda: scalar(prom, alert_expr("FleetReplicaLost")), 5)
        assert lost is not None and lost >= victims  # increase() extrapolates over the window, upwards
        assert scalar(prom, "sum(collector_fleet_lease_takeovers_total)") == victims
        assert wait_for(lambda: scalar(prom, "max(collector_fleet_replicas)") == 2, LEASE + 5)
        assert instant(prom, unheld)["result"] == []
        survivors = instant(prom, "sum by (instance) (collector_fleet_leases_held)")["result"]
        assert len(survivors) == 2 and sum(float(s["value"][1]) for s in survivors) == 9
