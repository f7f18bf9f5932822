"""The `event-week` scenario's marketplace shops through the real service, in compressed time: polled
once before the sales window opens (the baselines), inside it and after it, `collector report` gives
each Tiki and Sendo shop the simulator's truth exactly, and each Lazada shop an interval holding it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from simulator.scenario import DAY
from tests.harness import free_port, run_cli, service, simulator, truth, wait_for_polls_started_after
from tests.test_fault_matrix import post

pytestmark = pytest.mark.integration

STEPS = (600, 40_000, 3 * DAY + 600)  # before the window, inside it, after it
CAMPAIGN = "event-marketplaces"
SHOPS = (
    ("tiki", "tiki-40395", 'shop = "40395"'),
    ("tiki", "tiki-40412", 'shop = "https://tiki.vn/cua-hang/htx-che?seller_id=40412"'),
    ("sendo", "sendo-717078", 'shop = "717078"'),
    ("lazada", "lazada-ocop-lai-chau", 'shop = "https://www.lazada.vn/shop/ocop-lai-chau/"'),
    ("lazada", "lazada-mat-ong-sin-ho", 'shop = "mat-ong-sin-ho"'),
)
HOSTS = {
    "tiki": 'web = "{sim}/tiki.vn", api = "{sim}/api.tiki.vn"',
    "sendo": 'web = "{sim}/www.sendo.vn", detail = "{sim}/detail-api.sendo.vn", shop = "{sim}/shop-home.sendo.vn"',
    "lazada": 'web = "{sim}/www.lazada.vn"',
}


def marketplace_config(path: Path, sim: str, port: int, database_url: str) -> Path:
    platforms = "\n".join(
        f'[platforms.{name}]\nbase_urls = {{ {urls.format(sim=sim)} }}\nmin_interval = "1s"\n'
        f"requests_per_second = 50.0\n"
        for name, urls in HOSTS.items()
    )
    tables = "\n".join(
        f'[[targets]]\nname = "{name}"\nplatform = "{platform}"\nkind = "shop"\n{fields}\ninterval = "1s"\n'
        f'campaign = "{CAMPAIGN}"\n'
        for platform, name, fields in SHOPS
    )
    path.write_text(
        f"""
[collector]
database_url = "{database_url}"
spool_dir = "{path.parent}/spool"
metrics_listen = "127.0.0.1:{port}"
flush_interval = "200ms"

[http]
timeout = "5s"

{platforms}
{tables}
""",
        encoding="utf-8",
    )
    return path


def test_event_week_shop_estimates_equal_the_truth(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_DATABASE_URL"}
    names = [name for _, name, _ in SHOPS]
    with simulator("--scenario", "event-week", "--freeze-at", str(STEPS[0])) as sim:
        config = marketplace_config(tmp_path / "marketplaces.toml", sim, port, database_url)
        with service(config, env=env) as proc:
            try:
                for step in STEPS:
                    post(f"{sim}/_sim/clock", {"freeze_at": step})
                    stepped = time.time()
                    assert wait_for_polls_started_after(port, names, stepped), (
                        f"not every shop polled at scenario second {step}"
                    )
                served = truth(sim)
            finally:
                proc.send_signal(signal.SIGTERM)
                output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output[-3000:]

    report = run_cli("report", "--config", str(config), "--campaign", CAMPAIGN, "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    entries = {s["targets"][0]: s for s in doc["sessions"]}
    found, expected = {}, {}
    for platform, name, _ in SHOPS:
        shop = served[platform]["shops"][name.split("-", 1)[1]]
        entry = entries[name]
        assert entry["channel"] == "marketplace" and entry["provenance"]["headline_revenue"] == "estimated"
        items, revenue = entry["items_sold"]["estimated"], entry["revenue"]["estimated"]
        if platform == "lazada":
            assert entry["rounded"], name
            assert items <= shop["items_sold"] <= entry["items_sold_upper"], name
            assert revenue <= shop["revenue"] <= entry["revenue_upper"], name
            continue
        assert not entry["rounded"] and entry["revenue_upper"] is None
        found[name], expected[name] = (items, revenue), (shop["items_sold"], shop["revenue"])
    print(json.dumps({"truth": expected, "report": found}, indent=1))
    assert found == expected
    assert all(items > 0 for items, _ in expected.values())
    assert sorted(doc["by_platform"]) == ["lazada", "sendo", "tiki"]
    assert doc["totals"]["sessions"] == 0 and doc["totals"]["marketplace_shops"] == len(SHOPS)
    text = run_cli("report", "--config", str(config), "--campaign", CAMPAIGN, env=env)
    assert text.returncode == 0 and "làm tròn" in text.stdout
