"""The Kafka Streams engine of the benchmark suite builds, runs the workloads, and is timed.

The Java application (``benchmarks/kstreams/``) is built with Maven and javac on first use
and cached (``benchmarks.kstreams_engine``). Each run here is a real JVM against the test
broker, on a small input whose output can be counted exactly.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from benchmarks import kstreams_engine
from benchmarks.common import CLIENT_QUIET, PARTITIONS, preproduce
from benchmarks.latency import run_latency
from benchmarks.suite import ALOS, EOS, Suite, parser
from streamer.testing.kafka.backends import KafkaCluster
from streamer.testing.kafka.jars import kafka_version

pytestmark = pytest.mark.kafka

RECORDS = 3000


@pytest.fixture(scope="module")
def suite(kafka: KafkaCluster) -> Iterator[Suite]:
    options = parser().parse_args(
        ["--no-quix", "--no-report", "--latency-seconds=2", "--latency-warm-up=0.5"]
    )
    suite = Suite(kafka.bootstrap_servers, options)
    yield suite
    shutil.rmtree(suite.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def source(suite: Suite) -> str:
    topic = suite.topic("ks-smoke-in")
    preproduce(suite.bootstrap, topic, RECORDS).flush(10)
    return topic


def _run(suite: Suite, engine: str, workload: str, guarantee: str, source: str) -> tuple[Any, str]:
    sink = suite.topic("ks-smoke-out")
    spec = {
        "role": "throughput",
        "engine": engine,
        "workload": workload,
        "guarantee": guarantee,
        "bootstrap": suite.bootstrap,
        "source": source,
        "sink": sink,
        "app_id": f"ks-smoke-{uuid.uuid4().hex[:8]}",
        "records": RECORDS,
        "state_dir": str(suite.tmp / uuid.uuid4().hex[:8]),
        "warm_up": RECORDS // 5,
    }
    return suite.runner(spec, timeout=300), sink


def _committed(bootstrap: str, topic: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every committed record of ``topic``, read to the end of each partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ks-smoke-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            **CLIENT_QUIET,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out: list[tuple[bytes, dict[str, Any]]] = []
    pending = set(range(PARTITIONS))
    deadline = time.monotonic() + 60
    try:
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    pending.discard(message.partition() or 0)
                    continue
                out.append((message.key() or b"", orjson.loads(message.value() or b"null")))
    finally:
        consumer.close()
    assert not pending, f"partitions {sorted(pending)} not read to their end"
    return out


def test_build_is_cached(suite: Suite) -> None:
    assert suite.kstreams_app is not None
    started = time.monotonic()
    assert kstreams_engine.build() == suite.kstreams_app
    assert time.monotonic() - started < 5
    assert (suite.kstreams_app / "lib" / f"kafka-streams-{kafka_version()}.jar").exists()


def test_stateless_transform_writes_every_record_flagged(suite: Suite, source: str) -> None:
    result, sink = _run(suite, "kstreams", "stateless", ALOS, source)
    assert result["records"] == RECORDS
    assert result["records_per_s"] > 10
    assert 0 < result["steady_cpu_s"] <= result["cpu_s"] < result["cpu_total_s"]
    assert result["steady_records"] == RECORDS - RECORDS // 5
    assert 50 < result["peak_rss_mib"] < 4096
    output = _committed(suite.bootstrap, sink)
    assert len(output) == RECORDS
    assert sorted(value["id"] for _, value in output) == list(range(RECORDS))
    assert all(value["flagged"] == (value["amount"] > 400) for _, value in output)


def _last_per_key(output: list[tuple[bytes, dict[str, Any]]], *fields: str) -> dict[Any, Any]:
    last: dict[Any, Any] = {}
    for record_key, value in output:
        last[(record_key, *(value[f] for f in fields))] = value
    return last


def test_exactly_once_aggregate_forwards_every_update_without_cache(
    suite: Suite, source: str
) -> None:
    result, sink = _run(suite, "kstreams", "aggregate", EOS, source)
    assert result["records"] == RECORDS
    output = _committed(suite.bootstrap, sink)
    assert len(output) == RECORDS
    assert sum(totals["count"] for totals in _last_per_key(output).values()) == RECORDS


def test_default_cache_flushes_the_latest_totals_on_close(suite: Suite, source: str) -> None:
    _, sink = _run(suite, "kstreams-cached", "aggregate", ALOS, source)
    output = _committed(suite.bootstrap, sink)
    last = _last_per_key(output)
    assert len(output) <= RECORDS
    assert sum(totals["count"] for totals in last.values()) == RECORDS


def test_windowed_count_emits_every_update(suite: Suite, source: str) -> None:
    _, sink = _run(suite, "kstreams", "windowed-update", EOS, source)
    output = _committed(suite.bootstrap, sink)
    assert len(output) == RECORDS
    last = _last_per_key(output, "start")
    assert sum(window["value"] for window in last.values()) == RECORDS
    assert all(w["end"] - w["start"] == 60_000 for w in last.values())


def test_latency_run_serves_until_stopped(suite: Suite) -> None:
    result = run_latency(suite, "kstreams", "aggregate", ALOS, None, 500)
    assert result["records"] > 0
    assert 0 <= result["p50_ms"] <= result["p99_ms"] < 60_000
    assert result["cpu_s"] > 0
