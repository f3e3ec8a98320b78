"""A topic extractor and custom partitioners on a real broker, under exactly-once with a worker
SIGKILLed mid-run: each record lands once, in the topic and partition they say, or in the
dead-letter topic when its extractor picks an undeclared topic. And a declared topic that does
not exist stops the app at start."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streamer.errors import ConfigError
from streamer.kafka.clients import produce
from streamer.kafka.tail import last_records
from streamer.runtime.config import ErrorPolicy, Guarantee
from streamer.testing.kafka import KafkaCluster
from streamer.testing.kafka.pytest_plugin import TopicFactory
from tests.integration.dynamic_topic_apps import (
    INPUT,
    OUTPUT_A,
    OUTPUT_B,
    routed_running_count,
)
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    run_worker_until_failure,
    wait_for_group_caught_up,
)

RECORDS = 12_000
KEYS = 60
INPUT_PARTITIONS, A_PARTITIONS, B_PARTITIONS = 4, 3, 5


def route_of(n: int) -> str:
    """Every 7th record picks an undeclared topic; the others alternate between a and b."""
    if n % 7 == 0:
        return "x"
    return "a" if n % 2 else "b"


def produce_steadily(bootstrap: str, topic: str, seconds: float) -> threading.Thread:
    def run() -> None:
        slices = 12
        per_slice = RECORDS // slices
        for s in range(slices):
            numbers = range(s * per_slice, (s + 1) * per_slice)
            produce(
                bootstrap,
                topic,
                (
                    (f"k{n % KEYS}".encode(), json.dumps({"n": n, "to": route_of(n)}).encode())
                    for n in numbers
                ),
            )
            time.sleep(seconds / slices)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def expected_counts() -> dict[int, int]:
    """Per record number, its running count among its key's records."""
    seen: dict[int, int] = defaultdict(int)
    counts = {}
    for n in range(RECORDS):
        seen[n % KEYS] += 1
        counts[n] = seen[n % KEYS]
    return counts


@pytest.mark.kafka
def test_extracted_topics_and_partitions_exactly_once_across_a_kill(
    kafka: KafkaCluster, new_topic: TopicFactory, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    source = new_topic(partitions=INPUT_PARTITIONS)
    out_a, out_b = new_topic(partitions=A_PARTITIONS), new_topic(partitions=B_PARTITIONS)
    env = {INPUT: source, OUTPUT_A: out_a, OUTPUT_B: out_b}
    config = app_config(
        bootstrap,
        tmp_path / "state",
        guarantee=Guarantee.EXACTLY_ONCE,
        error_policy=ErrorPolicy.DEAD_LETTER,
    )
    spec = "tests.integration.dynamic_topic_apps:routed_running_count"
    workers = [
        WorkerProcess(spec, config.__class__(**{**config.__dict__, "instance": i}), env, tmp_path)
        for i in range(2)
    ]
    producer = produce_steadily(bootstrap, source, seconds=8)
    try:
        for worker in workers:
            worker.start()
        victim = workers[1]
        for _ in range(2):
            victim.wait_until_processing()
            time.sleep(1.5)  # let it work mid-transaction before the kill
            victim.kill()
            victim.start()
        producer.join(120)
        assert not producer.is_alive(), "producing the input took over 120 s"
        repartition = f"{config.app_id}-by-key-number-repartition"
        for topic in (source, repartition):
            wait_for_group_caught_up(bootstrap, config.app_id, topic, timeout=180)
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    counts = expected_counts()
    for topic, route, partitions in ((out_a, "a", A_PARTITIONS), (out_b, "b", B_PARTITIONS)):
        landed = read_to_end(bootstrap, topic)
        values = [decode(value) for _p, _o, _k, value in landed]
        numbers = [v["n"] for v in values]
        assert sorted(numbers) == [n for n in range(RECORDS) if route_of(n) == route]
        for (partition, _offset, key, _value), value in zip(landed, values, strict=True):
            n = value["n"]
            assert key == f"k{n % KEYS}".encode()
            assert partition == n % partitions, f"record {n} in {topic}[{partition}]"
            assert value["task"] == (n % KEYS) % INPUT_PARTITIONS, f"record {n}: wrong task"
            assert value["count"] == counts[n], f"record {n}: count {value['count']}"
    dead = last_records(bootstrap, config.dlq_topic, RECORDS, timeout=60)
    dead_numbers = sorted(_dead_number(record.value) for record in dead)
    assert dead_numbers == [n for n in range(RECORDS) if route_of(n) == "x"]
    for record in dead:
        headers = dict(record.headers)
        assert headers["streamer.error.step"] == b"route"
        assert b"not one of its declared topics" in (headers["streamer.error"] or b"")
        assert headers["streamer.source.topic"] == repartition.encode()


def _dead_number(value: bytes | None) -> int:
    payload: Any = decode(value)
    return int(payload["n"])


@pytest.mark.kafka
def test_a_declared_topic_that_does_not_exist_stops_the_app_at_start(
    kafka: KafkaCluster, new_topic: TopicFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out_a = new_topic(partitions=2), new_topic(partitions=2)
    missing = f"{out_a}-never-created"
    monkeypatch.setenv(INPUT, source)
    monkeypatch.setenv(OUTPUT_A, out_a)
    monkeypatch.setenv(OUTPUT_B, missing)
    config = app_config(kafka.bootstrap_servers, tmp_path / "state")
    failure = run_worker_until_failure(routed_running_count(), config, timeout=60)
    assert isinstance(failure, ConfigError), failure
    assert f"output topics {missing} do not exist" in str(failure)
