"""The alert rules and the scrape configuration, checked and unit-tested by Prometheus's own promtool."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.tools import DEPLOY, require_tool

PROMETHEUS = DEPLOY / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "prometheus")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=PROMETHEUS)


@pytest.mark.integration
def test_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout


@pytest.mark.integration
def test_rules_pass_their_unit_tests(promtool: str) -> None:
    result = run(promtool, "test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_scrape_config_passes_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_rule_has_a_runbook_a_summary_and_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text(encoding="utf-8"))["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    runbooks = (PROMETHEUS / "README.md").read_text(encoding="utf-8")
    for rule in rules():
        annotations = rule["annotations"]
        assert annotations["runbook"].strip() and "\n" not in annotations["runbook"], rule["alert"]
        assert annotations["summary"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} has no unit test that makes it fire"
        assert f"| `{rule['alert']}` (" in runbooks, f"{rule['alert']} is not in deploy/prometheus/README.md"
