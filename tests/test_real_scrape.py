"""The dashboards and alert rules against a real Prometheus scraping a real collector polling the simulator.

Every PromQL expression of every dashboard panel must parse and return data; every alert expression
must parse. A panel whose metric does not exist (or was renamed) fails here, not on a screen.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.harness import (
    DEMO_TARGETS,
    free_port,
    http_get,
    scrape,
    service,
    simulator,
    wait_for,
    write_config,
)
from tests.test_fault_matrix import set_faults
from tests.tools import DEPLOY, require_tool

pytestmark = pytest.mark.integration

DASHBOARDS = DEPLOY / "grafana" / "dashboards"
RULES = DEPLOY / "prometheus" / "alerts.yml"
# What Grafana substitutes before sending a query: every variable at "All" (its allValue), and the
# rate window it derives from a 1 s scrape interval.
GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "10s", "$platform": ".*", "$target": ".*", "$campaign": ".*"}
WAIT_FOR_DATA = 45.0


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel query, rows' nested panels included."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        panels = json.loads(path.read_text(encoding="utf-8"))["panels"]
        for panel in [*panels, *(p for row in panels for p in row.get("panels", []))]:
            for query in panel.get("targets", []):
                found.append((path.name, panel["title"], query["expr"]))
    return found


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return expr


def alert_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


TARGETS = (
    DEMO_TARGETS
    + """
[[targets]]
name = "truncated-pages"
platform = "tiktok"
kind = "live"
account = "htx_che_laichau"
campaign = "mega-livestream-lai-chau-2025"
scheduled_start = STARTED_10_MIN_AGO

[[targets]]
name = "tag-nongsanlaichau"
platform = "tiktok"
kind = "hashtag"
tag = "nongsanlaichau"
interval = "3s"
campaign = "mega-livestream-lai-chau-2025"

[[targets]]
name = "shopee-live-tam-duong"
platform = "shopee"
kind = "live"
session_id = "https://vn.shp.ee/z5JpwPZwn7"
fetch = "http"
campaign = "mega-livestream-lai-chau-2025"

[[targets]]
name = "shopee-shop-tam-duong"
platform = "shopee"
kind = "shop_dashboard"
cookies_env = "TEST_SHOPEE_COOKIES"
campaign = "mega-livestream-lai-chau-2025"

[[targets]]
name = "facebook-laichau-ocop"
platform = "facebook"
kind = "live"
page = "laichau.ocop"
campaign = "mega-livestream-lai-chau-2025"
scheduled_start = STARTED_10_MIN_AGO
"""
)


def collector_config(path: Path, sim: str, port: int) -> Path:
    """The demo's mix of platforms and kinds, polled every second, plus a target whose pages arrive cut short."""
    more = f"""
[browser]
navigation_timeout = "10s"

[platforms.shopee]
base_urls = {{ live = "{sim}/live.shopee.vn", creator = "{sim}/creator.shopee.vn", short = "{sim}/vn.shp.ee" }}
min_interval = "1s"
requests_per_second = 50.0

[platforms.facebook]
base_urls = {{ web = "{sim}/www.facebook.com" }}
min_interval = "1s"
requests_per_second = 50.0
"""
    database_url = f"sqlite+aiosqlite:///{path.parent}/collector.db"
    # Two targets were due live 10 minutes ago: the Facebook page is live, the other never is.
    started = datetime.now(UTC) - timedelta(minutes=10)
    return write_config(
        path,
        database_url=database_url,
        sim_url=sim,
        metrics_port=port,
        targets=more + TARGETS.replace("STARTED_10_MIN_AGO", started.isoformat(timespec="seconds")),
    )


def prometheus_config(path: Path, *collector_ports: int) -> Path:
    """deploy/prometheus/prometheus.yml itself, scraping the test's collectors every second."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}" for port in collector_ports]}]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextmanager
def prometheus_server(config: Path, data: Path) -> Iterator[str]:
    binary = require_tool("prometheus", "prometheus")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def ready() -> bool:
            try:
                return http_get(f"{url}/-/ready", timeout=2)[0] == 200
            except OSError:
                return False

        assert wait_for(ready, timeout=30), f"prometheus did not start: {proc.poll()}"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def instant(prometheus: str, expr: str) -> dict:
    status, body = http_get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", f"{expr}\n -> {status} {body[:500]}"
    return answer["data"]


def has_data(prometheus: str, expr: str) -> bool:
    data = instant(prometheus, expr)
    return bool(data["result"]) if data["resultType"] in ("vector", "matrix") else True


def test_every_dashboard_and_alert_query_against_a_real_prometheus(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    queries = dashboard_queries()
    assert len(queries) >= 25, "dashboards lost their panels"
    port = free_port()
    env = {**os.environ, "TEST_SHOPEE_COOKIES": "SPC_EC=organiser-session; SPC_U=1"}
    env.pop("COLLECTOR_DATABASE_URL", None)
    with simulator() as sim:
        # One account's pages arrive cut short, so parse failures have a series to show.
        set_faults(sim, {"mode": "truncate", "match": "htx_che_laichau"})
        with (
            service(collector_config(tmp_path / "collector.toml", sim, port), env=env) as collector,
            prometheus_server(
                prometheus_config(tmp_path / "prometheus.yml", port), tmp_path / "tsdb"
            ) as prom,
        ):
            started = time.monotonic()
            pending = {grafana_to_promql(expr) for _, _, expr in queries}

            def all_answered() -> bool:
                pending.difference_update({expr for expr in pending if has_data(prom, expr)})
                return not pending

            wait_for(all_answered, timeout=WAIT_FOR_DATA, interval=1.0)
            waited = time.monotonic() - started
            exposition = scrape(port)
            health = http_get(f"http://127.0.0.1:{port}/healthz")
            readiness = http_get(f"http://127.0.0.1:{port}/readyz")
            alert_results = {name: instant(prom, expr) for name, expr in alert_expressions()}
            assert collector.poll() is None, "the collector died"

    empty = [(d, title, expr) for d, title, expr in queries if grafana_to_promql(expr) in pending]
    assert not empty, "dashboard queries without data:\n" + "\n".join(f"  {d}: {t}: {e}" for d, t, e in empty)
    print(f"\nall {len(queries)} dashboard queries returned data within {waited:.1f} s")
    # Each rule's expression parsed and evaluated (an error would have failed `instant`).
    assert sorted(alert_results) == sorted(name for name, _ in alert_expressions())
    assert {data["resultType"] for data in alert_results.values()} == {"vector"}, alert_results
    for name, data in alert_results.items():
        print(f"  {name}: {len(data['result'])} series match now")
    not_live = alert_results["NotLiveByScheduledStart"]["result"]
    assert [series["metric"]["target"] for series in not_live] == ["truncated-pages"]
    assert health == (200, "ok\n")
    assert readiness == (200, "ok\n")

    # The exposition a real scrape sees follows Prometheus's own conventions, without `_created` twins.
    check = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0 and not check.stdout and not check.stderr, check.stdout + check.stderr
    assert not re.search(r"^\w+_created\b", exposition, re.MULTILINE)
