"""The deployment files under docker/ are consistent with the code they deploy.

Docker is not available here, so nothing is built or started: the files are parsed, the
worker commands are parsed by the real ``streamer`` argument parser, every path they name
exists, Prometheus scrapes what the workers serve, and every metric the dashboard queries is
one the workers export.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamer.cli.main import build_parser
from streamer.runtime.prometheus import PrometheusMetrics

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _load(DOCKER / "compose.yaml")
    assert isinstance(data, dict)
    return data


def _run_args(command: str, env: dict[str, str]) -> Any:
    """Parse a worker's shell command (``exec streamer run ...``) like the CLI would."""
    for name, value in env.items():
        command = command.replace(f"${{{name}}}", value)
    tokens = shlex.split(command)
    assert tokens[:2] == ["exec", "streamer"], tokens
    return build_parser().parse_args(tokens[2:])


def test_the_worker_image_installs_streamer_and_ships_the_topologies() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "COPY streamer ./streamer" in text
    assert "COPY topologies ./topologies" in text
    assert 'ENTRYPOINT ["streamer"]' in text
    assert "EXPOSE 9400" in text
    for copied in re.findall(r"^COPY (.+) \./", text, re.M):
        for name in copied.split():
            assert (ROOT / name).exists(), name


def test_compose_runs_a_three_broker_kraft_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    brokers = [services[f"kafka-{n}"] for n in (1, 2, 3)]
    voters = set()
    for n, broker in enumerate(brokers, start=1):
        env = broker["environment"]
        assert broker["image"].startswith("apache/kafka:")
        assert env["KAFKA_NODE_ID"] == str(n)
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://kafka-{n}:9092"
        voters.add(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
        assert env["CLUSTER_ID"] == brokers[0]["environment"]["CLUSTER_ID"]
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}


def test_compose_workers_run_the_fraud_topology_with_metrics(compose: dict[str, Any]) -> None:
    services = compose["services"]
    workers = {name: s for name, s in services.items() if name.startswith("worker-")}
    assert len(workers) == 3
    prefixes = set()
    for worker in workers.values():
        assert worker["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / worker["build"]["context"] / worker["build"]["dockerfile"]).exists()
        args = _run_args(worker["command"][0], worker["environment"])
        assert args.command == "run"
        assert (ROOT / args.topology).is_file()
        assert args.topology == "topologies/fraud.py"
        assert args.metrics_port == 9400
        assert args.replication_factor == 3
        assert args.processes == 1
        assert args.state_dir == Path("/var/lib/streamer")
        assert any(v.endswith(":/var/lib/streamer") for v in worker["volumes"])
        prefixes.add(args.instance_prefix)
    assert len(prefixes) == 3, "each worker needs its own slot"
    created = re.findall(r"^create (\S+)", services["topics"]["command"][0], re.M)
    assert set(created) >= {"transactions", "alerts", "blocked-merchants", "card-limits"}
    generator = services["generator"]
    assert generator["entrypoint"] == ["python", "-m", "streamer.demo.generator"]
    assert (ROOT / "streamer" / "demo" / "generator.py").is_file()


def test_compose_mounts_only_files_that_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), source


def test_prometheus_scrapes_every_worker(compose: dict[str, Any]) -> None:
    config = _load(DOCKER / "prometheus" / "prometheus.yml")
    targets = {
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    }
    workers = {name for name in compose["services"] if name.startswith("worker-")}
    assert targets == {f"{name}:9400" for name in workers}


def _exported_metric_names() -> set[str]:
    names = set()
    for family in PrometheusMetrics().registry.collect():
        for sample in family.samples:
            names.add(sample.name)
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
    return names


def test_the_dashboard_has_the_panels_and_queries_exported_metrics() -> None:
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "streamer.json").read_text())
    titles = [p["title"].lower() for p in dashboard["panels"]]
    for wanted in ("throughput", "p99", "lag per partition", "restore", "dead-letter", "abort"):
        assert any(wanted in t for t in titles), wanted
    datasource = _load(DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    uid = datasource["datasources"][0]["uid"]
    exported = _exported_metric_names()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
        assert panel["targets"]
        for target in panel["targets"]:
            used = set(re.findall(r"\b(streamer_[a-z0-9_]+)", target["expr"]))
            assert used, target["expr"]
            assert used <= exported, used - exported
    provider = _load(DOCKER / "grafana" / "provisioning" / "dashboards" / "streamer.yaml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_kubernetes_statefulset_gives_each_worker_a_stable_slot_and_state_volume() -> None:
    k8s = DOCKER / "k8s"
    kustomization = _load(k8s / "kustomization.yaml")
    docs = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((k8s / name).read_text()):
            docs[doc["kind"]] = doc
    statefulset, service = docs["StatefulSet"], docs["Service"]
    config = docs["ConfigMap"]["data"]
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"] == labels
    assert service["spec"]["selector"] == labels
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    values = {**config, "POD_NAME": "fraud-worker-0"}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in container["args"]]
    args = build_parser().parse_args(argv)
    assert args.instance_prefix == "fraud-worker-0-"
    assert (ROOT / args.topology).is_file()
    assert args.metrics_port == 9400
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    (mount,) = container["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    assert Path(mount["mountPath"]) == args.state_dir
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == args.metrics_port
    assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels


def test_the_deployment_readme_says_ci_does_not_run_it() -> None:
    text = (DOCKER / "README.md").read_text()
    assert "not exercised in CI" in text
    assert "docker compose -f docker/compose.yaml up --build" in text
