"""deploy/: what can be checked without Docker or a cluster: schemas, cross-references, the files that
are referred to, the single source of install steps, and systemd's own verdict on the unit."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import kubernetes_validate
import pytest
import yaml

from collector.adapters import registered_adapters
from collector.config import build_config
from tests.tools import DEPLOY, ROOT, require_tool

KUBERNETES = DEPLOY / "kubernetes"
VARIABLE = re.compile(r"\$(\w+)")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", DEPLOY / "grafana" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_are_the_generators_output() -> None:
    rendered = generator().render()
    committed = {
        p.name: p.read_text(encoding="utf-8") for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")
    }
    assert committed.keys() == rendered.keys()
    for name, content in rendered.items():
        assert committed[name] == content, f"{name} is stale: run .venv/bin/python deploy/grafana/generate.py"


def test_dashboards_use_only_defined_variables_and_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        defined = {v["name"] for v in dashboard["templating"]["list"]}
        panels = [*dashboard["panels"], *(p for row in dashboard["panels"] for p in row.get("panels", []))]
        for panel in panels:
            for query in panel.get("targets", []):
                used = {v for v in VARIABLE.findall(query["expr"]) if not v.startswith("__")}
                assert used <= defined, f"{path.name}: {panel['title']}: undefined {used - defined}"
                assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
        titles = [p["title"] for p in panels if p["type"] != "row"]
        assert len(titles) == len(set(titles)), f"{path.name}: duplicate panel titles"


def test_drilldown_has_the_platform_target_and_campaign_variables() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "target-drilldown.json").read_text("utf-8"))
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["platform", "campaign", "target"]


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "livestream-collector.yml").read_text("utf-8")
    )["providers"][0]
    grafana = compose()["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.mark.integration  # runs a tool as a subprocess
def test_compose_file_follows_the_compose_spec() -> None:
    # check-jsonschema ships the compose-spec schema, so this works offline.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_references_files_that_exist_and_checks_every_service() -> None:
    services = compose()["services"]
    assert set(services) == {"collector", "postgres", "prometheus", "grafana"}
    build = services["collector"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
    named = {
        v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")
    }
    assert named == set(compose()["volumes"])
    assert "collector-data:/var/lib/livestream-collector/data" in services["collector"]["volumes"]


@pytest.mark.integration  # runs a tool as a subprocess
def test_compose_prometheus_config_is_the_deploy_one_with_the_compose_target(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    deployed = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    composed = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.compose.yml").read_text(encoding="utf-8"))
    assert composed["scrape_configs"][0].pop("static_configs") == [{"targets": ["collector:9108"]}]
    deployed["scrape_configs"][0].pop("static_configs")
    assert composed == deployed
    result = subprocess.run(
        [promtool, "check", "config", "prometheus.compose.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=DEPLOY / "prometheus",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration  # runs a tool as a subprocess
def test_the_dockerfile_installs_with_the_readme_install_script() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    runs = re.findall(r"^RUN (.+?)(?<!\\)$", dockerfile, re.MULTILINE | re.DOTALL)
    assert len(runs) == 1 and runs[0].startswith("/src/deploy/install.sh /opt/livestream-collector")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme.split("## Installing", 1)[1].split("\n## ", 1)[0]
    assert "sudo deploy/install.sh /opt/livestream-collector" in install
    assert "docker build -f deploy/Dockerfile" in install
    script = DEPLOY / "install.sh"
    assert script.stat().st_mode & 0o111, "install.sh is not executable"
    syntax = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, syntax.stderr
    assert "chromium" in script.read_text(encoding="utf-8")


@pytest.mark.integration  # runs a tool as a subprocess
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    unit = (DEPLOY / "systemd" / "livestream-collector.service").read_text(encoding="utf-8")
    for setting in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/livestream-collector/env",
    ):
        assert f"\n{setting}\n" in unit, setting
    # verify insists that ExecStart exists: point it at this checkout's installed command.
    installed = Path(sys.executable).parent / "collector"
    copy = tmp_path / "livestream-collector.service"
    copy.write_text(unit.replace("/opt/livestream-collector/.venv/bin/collector", str(installed)), "utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout and not result.stderr, result.stdout + result.stderr


def manifests() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(KUBERNETES.glob("*.yaml"))}


# The fields of the Prometheus Operator's ServiceMonitor used here; kubernetes-validate has schemas for
# built-in kinds only.
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def test_kubernetes_manifests_follow_their_schemas() -> None:
    import jsonschema

    version = kubernetes_validate.latest_version()
    kinds = {}
    for name, manifest in manifests().items():
        if name == "kustomization.yaml":
            continue
        kinds[manifest["kind"]] = manifest
        if manifest["kind"] == "ServiceMonitor":
            jsonschema.validate(manifest, SERVICE_MONITOR_SCHEMA)
        else:
            kubernetes_validate.validate(manifest, version, strict=True)
    assert set(kinds) == {"ConfigMap", "Secret", "StatefulSet", "Service", "ServiceMonitor"}


def test_kubernetes_manifests_refer_to_each_other() -> None:
    by_kind = {m["kind"]: m for name, m in manifests().items() if name != "kustomization.yaml"}
    kustomization = manifests()["kustomization.yaml"]
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {
        "kustomization.yaml",
        "secret.example.yaml",
    }
    pod = by_kind["StatefulSet"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    pod_labels = pod["metadata"]["labels"]
    service = by_kind["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        by_kind["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items()
        <= service["metadata"]["labels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in by_kind["ServiceMonitor"]["spec"]["endpoints"]} <= port_names
    assert {p["name"] for p in container["ports"]} >= port_names
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["envFrom"][0]["secretRef"]["name"] == by_kind["Secret"]["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == by_kind["ConfigMap"]["metadata"]["name"]
    claims = {c["metadata"]["name"] for c in by_kind["StatefulSet"]["spec"]["volumeClaimTemplates"]}
    mounted = {m["name"] for m in container["volumeMounts"]}
    assert mounted == set(volumes) | claims
    assert "/etc/livestream-collector/config.toml" in container["args"]


def test_kubernetes_configmap_holds_a_valid_collector_config() -> None:
    import tomllib

    configmap = manifests()["configmap.yaml"]
    secret = manifests()["secret.example.yaml"]
    env = {**secret["stringData"], "COLLECTOR_METRICS_LISTEN": "0.0.0.0:9108"}
    config = build_config(
        tomllib.loads(configmap["data"]["config.toml"]),
        adapters=registered_adapters(),
        source="configmap",
        env=env,
    )
    assert config.collector.metrics_listen.host == "0.0.0.0"
    assert config.collector.database_url.startswith("postgresql+asyncpg://")
    assert config.targets
