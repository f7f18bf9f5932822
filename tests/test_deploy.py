"""deploy/: what can be checked without Docker or a cluster: schemas, cross-references, the files that
are referred to, the single source of install steps, and systemd's own verdict on the unit."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import kubernetes_validate
import pytest
import yaml

from collector.adapters import registered_adapters
from collector.config import Config, build_config
from tests.tools import DEPLOY, ROOT, require_tool

KUBERNETES = DEPLOY / "kubernetes"
# `kubectl apply -k` of each: one collector, and the fleet sharing the targets by lease.
SINGLE, FLEET = KUBERNETES, KUBERNETES / "fleet"
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
    assert set(services) == {"collector", "collector-fleet", "postgres", "prometheus", "grafana"}
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


def test_compose_fleet_profile_runs_three_replicas_of_the_collector_with_the_fleet_config() -> None:
    services = compose()["services"]
    single, fleet = services["collector"], services["collector-fleet"]
    assert fleet["profiles"] == ["fleet"] and "profiles" not in single
    assert fleet["deploy"]["replicas"] == 3
    shared = {k: v for k, v in single.items() if k != "volumes"}
    assert {k: v for k, v in fleet.items() if k not in ("volumes", "profiles", "deploy")} == shared
    # No named volume on the spool: each replica gets the image's anonymous data volume, its own.
    (mount,) = fleet["volumes"]
    source, target, mode = mount.split(":")
    assert (DEPLOY / source).resolve() == FLEET / "config.toml" and mode == "ro"
    assert target == "/etc/livestream-collector/config.toml"
    assert fleet["environment"]["COLLECTOR_DATABASE_URL"].startswith("postgresql+asyncpg://")
    # The compose PostgreSQL is what the fleet shares; nothing waits for the one collector, so the
    # fleet can run with it scaled to 0.
    assert fleet["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert not any("collector" in s.get("depends_on", {}) for s in services.values())
    shutdown = 2 * collector_config(FLEET).collector.shutdown_grace
    assert int(fleet["stop_grace_period"].removesuffix("s")) > shutdown + 5


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


WORKLOADS = {SINGLE: "StatefulSet", FLEET: "Deployment"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def kustomize(directory: Path) -> dict[str, dict]:
    """Kind -> resource, as `kubectl kustomize directory` builds them, for the parts of kustomize these
    kustomizations use (resources, a ConfigMap generator replacing a base's data); the namespace and
    common labels are left out. test_kustomize_builds_the_same checks this against the real thing."""
    kustomization = load(directory / "kustomization.yaml")
    built: dict[str, dict] = {}
    for entry in kustomization["resources"]:
        path = directory / entry
        for resource in kustomize(path).values() if path.is_dir() else [load(path)]:
            assert resource["kind"] not in built, f"{directory}: two of {resource['kind']}"
            built[resource["kind"]] = resource
    for generator in kustomization.get("configMapGenerator", []):
        assert generator["behavior"] == "replace" and generator["options"]["disableNameSuffixHash"]
        assert built["ConfigMap"]["metadata"]["name"] == generator["name"]
        files = {Path(f).name: (directory / f).read_text(encoding="utf-8") for f in generator["files"]}
        built["ConfigMap"] = {**built["ConfigMap"], "data": files}
    return built


def pod_of(directory: Path) -> dict:
    return kustomize(directory)[WORKLOADS[directory]]["spec"]["template"]


def container_of(directory: Path) -> dict:
    (container,) = pod_of(directory)["spec"]["containers"]
    return container


def collector_config(directory: Path) -> Config:
    config = kustomize(directory)["ConfigMap"]["data"]["config.toml"]
    secret = load(KUBERNETES / "secret.example.yaml")["stringData"]
    env = {**secret, **{e["name"]: e["value"] for e in container_of(directory)["env"]}}
    return build_config(tomllib.loads(config), adapters=registered_adapters(), source=str(directory), env=env)


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


@pytest.mark.parametrize(
    ("directory", "kinds"),
    [
        (SINGLE, {"ConfigMap", "StatefulSet", "Service", "ServiceMonitor"}),
        (FLEET, {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"}),
    ],
    ids=["single", "fleet"],
)
def test_kubernetes_manifests_follow_their_schemas(directory: Path, kinds: set[str]) -> None:
    import jsonschema

    version = kubernetes_validate.latest_version()
    built = kustomize(directory)
    assert set(built) == kinds
    for manifest in [*built.values(), load(KUBERNETES / "secret.example.yaml")]:
        if manifest["kind"] == "ServiceMonitor":
            jsonschema.validate(manifest, SERVICE_MONITOR_SCHEMA)
        else:
            kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("directory", [SINGLE, FLEET], ids=["single", "fleet"])
def test_kubernetes_manifests_refer_to_each_other(directory: Path) -> None:
    built = kustomize(directory)
    workload = built[WORKLOADS[directory]]
    pod = workload["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    pod_labels = pod["metadata"]["labels"]
    assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = built["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        built["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items()
        <= service["metadata"]["labels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in built["ServiceMonitor"]["spec"]["endpoints"]} <= port_names
    assert {p["name"] for p in container["ports"]} >= port_names
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    secret = load(KUBERNETES / "secret.example.yaml")
    assert container["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == built["ConfigMap"]["metadata"]["name"]
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert set(mounts) == set(volumes) | claims
    assert mounts["data"] == "/var/lib/livestream-collector/data"  # the spool: WORKDIR/data/spool
    assert "/etc/livestream-collector/config.toml" in container["args"]


@pytest.mark.parametrize("directory", [SINGLE, FLEET], ids=["single", "fleet"])
def test_kubernetes_gives_sigterm_the_time_to_drain_flush_and_hand_over(directory: Path) -> None:
    # SIGTERM: in-flight polls get shutdown_grace, the final flush shutdown_grace again, then a fleet
    # replica releases its leases; a kill before that leaves its targets waiting out the lease.
    grace = pod_of(directory)["spec"]["terminationGracePeriodSeconds"]
    assert grace > 2 * collector_config(directory).collector.shutdown_grace + 5


@pytest.mark.parametrize("directory", [SINGLE, FLEET], ids=["single", "fleet"])
def test_kubernetes_configmap_holds_a_valid_collector_config(directory: Path) -> None:
    config = collector_config(directory)
    assert config.collector.metrics_listen.host == "0.0.0.0"
    assert config.collector.database_url.startswith("postgresql+asyncpg://")
    assert config.targets
    assert config.fleet.enabled is (directory == FLEET)


@pytest.mark.integration  # runs the collector as a subprocess
def test_the_fleet_config_passes_collector_check_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(kustomize(FLEET)["ConfigMap"]["data"]["config.toml"], encoding="utf-8")
    secret = load(KUBERNETES / "secret.example.yaml")["stringData"]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "collector"), "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **secret},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nfleet.enabled = true\n" in result.stdout, result.stdout


def test_the_fleet_is_the_single_instance_with_leases_and_replicas() -> None:
    # The same targets and settings plus [fleet]; the same container; replicas that a drain takes one
    # at a time, each with its own throwaway spool (a spool admits one process).
    single, fleet = collector_config(SINGLE), collector_config(FLEET)
    assert fleet.fleet.lease == 30.0
    assert (fleet.collector, fleet.targets, fleet.platforms) == (
        single.collector,
        single.targets,
        single.platforms,
    )
    assert container_of(FLEET) == container_of(SINGLE)
    built = kustomize(FLEET)
    replicas = built["Deployment"]["spec"]["replicas"]
    assert replicas == 3
    budget = built["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= pod_of(FLEET)["metadata"]["labels"].items()
    assert 0 < budget["maxUnavailable"] < replicas
    assert built["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    volumes = {v["name"]: v for v in pod_of(FLEET)["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]
    annotations = pod_of(FLEET)["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(container_of(FLEET)["ports"][0]["containerPort"])


@pytest.mark.integration  # runs kubectl as a subprocess
@pytest.mark.parametrize("directory", [SINGLE, FLEET], ids=["single", "fleet"])
def test_kustomize_builds_the_same(directory: Path) -> None:
    # kubectl's own kustomize renders what the tests above checked, in the namespace, labelled. It
    # needs kustomize v5 (kubectl 1.27 or later: the machines' kubectl package); Debian's
    # kubernetes-client 1.20 rejects the generator's `options`.
    # Not one of the services CI must have (.ci/run cannot install a recent kubectl from Debian): where
    # the machine has none, the Python rendering above still checks the manifests.
    kubectl = shutil.which("kubectl") or pytest.skip(
        "kubectl not found (Debian's kubernetes-client is too old)"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rendered = {r["kind"]: r for r in yaml.safe_load_all(result.stdout)}
    expected = kustomize(directory)
    assert set(rendered) == set(expected)
    for kind, resource in rendered.items():
        metadata = resource["metadata"]
        assert metadata["namespace"] == "livestream"
        assert metadata["labels"]["app.kubernetes.io/part-of"] == "livestream-collector"
        assert metadata["name"] == expected[kind]["metadata"]["name"]
        assert resource.get("spec") == expected[kind].get("spec"), kind
        assert resource.get("data") == expected[kind].get("data"), kind
