"""Operations against a real broker: lag, replay, reset, the metrics endpoint and tracing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamer.cli.main import main as cli
from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.kafka.clients import produce
from streamer.kafka.groups import GroupAdmin
from streamer.runtime.tracing import HEADER_GETTER, Tracing, extract_context, inject_context
from streamer.runtime.worker import Worker
from streamer.testing import TopologyTestDriver
from streamer.testing.kafka import KafkaCluster
from tests.integration import apps
from tests.integration.support import (
    app_config,
    decode,
    read_to_end,
    start_streamer_run,
    wait_for_count,
    worker_thread,
)

RUNNING_COUNT = "tests.integration.apps:running_count"
REGROUPED_SUM = "tests.integration.apps:regrouped_sum"


@pytest.fixture
def io_topics(new_topic, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    return source, sink


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = cli([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else out


def _produce_timed(
    bootstrap: str, topic: str, records: list[tuple[str, dict[str, Any], int]]
) -> None:
    """Keys ``k<i>`` go to partition ``i % 2``."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value, timestamp in records:
        producer.produce(
            topic,
            json.dumps(value).encode(),
            key.encode(),
            partition=int(key[1:]) % 2,
            timestamp=timestamp,
        )
    assert producer.flush(30) == 0


def _wait_ready(worker: Worker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not worker.ready:
        assert time.monotonic() < deadline, "the worker got no running tasks"
        time.sleep(0.1)


# --- lag ---------------------------------------------------------------------------------


def test_lag_before_during_and_after_processing(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path, capsys
) -> None:
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    produce(bootstrap, source, [(b"a", b'{"n": 1}')] * 30, partition=0)
    produce(bootstrap, source, [(b"b", b'{"n": 1}')] * 20, partition=1)
    config = app_config(bootstrap, tmp_path / "state")
    common = ["--app-id", config.app_id, "--bootstrap-servers", bootstrap]

    # Never ran: nothing to report without the topology; with it, the whole input is lag.
    assert cli(["lag", *common]) == 2
    assert "has no committed offsets and no members" in capsys.readouterr().err
    code, report = _cli_json(capsys, "lag", *common, "--topology", RUNNING_COUNT)
    assert code == 0
    rows = {(p["topic"], p["partition"]): p for p in report["partitions"]}
    assert rows[(source, 0)] == {
        "topic": source,
        "partition": 0,
        "committed": None,
        "end": 30,
        "lag": 30,
        "owner": None,
    }
    assert rows[(source, 1)]["lag"] == 20
    assert report["total_lag"] == 50
    assert report["members"] == []

    with worker_thread(apps.running_count(), config) as worker:
        wait_for_count(bootstrap, sink, 50, timeout=60)
        _wait_ready(worker)
        code, report = _cli_json(capsys, "lag", *common)
        assert code == 0
        assert report["group_state"] == "STABLE"
        owners = {p["owner"]["client_id"] for p in report["partitions"]}
        assert owners == {f"{config.app_id}-0"}
        # The text form names the owner too.
        capsys.readouterr()
        assert cli(["lag", *common]) == 0
        text = capsys.readouterr().out
        assert f"{config.app_id}-0@" in text
        assert re.search(rf"{re.escape(source)}\s+0\s+30\s+30\s+0", text), text

    produce(bootstrap, source, [(b"a", b'{"n": 2}')] * 7, partition=0)
    code, report = _cli_json(capsys, "lag", *common)
    rows = {(p["topic"], p["partition"]): p for p in report["partitions"]}
    assert (rows[(source, 0)]["committed"], rows[(source, 0)]["end"]) == (30, 37)
    assert rows[(source, 0)]["lag"] == 7
    assert rows[(source, 1)]["lag"] == 0
    assert report["total_lag"] == 7
    assert report["group_state"] == "EMPTY"


# --- replay ------------------------------------------------------------------------------


def test_replay_from_a_time_reprocesses_and_rebuilds_state_like_a_fresh_run(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path, capsys
) -> None:
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    now = int(time.time() * 1000)
    old = [(f"k{i % 7}", {"n": i}, now - 600_000 + i) for i in range(60)]
    recent = [(f"k{i % 5}", {"n": 100 + i}, now - 60_000 + i) for i in range(45)]
    _produce_timed(bootstrap, source, old + recent)
    config = app_config(bootstrap, tmp_path / "state")
    with worker_thread(apps.running_count(), config):
        wait_for_count(bootstrap, sink, len(old) + len(recent), timeout=60)
    before = read_to_end(bootstrap, sink)
    assert len(before) == 105
    changelog = f"{config.app_id}-running-count-changelog"

    since = datetime.fromtimestamp((now - 300_000) / 1000, tz=UTC).isoformat()
    common = ["--app-id", config.app_id, "--bootstrap-servers", bootstrap, "--from", since]
    code, plan = _cli_json(capsys, "replay", *common, "--topology", RUNNING_COUNT, "--dry-run")
    assert code == 0
    assert plan["dry_run"] is True
    ends = GroupAdmin(bootstrap).committed_offsets(config.app_id)
    starts = {p: sum(1 for k, _, _ in old if int(k[1:]) % 2 == p) for p in (0, 1)}
    assert {(o["topic"], o["partition"]): (o["current"], o["new"]) for o in plan["offsets"]} == {
        (source, p): (ends[(source, p)], starts[p]) for p in (0, 1)
    }
    assert [c["topic"] for c in plan["changelogs_recreated"]] == [changelog]
    assert plan["changelogs_recreated"][0]["config"] == {"cleanup.policy": "compact"}
    assert plan["state_deleted"] is None
    # A dry run changes nothing.
    assert GroupAdmin(bootstrap).committed_offsets(config.app_id) == ends

    # Local state is kept on purpose: the worker must notice its checkpoints are past the
    # recreated changelogs' ends and rebuild instead of restoring the old state.
    assert cli(["replay", *common, "--yes"]) == 0
    assert "changelog topics to delete and create again" in capsys.readouterr().out
    assert read_to_end(bootstrap, changelog) == []
    with worker_thread(apps.running_count(), config):
        wait_for_count(bootstrap, sink, 105 + len(recent), timeout=60)
    after = read_to_end(bootstrap, sink)
    positions = {p: max(o for q, o, _, _ in before if q == p) for p in (0, 1)}
    replayed = [(k, decode(v)) for p, o, k, v in after if o > positions[p]]
    assert len(replayed) == len(recent)

    with TopologyTestDriver(apps.running_count()) as driver:
        for key, value, timestamp in recent:
            driver.pipe(source, key, value, timestamp=timestamp)
        expected = driver.read_key_values(sink)
    per_key: dict[str, list[Any]] = defaultdict(list)
    for key, value in replayed:
        assert key is not None
        per_key[key.decode()].append(value)
    expected_per_key: dict[str, list[Any]] = defaultdict(list)
    for key, value in expected:
        expected_per_key[key].append(value)
    assert per_key == expected_per_key
    final = {k: decode(v) for _p, _o, k, v in read_to_end(bootstrap, changelog)}
    assert {k.decode(): v for k, v in final.items() if k is not None} == {
        key: values[-1] for key, values in expected_per_key.items()
    }


def test_replay_and_reset_refuse_while_a_worker_runs(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path, capsys
) -> None:
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    produce(bootstrap, source, [(b"a", b'{"n": 1}')] * 5)
    config = app_config(bootstrap, tmp_path / "state")
    common = ["--app-id", config.app_id, "--bootstrap-servers", bootstrap]
    with worker_thread(apps.running_count(), config) as worker:
        wait_for_count(bootstrap, sink, 5, timeout=60)
        _wait_ready(worker)
        committed = GroupAdmin(bootstrap).committed_offsets(config.app_id)
        for args in (
            ["replay", *common, "--from", "earliest", "--yes"],
            ["replay", *common, "--from", "earliest", "--dry-run"],
            ["reset", *common, "--yes", "--state-dir", str(tmp_path / "state")],
        ):
            capsys.readouterr()
            assert cli(args) == 2
            err = capsys.readouterr().err
            assert "active member(s)" in err, err
            assert f"{config.app_id}-0@" in err
            assert "Stop every worker" in err
        assert GroupAdmin(bootstrap).committed_offsets(config.app_id) == committed
        assert f"{config.app_id}-running-count-changelog" in KafkaAdmin(bootstrap).list_topics()
        assert (tmp_path / "state" / config.app_id).exists()


# --- reset -------------------------------------------------------------------------------


def test_reset_removes_offsets_internal_topics_and_state_and_nothing_else(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path, capsys
) -> None:
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    records = [
        (f"c{n}".encode(), json.dumps({"n": n, "group": f"g{n % 3}"}).encode()) for n in range(30)
    ]
    produce(bootstrap, source, records)
    state = tmp_path / "state"
    config = app_config(bootstrap, state)
    app = config.app_id
    with worker_thread(apps.regrouped_sum(), config):
        wait_for_count(bootstrap, sink, 30, timeout=60)
    admin = KafkaAdmin(bootstrap)
    groups = GroupAdmin(bootstrap)
    internal = {f"{app}-by-group-repartition", f"{app}-group-sums-changelog", f"{app}-dlq"}
    assert internal <= admin.list_topics()
    # Another app whose id extends this one: matching by name must leave it alone.
    other = f"{app}-v2"
    admin.create_topics([TopicSpec(f"{other}-sums-changelog")])
    groups.alter_offsets(other, {(source, 0): 0})
    assert (state / app).is_dir()

    common = ["--app-id", app, "--bootstrap-servers", bootstrap, "--state-dir", str(state)]
    code, plan = _cli_json(capsys, "reset", *common, "--dry-run")
    assert code == 0
    assert set(plan["topics_deleted"]) == internal
    assert plan["topics_matched_by_name"] is True
    assert {(o["topic"], o["partition"]) for o in plan["offsets_deleted"]} == {
        (source, 0),
        (source, 1),
        (f"{app}-by-group-repartition", 0),
        (f"{app}-by-group-repartition", 1),
    }
    assert plan["state_deleted"] == str(state / app)
    assert internal <= admin.list_topics()

    # No tty and no --yes: refused, nothing removed.
    assert cli(["reset", *common]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert internal <= admin.list_topics()

    assert cli(["reset", *common, "--yes"]) == 0
    assert "reset done" in capsys.readouterr().out
    topics = admin.list_topics()
    assert not internal & topics
    assert {source, sink, f"{other}-sums-changelog"} <= topics
    assert groups.committed_offsets(app) == {}
    assert not groups.describe_group(app).exists
    assert groups.committed_offsets(other) == {(source, 0): 0}
    assert not (state / app).exists()
    # A second reset finds nothing; the app then starts over from the beginning.
    assert cli(["reset", *common, "--yes"]) == 0
    assert "nothing to reset" in capsys.readouterr().out
    with worker_thread(apps.regrouped_sum(), config):
        wait_for_count(bootstrap, sink, 60, timeout=60)
    counts: dict[bytes | None, list[int]] = defaultdict(list)
    for _p, _o, key, value in read_to_end(bootstrap, sink):
        counts[key].append(decode(value)["count"])
    assert counts == {f"g{g}".encode(): list(range(1, 11)) * 2 for g in range(3)}


# --- metrics -----------------------------------------------------------------------------


def _free_ports(count: int) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise AssertionError("no free port range")


def _scrape(port: int) -> dict[str, float]:
    """Samples as ``name{labels}`` -> value (labels sorted as Prometheus prints them)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if (key == name or key.startswith(name + "{")) and all(w in key for w in wanted)
    )


def test_streamer_run_serves_prometheus_metrics_per_worker_process(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path
) -> None:
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    records = [(f"k{n % 11}".encode(), json.dumps({"n": n}).encode()) for n in range(400)]
    produce(bootstrap, source, records)
    port = _free_ports(2)
    app_id = f"it-metrics-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    log = tmp_path / "run.log"
    group = start_streamer_run(
        _metrics_group_args(app_id, bootstrap, tmp_path, port),
        {apps.INPUT: source, apps.OUTPUT: sink},
        log,
    )
    try:
        wait_for_count(bootstrap, sink, len(records), timeout=120)
        deadline = time.monotonic() + 30
        while True:
            scrapes = [_scrape(port), _scrape(port + 1)]
            consumed = sum(_total(s, "streamer_records_consumed_total") for s in scrapes)
            produced = sum(
                _total(s, "streamer_records_produced_total", topic=sink) for s in scrapes
            )
            lags = [
                [v for k, v in s.items() if k.startswith("streamer_consumer_lag")] for s in scrapes
            ]
            if consumed >= len(records) and produced >= len(records) and lags == [[0.0], [0.0]]:
                break
            assert time.monotonic() < deadline, (consumed, produced, lags, log.read_text()[-3000:])
            time.sleep(0.5)
        for slot, samples in enumerate(scrapes):
            info = (
                f'streamer_worker_info{{app_id="{app_id}",guarantee="exactly-once",slot="{slot}"}}'
            )
            assert samples[info] == 1
            commits = samples["streamer_commits_total"]
            assert samples["streamer_commit_duration_seconds_count"] == commits
            assert 0 <= samples["streamer_commit_duration_seconds_sum"] < 60 * max(commits, 1)
            assert samples['streamer_tasks{state="running"}'] == 1
            assert samples["streamer_transaction_aborts_total"] == 0
            assert samples["process_cpu_seconds_total"] > 0
            assert not any(k.endswith("_created") or "_created{" in k for k in samples)
        # A worker that got its partition after the other one had processed it all commits
        # nothing, so commits are only checked for the group.
        assert sum(s["streamer_commits_total"] for s in scrapes) >= 1
        assert sum(s["streamer_commit_duration_seconds_sum"] for s in scrapes) > 0
        both = {k: v for s in scrapes for k, v in s.items()}
        assert {k for k in both if k.startswith("streamer_consumer_lag_records")} == {
            f'streamer_consumer_lag_records{{partition="{p}",topic="{source}"}}' for p in (0, 1)
        }
        batches = sum(s["streamer_batch_duration_seconds_count"] for s in scrapes)
        assert 1 <= batches <= 400
        assert sum(s["streamer_record_e2e_latency_seconds_count"] for s in scrapes) >= 2
        assert sum(_total(s, "streamer_store_size_bytes") for s in scrapes) > 0
        group.send_signal(signal.SIGTERM)
        assert group.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if group.poll() is None:
            group.kill()
    text = log.read_text()
    assert f"serving Prometheus metrics on 127.0.0.1:{port}" in text
    assert f"serving Prometheus metrics on 127.0.0.1:{port + 1}" in text


def _prometheus_binary() -> str | None:
    return os.environ.get("STREAMER_PROMETHEUS") or shutil.which("prometheus")


def _promql(port: int, expr: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus' HTTP API: the result vector."""
    query = urllib.parse.urlencode({"query": expr})
    url = f"http://127.0.0.1:{port}/api/v1/query?{query}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _by(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(series["metric"].get(label, "") for label in labels): float(series["value"][1])
        for series in result
    }


def _feed(bootstrap: str, topic: str, stop: threading.Event) -> None:
    """About 100 records a second on 11 keys, so both partitions grow, until ``stop``."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    n = 0
    while not stop.is_set():
        for _ in range(10):
            producer.produce(topic, json.dumps({"n": n}).encode(), f"k{n % 11}".encode())
            n += 1
        producer.poll(0)
        stop.wait(0.1)
    assert producer.flush(30) == 0


def test_a_prometheus_server_scrapes_lag_and_throughput_from_a_worker_group(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path
) -> None:
    binary = _prometheus_binary()
    if binary is None:
        pytest.skip(
            "no prometheus binary on PATH (scripts/check installs Debian's 'prometheus' "
            "package when it runs as root with apt-get; STREAMER_PROMETHEUS names another)"
        )
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    port = _free_ports(3)  # port, port + 1: the workers; port + 2: Prometheus
    prom_port = port + 2
    app_id = f"it-prom-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    job = "streamer"
    targets = [f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"]
    config = tmp_path / "prometheus.yml"  # JSON is YAML
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": job,
                        "scrape_timeout": "1s",
                        "static_configs": [{"targets": targets}],
                    }
                ],
            }
        )
    )
    group_log, prom_log = tmp_path / "run.log", tmp_path / "prometheus.log"

    def logs() -> str:
        return (
            f"--- streamer run\n{group_log.read_text()[-2000:]}\n"
            f"--- prometheus\n{prom_log.read_text()[-2000:]}"
        )

    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(bootstrap, source, stop), daemon=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(
            start_streamer_run(
                _metrics_group_args(app_id, bootstrap, tmp_path, port),
                {apps.INPUT: source, apps.OUTPUT: sink},
                group_log,
            )
        )
        started.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                stdout=prom_log.open("wb"),
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        )
        feeder.start()
        deadline = time.monotonic() + 120
        checks: dict[str, Any] = {}
        while True:
            for process in started:
                assert process.poll() is None, f"{process.args[0]} exited\n{logs()}"
            try:
                up = _by(_promql(prom_port, f'up{{job="{job}"}}'), "instance")
                info = _by(_promql(prom_port, "streamer_worker_info"), "instance", "slot")
                lag = _by(
                    _promql(prom_port, f'streamer_consumer_lag_records{{job="{job}"}}'),
                    "topic",
                    "partition",
                )
                throughput = _by(
                    _promql(
                        prom_port,
                        "sum by (instance, topic) "
                        f'(rate(streamer_records_consumed_total{{job="{job}"}}[5s]))',
                    ),
                    "instance",
                    "topic",
                )
            except OSError as error:  # Prometheus not listening yet
                checks = {"error": repr(error)}
            else:
                checks = {"up": up, "info": info, "lag": lag, "throughput": throughput}
                if (
                    up == {(t,): 1.0 for t in targets}
                    and set(lag) == {(source, "0"), (source, "1")}
                    and all(throughput.get((t, source), 0) > 0 for t in targets)
                ):
                    break
            assert time.monotonic() < deadline, f"{checks}\n{logs()}"
            time.sleep(1)
        # Process i serves on --metrics-port + i; Prometheus tells them apart by instance.
        assert info == {(targets[0], "0"): 1.0, (targets[1], "1"): 1.0}
        assert all(value >= 0 for value in lag.values())
        # Once the input stops, the lag Prometheus reads drops to 0 on both partitions.
        stop.set()
        feeder.join(60)
        while True:
            lag = _by(
                _promql(prom_port, f'streamer_consumer_lag_records{{job="{job}"}}'),
                "topic",
                "partition",
            )
            if lag == {(source, "0"): 0.0, (source, "1"): 0.0}:
                break
            assert time.monotonic() < deadline, f"{lag}\n{logs()}"
            time.sleep(1)
        total = _promql(prom_port, f'sum(streamer_records_consumed_total{{job="{job}"}})')
        assert float(total[0]["value"][1]) > 0
        group = started[0]
        group.send_signal(signal.SIGTERM)
        assert group.wait(60) == 0, logs()
    finally:
        stop.set()
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- tracing -----------------------------------------------------------------------------


def test_a_trace_continues_from_the_producer_through_the_worker_to_the_next_consumer(
    kafka: KafkaCluster, io_topics: tuple[str, str], tmp_path: Path
) -> None:
    source, sink = io_topics
    bootstrap = kafka.bootstrap_servers
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    # Upstream: a producer span whose context travels in the record's headers.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    with tracer.start_as_current_span("send orders", kind=trace.SpanKind.PRODUCER) as upstream:
        headers = inject_context([("origin", b"test")])
        producer.produce(source, b'{"n": 1}', b"card-1", headers=list(headers))
    producer.produce(source, b'{"n": 2}', b"card-2")  # untraced: continues the batch span
    assert producer.flush(30) == 0
    upstream_context = upstream.get_span_context()

    config = app_config(bootstrap, tmp_path / "state")
    tracing = Tracing(provider, group=config.app_id)
    worker = Worker(apps.running_count(), config, tracing=tracing)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for_count(bootstrap, sink, 2, timeout=60)
    finally:
        worker.request_stop()
        thread.join(60)

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"downstream-{config.app_id}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(sink, p, 0) for p in (0, 1)])
    received: dict[bytes, list[tuple[str, bytes | None]]] = {}
    deadline = time.monotonic() + 30
    while len(received) < 2 and time.monotonic() < deadline:
        for message in consumer.consume(10, 0.5):
            if message.error() is None:
                received[message.key()] = list(message.headers() or [])
    consumer.close()
    traced_headers = received[b"card-1"]
    assert ("origin", b"test") in traced_headers
    assert sum(1 for k, _ in traced_headers if k == "traceparent") == 1

    # Downstream: a consumer continues the trace from the output record's headers.
    parent = extract_context(traced_headers)
    assert parent is not None
    with tracer.start_as_current_span("handle alert", context=parent) as downstream:
        pass

    spans = {s.name: s for s in exporter.get_finished_spans()}
    process = spans[f"process {source}"]
    assert process.context.trace_id == upstream_context.trace_id
    assert process.parent is not None
    assert process.parent.span_id == upstream_context.span_id
    assert process.kind is trace.SpanKind.CONSUMER
    assert process.attributes["messaging.destination.name"] == source
    assert process.attributes["messaging.consumer.group.name"] == config.app_id
    assert downstream.context.trace_id == upstream_context.trace_id
    assert downstream.parent is not None
    assert downstream.parent.span_id == process.context.span_id
    batch = [s for s in exporter.get_finished_spans() if s.name == "streamer process"]
    assert batch
    assert any(link.context.span_id in {b.context.span_id for b in batch} for link in process.links)
    # The untraced record's output carries the batch span's context instead.
    untraced = HEADER_GETTER.get(received[b"card-2"], "traceparent")
    assert untraced is not None
    assert untraced[0].split("-")[1] in {format(b.context.trace_id, "032x") for b in batch}
    # Changelog records carry no trace headers.
    changelog = f"{config.app_id}-running-count-changelog"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"cl-{config.app_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(changelog, p, 0) for p in (0, 1)])
    seen = 0
    deadline = time.monotonic() + 20
    while seen < 2 and time.monotonic() < deadline:
        for message in consumer.consume(10, 0.5):
            if message.error() is None:
                seen += 1
                assert not any(k == "traceparent" for k, _ in message.headers() or [])
    consumer.close()
    assert seen == 2


def _metrics_group_args(app_id: str, bootstrap: str, tmp_path: Path, port: int) -> list[str]:
    """``streamer run`` arguments: RUNNING_COUNT as 2 processes serving metrics from ``port``."""
    return [
        RUNNING_COUNT,
        "--app-id",
        app_id,
        "--bootstrap-servers",
        bootstrap,
        "--processes",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
        "--metrics-port",
        str(port),
        "--metrics-address",
        "127.0.0.1",
    ]
