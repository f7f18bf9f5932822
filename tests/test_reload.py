"""Targets changed without a restart: `collector reload` and SIGHUP against a running service."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.harness import free_port, metric_value, run_cli, scrape, service, simulator, wait_for, write_config

pytestmark = pytest.mark.integration

TARGETS = {
    "shop": 'account = "@shop_vn"',
    "nongsan": 'account = "nongsanlaichau_official"',
    "htx": 'account = "htx_che_laichau"',
}


def tables(**accounts: str) -> str:
    return "".join(
        f'\n[[targets]]\nname = "{name}"\nplatform = "tiktok"\nkind = "live"\ninterval = "1s"\n{fields}\n'
        for name, fields in accounts.items()
    )


def series(port: int, name: str) -> set[str]:
    exposition = scrape(port)
    return {t for t in TARGETS if metric_value(exposition, name, target=t) is not None}


def test_reload_adds_removes_and_changes_targets_and_refuses_a_broken_file(tmp_path: Path) -> None:
    port = free_port()
    with simulator() as sim:
        config = write_config(
            tmp_path / "c.toml", database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db", sim_url=sim,
            metrics_port=port, targets=tables(shop=TARGETS["shop"], nongsan=TARGETS["nongsan"]),
        )  # fmt: skip
        base = config.read_text()
        with service(config) as proc:
            assert wait_for(lambda: series(port, "livestream_live_status") == {"shop", "nongsan"}, timeout=30)
            shop_room = metric_value(scrape(port), "livestream_viewers", target="shop")
            # nongsan leaves, htx arrives, shop changes its interval.
            changed = tables(shop=TARGETS["shop"], htx=TARGETS["htx"]).replace(
                'interval = "1s"', 'interval = "2s"', 1
            )
            config.write_text(base.split("\n[[targets]]")[0] + changed)
            result = run_cli("reload", "--config", str(config))
            assert result.returncode == 0, result.stderr
            assert (
                result.stdout.strip()
                == "applied: 1 added, 1 removed, 1 changed, 0 unchanged (+htx -nongsan ~shop)"
            )
            assert wait_for(lambda: series(port, "livestream_live_status") == {"shop", "htx"}, timeout=20)
            assert (
                metric_value(scrape(port), "collector_last_success_timestamp_seconds", target="nongsan")
                is None
            )
            assert metric_value(scrape(port), "collector_config_last_reload_successful") == 1
            good = tmp_path / "good.toml"
            good.write_text(config.read_text())
            # A broken file: `collector reload` refuses it with the usual key-path error and leaves the
            # service alone; SIGHUP makes the service read it, refuse it whole and carry on.
            config.write_text(config.read_text().replace('platform = "tiktok"', 'platform = "tiktk"', 1))
            refused = run_cli("reload", "--config", str(config))
            assert refused.returncode == 2
            assert "config error: targets[0].platform: unknown platform 'tiktk'" in refused.stderr
            proc.send_signal(signal.SIGHUP)
            assert wait_for(
                lambda: metric_value(scrape(port), "collector_config_last_reload_successful") == 0, timeout=10
            )
            assert series(port, "livestream_live_status") == {"shop", "htx"}
            assert shop_room is not None
            status = run_cli("status", "--config", str(good))
            before = wait_for(
                lambda: metric_value(scrape(port), "collector_polls_total", outcome="ok"), timeout=5
            )
            assert wait_for(
                lambda: (metric_value(scrape(port), "collector_polls_total", outcome="ok") or 0) > before,
                timeout=10,
            )
        output = proc.stdout.read() if proc.stdout else ""
    assert (
        "configuration reloaded from" in output
        and "reload refused: config error: targets[0].platform" in output
    )
    assert status.returncode == 0, status.stderr
    assert (
        "last reload" in status.stdout
        and "refused, still running the previous configuration" in status.stdout
    )
