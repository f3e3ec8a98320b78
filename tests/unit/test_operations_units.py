"""Operations pieces that need no broker: topic discovery, time parsing, lag reports, the
metrics object, trace propagation and the command lines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from streamer import StreamsBuilder
from streamer.cli.main import build_parser
from streamer.cli.main import main as cli
from streamer.errors import ConfigError
from streamer.kafka.groups import GroupMember
from streamer.ops.apps import discover_topics, topics_from_topology
from streamer.ops.lag import LagReport, PartitionLag
from streamer.ops.replay import parse_start
from streamer.runtime.metrics import (
    NoopMetrics,
    TaskRestore,
    TaskSnapshot,
    WorkerInfo,
    WorkerSnapshot,
)
from streamer.runtime.prometheus import PrometheusMetrics
from streamer.runtime.tracing import (
    Tracing,
    extract_context,
    inject_context,
    tracing_enabled_by_env,
    tracing_from_env,
)

ROOT = Path(__file__).resolve().parents[2]


# --- topics and times ----------------------------------------------------------------------


def _regrouping_topology() -> Any:
    builder = StreamsBuilder()
    (
        builder.stream("orders")
        .group_by(lambda k, v: v["shop"], name="by-shop")
        .count(name="shop-counts")
        .to_stream()
        .to("counts")
    )
    return builder.build()


def test_topics_from_a_topology_are_exact() -> None:
    app = topics_from_topology(_regrouping_topology(), "shop")
    assert app.sources == ("orders",)
    assert app.repartition == ("shop-by-shop-repartition",)
    assert app.changelogs == ("shop-shop-counts-changelog",)
    assert app.dlq == ("shop-dlq",)
    assert app.exact


def test_topics_found_by_name_leave_out_apps_whose_id_extends_this_one() -> None:
    existing = {
        "orders",
        "counts",
        "shop-by-shop-repartition",
        "shop-shop-counts-changelog",
        "shop-dlq",
        "shop-v2-shop-counts-changelog",
        "shop-v2-dlq",
        "shop-notes",
        "shopping-x-changelog",
    }
    app = discover_topics(
        "shop",
        existing,
        ["orders", "shop-by-shop-repartition"],
        ["shop", "shop-v2", "other"],
    )
    assert app.sources == ("orders",)
    assert app.repartition == ("shop-by-shop-repartition",)
    assert app.changelogs == ("shop-shop-counts-changelog",)
    assert app.dlq == ("shop-dlq",)
    assert not app.exact


def test_replay_start_times() -> None:
    assert parse_start("earliest") == "earliest"
    assert parse_start("2024-06-01T12:00:00Z") == 1_717_243_200_000
    assert parse_start("2024-06-01T14:00:00.250+02:00") == 1_717_243_200_250
    with pytest.raises(ConfigError, match="no UTC offset"):
        parse_start("2024-06-01T12:00:00")
    with pytest.raises(ConfigError, match="neither 'earliest' nor an ISO-8601 time"):
        parse_start("yesterday")


def test_lag_report_text_and_json() -> None:
    member = GroupMember("m-1", "shop-0", "/10.1.2.3", None, (("orders", 0),))
    report = LagReport(
        "shop",
        "STABLE",
        (member,),
        (
            PartitionLag("orders", 0, 1200, 1500, 300, member),
            PartitionLag("orders", 1, None, 40, 40, None),
        ),
        1_717_243_200_000,
    )
    text = report.format()
    assert "total lag 340" in text
    assert "orders          0       1200  1500  300  shop-0@10.1.2.3" in text
    assert "orders          1          -    40   40  -" in text
    assert "orders: lag 340" in text
    data = report.to_json()
    assert data["total_lag"] == 340
    assert data["partitions"][0]["owner"]["host"] == "10.1.2.3"
    assert data["partitions"][1]["committed"] is None
    assert data["time"] == "2024-06-01T12:00:00+00:00"
    json.dumps(data)


# --- metrics -------------------------------------------------------------------------------


@dataclass
class _Message:
    _topic: str
    _partition: int
    _offset: int
    _timestamp: int
    _headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return b"k"

    def value(self) -> bytes | None:
        return b"v"

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def headers(self) -> Any:
        return self._headers

    def error(self) -> None:
        return None


_INFO = WorkerInfo("shop", "0", "exactly-once")


def _snapshot(*, aborts: int, skipped: int, assigned: bool = True) -> WorkerSnapshot:
    """What PrometheusMetrics reads: a published worker snapshot."""
    restore = TaskRestore(restored=120, remaining=0, seconds=1.5, done=True)
    tasks = (
        (TaskSnapshot("0_0", restoring=False, inputs=(("orders", 0),), restore=restore),)
        if assigned
        else ()
    )
    return WorkerSnapshot(
        _INFO,
        aborts=aborts,
        rebalances=3,
        restore_remaining=25,
        tasks=tasks,
        task_counters={"0_0": {"records-skipped": skipped, "late": 1}},
        standby_lags={"0_1": 7} if assigned else {},
    )


def _samples(metrics: PrometheusMetrics) -> dict[str, float]:
    out = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_prometheus_metrics_count_batches_commits_and_worker_state() -> None:
    import time

    metrics = PrometheusMetrics(refresh_interval=0.0)
    metrics.started(_INFO)
    now = int(time.time() * 1000)
    batch = [_Message("orders", 0, n, now - 2000) for n in range(3)]
    batch += [_Message("orders", 1, 0, now - 500)]
    metrics.batch(batch, 0.004)
    metrics.commit(0.02)
    metrics.tick(_snapshot(aborts=2, skipped=4))
    consumer_stats = metrics.client_config("consumer")["stats_cb"]
    consumer_stats(
        json.dumps(
            {
                "topics": {
                    "orders": {
                        "partitions": {
                            "0": {"ls_offset": 50, "app_offset": 45},
                            "1": {"ls_offset": 9, "app_offset": 1},  # not assigned
                            "-1": {"ls_offset": -1001, "app_offset": -1001},
                        }
                    }
                }
            }
        )
    )
    producer_stats = metrics.client_config("producer")["stats_cb"]
    for sent in (10, 17):
        producer_stats(
            json.dumps({"topics": {"counts": {"partitions": {"0": {"txmsgs": sent}, "-1": {}}}}})
        )
    s = _samples(metrics)
    assert s['streamer_records_consumed_total{partition="0",topic="orders"}'] == 3
    assert s['streamer_records_consumed_total{partition="1",topic="orders"}'] == 1
    assert s["streamer_batch_duration_seconds_count"] == 1
    assert s["streamer_record_e2e_latency_seconds_count"] == 2  # one per partition
    assert 2.4 < s["streamer_record_e2e_latency_seconds_sum"] < 10
    assert s["streamer_commits_total"] == 1
    assert s["streamer_commit_duration_seconds_sum"] == pytest.approx(0.02)
    assert s["streamer_transaction_aborts_total"] == 2
    assert s["streamer_rebalances_total"] == 3
    assert s["streamer_restore_remaining_records"] == 25
    assert s['streamer_task_restore_records{task="0_0"}'] == 120
    assert s['streamer_task_restore_seconds{task="0_0"}'] == 1.5
    assert s['streamer_task_restore_remaining_records{task="0_0"}'] == 0
    assert s['streamer_task_standby_lag_records{task="0_1"}'] == 7
    assert s['streamer_records_skipped_total{task="0_0"}'] == 4
    assert s['streamer_processor_events_total{event="late",task="0_0"}'] == 1
    assert s['streamer_consumer_lag_records{partition="0",topic="orders"}'] == 5
    assert not any(k.startswith('streamer_consumer_lag_records{partition="1"') for k in s)
    assert s['streamer_records_produced_total{partition="0",topic="counts"}'] == 17
    assert s['streamer_worker_info{app_id="shop",guarantee="exactly-once",slot="0"}'] == 1
    # Counters follow the worker's totals without counting twice.
    metrics.tick(_snapshot(aborts=3, skipped=5))
    s = _samples(metrics)
    assert s["streamer_transaction_aborts_total"] == 3
    assert s['streamer_records_skipped_total{task="0_0"}'] == 5
    # A partition no longer assigned loses its lag series.
    metrics.tick(_snapshot(aborts=3, skipped=5, assigned=False))
    consumer_stats(json.dumps({"topics": {}}))
    assert not any(k.startswith("streamer_consumer_lag_records{") for k in _samples(metrics))
    assert not any(k.startswith("streamer_task_restore") for k in _samples(metrics))
    assert not any(k.startswith("streamer_task_standby") for k in _samples(metrics))


def test_no_metrics_by_default() -> None:
    noop = NoopMetrics()
    assert noop.client_config("consumer") == {}
    assert noop.batch([], 0.1) is None


# --- tracing -------------------------------------------------------------------------------


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_trace_context_goes_into_headers_replacing_inherited_ones() -> None:
    provider, _ = _provider()
    tracer = provider.get_tracer("test")
    assert inject_context([("a", b"1")]) == [("a", b"1")]  # no span: unchanged
    with tracer.start_as_current_span("first") as first:
        inherited = inject_context([("a", b"1")])
    with tracer.start_as_current_span("second") as second:
        headers = inject_context(inherited)
    assert [k for k, _ in headers] == ["a", "traceparent"]
    context = extract_context(headers)
    assert context is not None
    span_context = trace.get_current_span(context).get_span_context()
    assert span_context.span_id == second.get_span_context().span_id
    assert span_context.span_id != first.get_span_context().span_id
    assert extract_context([("a", b"1")]) is None
    assert extract_context([("traceparent", b"garbage")]) is None


def test_process_batch_gives_traced_records_their_own_span_and_keeps_order() -> None:
    provider, exporter = _provider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("upstream") as upstream:
        traced = list(inject_context([]))
    messages: list[Any] = [
        _Message("orders", 0, 0, 1),
        _Message("orders", 0, 1, 1),
        _Message("orders", 0, 2, 1, traced),
        _Message("orders", 0, 3, 1),
    ]
    runs: list[list[int]] = []
    parents: list[int] = []

    def process(run: list[Any]) -> None:
        runs.append([m.offset() for m in run])
        parents.append(trace.get_current_span().get_span_context().span_id)

    Tracing(provider, group="shop").process_batch(messages, process)
    assert runs == [[0, 1], [2], [3]]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    batch, record = spans["streamer process"], spans["process orders"]
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 4
    assert record.parent is not None
    assert record.parent.span_id == upstream.get_span_context().span_id
    assert record.context.trace_id == upstream.get_span_context().trace_id
    assert parents == [batch.context.span_id, record.context.span_id, batch.context.span_id]


def test_tracing_sink_skips_changelogs() -> None:
    provider, _ = _provider()
    sent: list[tuple[str, Any]] = []

    class Sink:
        def send(self, topic: str, key: Any, value: Any, **kwargs: Any) -> None:
            sent.append((topic, kwargs["headers"]))

    sink = Tracing(provider, group="g").wrap_sink(Sink(), skip_topics={"app-s-changelog"})
    with provider.get_tracer("t").start_as_current_span("s"):
        sink.send("out", b"k", b"v", timestamp=1, headers=[("x", b"1")])
        sink.send("app-s-changelog", b"k", b"v", timestamp=1, partition=0)
    assert [k for k, _ in sent[0][1]] == ["x", "traceparent"]
    assert sent[1] == ("app-s-changelog", ())


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, False),
    ],
)
def test_tracing_turns_on_only_when_otel_variables_ask(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled_by_env() is enabled
    tracing = tracing_from_env("shop", instance_id="shop-0", group="shop", set_global=False)
    assert (tracing is not None) is enabled
    if tracing is not None:
        tracing.shutdown()


def test_tracing_from_env_names_the_service_and_refuses_grpc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ConfigError, match="http/protobuf"):
        tracing_from_env("shop", instance_id="shop-0", group="shop", set_global=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracing = tracing_from_env("shop", instance_id="shop-0", group="shop", set_global=False)
    assert tracing is not None
    resource = tracing.tracer.resource  # type: ignore[attr-defined]
    assert resource.attributes["service.name"] == "shop"
    assert resource.attributes["service.instance.id"] == "shop-0"
    tracing._shutdown = None  # nothing was recorded; do not wait for the endpoint


# --- command lines -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lag", "replay", "reset", "describe", "run"])
def test_every_operations_command_has_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: streamer " + command in capsys.readouterr().out


def test_describe_prints_a_topology_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ROOT / "topologies" / "card_velocity.py")
    assert cli(["describe", path, "--app-id", "fraud"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Topologies:")
    assert "Sub-topology: 0" in text
    assert cli(["describe", path, "--app-id", "fraud", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subtopologies"][0]["steps"]
    assert all(s["changelog"].startswith("fraud-") for s in data["stores"] if s["changelog"])


def test_describe_and_replay_report_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(["describe", "no/such/file.py"]) == 2
    assert capsys.readouterr().err.strip() == (
        "streamer: error: topology file 'no/such/file.py' does not exist"
    )
    args = ["replay", "--app-id", "a", "--bootstrap-servers", "127.0.0.1:9", "--from", "soon"]
    assert cli(args) == 2
    assert "neither 'earliest' nor an ISO-8601 time" in capsys.readouterr().err


def test_run_rejects_a_metrics_port_without_room(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ROOT / "topologies" / "card_velocity.py")
    args = ["run", path, "--app-id", "a", "--bootstrap-servers", "127.0.0.1:9"]
    assert cli([*args, "--processes", "2", "--metrics-port", "65535"]) == 2
    assert "--metrics-port" in capsys.readouterr().err
