"""Restore from changelogs, rebalances, windowed results and poison records, on a real broker."""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamer.errors import ProcessingError, SerializationError
from streamer.kafka.clients import produce
from streamer.runtime.config import ErrorPolicy, Guarantee
from streamer.serde import JsonSerde, StringSerde
from streamer.state import Checkpoint, KeyValueStore, RocksDBStore
from streamer.testing import TopologyTestDriver
from streamer.testing.kafka import KafkaCluster
from tests.integration import apps
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    run_worker_until_failure,
    wait_for_count,
    worker_thread,
)


def _records(start: int, stop: int, keys: int = 50) -> list[tuple[bytes, bytes]]:
    return [(f"k{n % keys}".encode(), json.dumps({"n": n}).encode()) for n in range(start, stop)]


def _store_contents(state_dir: Path, app_id: str, store: str) -> dict[str, int]:
    """Read every task's RocksDB store of ``store`` directly: key -> count."""
    result: dict[str, int] = {}
    for task_dir in sorted((state_dir / app_id).glob("0_*")):
        db = RocksDBStore(task_dir / store, store)
        try:
            typed = KeyValueStore(db, StringSerde(), JsonSerde())
            result.update({k: v["count"] for k, v in typed.items()})
        finally:
            db.close()
    return result


def test_state_is_rebuilt_from_the_changelog_and_a_checkpoint_limits_restore_to_the_tail(
    kafka: KafkaCluster, new_topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    topology = apps.running_count()
    bootstrap = kafka.bootstrap_servers
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    config = app_config(bootstrap, first_dir)

    produce(bootstrap, source, _records(0, 3000))
    with worker_thread(topology, config):
        wait_for_count(bootstrap, sink, 3000, timeout=60)
    reference = {f"k{k}": 60 for k in range(50)}
    assert _store_contents(first_dir, config.app_id, "running-count") == reference

    # 1. Local state deleted: everything is rebuilt from the changelog.
    shutil.rmtree(first_dir / config.app_id)
    with worker_thread(topology, config) as worker:
        deadline = time.monotonic() + 60
        while not worker.ready:
            assert time.monotonic() < deadline, "restore did not finish"
            time.sleep(0.05)
        full_restore = worker.snapshot.restored
    assert full_restore >= len(reference), "the changelog was not replayed"
    assert _store_contents(first_dir, config.app_id, "running-count") == reference

    # 2. Another instance (elsewhere) moves the state on while this one is down...
    produce(bootstrap, source, _records(3000, 3500))
    with worker_thread(topology, config.__class__(**{**config.__dict__, "state_dir": second_dir})):
        wait_for_count(bootstrap, sink, 3500, timeout=60)
    # ... and this one, with its clean-close checkpoint, replays only the changelog tail.
    checkpoints = {
        int(task_dir.name.split("_")[1]): Checkpoint.load(task_dir / ".checkpoint")["running-count"]
        for task_dir in (first_dir / config.app_id).glob("0_*")
    }
    assert len(checkpoints) == 2, "a clean close leaves a checkpoint per task"
    changelog = read_to_end(bootstrap, f"{config.app_id}-running-count-changelog")
    tail = [offset for p, offset, _k, _v in changelog if offset >= checkpoints[p]]
    with worker_thread(topology, config) as worker:
        deadline = time.monotonic() + 60
        while not worker.ready:
            assert time.monotonic() < deadline, "restore did not finish"
            time.sleep(0.05)
        tail_restore = worker.snapshot.restored
    assert 0 < tail_restore == len(tail) < len(changelog)
    assert _store_contents(first_dir, config.app_id, "running-count") == {
        f"k{k}": 70 for k in range(50)
    }


@pytest.mark.parametrize("protocol", ["consumer", "classic"])
def test_group_grows_to_three_and_shrinks_to_one_with_exact_results(
    kafka: KafkaCluster, new_topic, tmp_path: Path, protocol: str
) -> None:
    """Under KIP-848 (range assignor) and the classic protocol (cooperative-sticky)."""
    source, sink = new_topic(partitions=6), new_topic(partitions=6)
    env = {apps.INPUT: source, apps.OUTPUT: sink}
    bootstrap = kafka.bootstrap_servers
    config = app_config(bootstrap, tmp_path / "state")
    workers = [
        WorkerProcess(
            "tests.integration.apps:running_count",
            config.__class__(**{**config.__dict__, "instance": i}),
            env,
            tmp_path,
            group_protocol=protocol,
        )
        for i in range(3)
    ]
    total = 0

    def feed(count: int) -> None:
        nonlocal total
        produce(bootstrap, source, _records(total, total + count, keys=60))
        total += count

    try:
        workers[0].start()
        workers[0].wait_until_processing()
        feed(5000)
        workers[1].start()
        workers[2].start()
        feed(5000)
        workers[1].wait_until_processing()
        workers[2].wait_until_processing()
        feed(5000)
        assert workers[2].stop() == 0
        feed(5000)
        assert workers[1].stop() == 0
        feed(5000)
        wait_for_count(bootstrap, sink, total, timeout=120)
        assert workers[0].stop() == 0
    finally:
        for worker in workers:
            worker.ensure_dead()
    outputs = read_to_end(bootstrap, sink)
    assert len(outputs) == total
    counts: dict[str, list[int]] = defaultdict(list)
    for _p, _o, key, value in outputs:
        assert key is not None
        counts[key.decode()].append(decode(value)["count"])
    for key, values in counts.items():
        assert values == list(range(1, len(values) + 1)), key
    assert sum(len(v) for v in counts.values()) == total


def test_windowed_count_matches_the_test_driver(
    kafka: KafkaCluster, new_topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sink = new_topic(partitions=3), new_topic(partitions=3)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    topology = apps.windowed_count()
    bootstrap = kafka.bootstrap_servers
    # Event times: three keys, 20 s of data, out of order within each second, then a late
    # record per key and a final record far ahead to close every window. Times are recent:
    # the broker's retention would delete records stamped in 1970 before they are read.
    base = int(time.time()) * 1000 - 3_600_000
    events: list[tuple[str, int]] = []
    for second in range(20):
        for key in ("a", "b", "c"):
            for offset in (700, 100, 400)[: 1 + (second + len(key)) % 3]:
                events.append((key, base + second * 1000 + offset))
    late = [("a", base + 500), ("b", base + 600), ("c", base + 700)]
    events += late  # their windows closed long ago
    events += [(key, base + 60_000) for key in ("a", "b", "c")]

    with TopologyTestDriver(topology, app_id="ref") as driver:
        for key, ts in events:
            driver.pipe(source, key, {"ts": ts}, timestamp=ts)
        expected = sorted(
            (r.key, r.value["start"], r.value["count"]) for r in driver.read_output(sink)
        )
    assert expected, "the reference produced nothing"

    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, ts in events:
        producer.produce(
            source, key=key.encode(), value=json.dumps({"ts": ts}).encode(), timestamp=ts
        )
    producer.flush(30)
    config = app_config(bootstrap, tmp_path / "state")
    with worker_thread(topology, config):
        wait_for_count(bootstrap, sink, len(expected), timeout=60)
    actual = sorted(
        (key.decode(), decode(value)["start"], decode(value)["count"])
        for _p, _o, key, value in read_to_end(bootstrap, sink)
        if key is not None
    )
    assert actual == expected


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return tp.offset
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("policy", "guarantee"),
    [
        (ErrorPolicy.DEAD_LETTER, Guarantee.EXACTLY_ONCE),
        (ErrorPolicy.SKIP, Guarantee.EXACTLY_ONCE),
        (ErrorPolicy.FAIL, Guarantee.EXACTLY_ONCE),
        (ErrorPolicy.FAIL, Guarantee.AT_LEAST_ONCE),
    ],
)
def test_poison_records_follow_the_error_policy(
    kafka: KafkaCluster,
    new_topic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: ErrorPolicy,
    guarantee: Guarantee,
) -> None:
    source, sink = new_topic(partitions=1), new_topic(partitions=1)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    bootstrap = kafka.bootstrap_servers
    records = _records(0, 10, keys=2)
    records.insert(4, (b"k0", b"{not json"))
    records.insert(8, (b"k1", json.dumps({"n": 99, "boom": True}).encode()))
    produce(bootstrap, source, records)
    config = app_config(bootstrap, tmp_path / "state", error_policy=policy, guarantee=guarantee)
    topology = apps.fragile_count()
    if policy is ErrorPolicy.FAIL:
        failure = run_worker_until_failure(topology, config, timeout=60)
        assert isinstance(failure, SerializationError)
        assert f"{source}[0]@4" in str(failure)
        # Nothing is committed past records whose state was dropped with the failure.
        assert _committed(bootstrap, config.app_id, source) < 0
        if guarantee is Guarantee.EXACTLY_ONCE:
            assert read_to_end(bootstrap, sink) == []
        changelog = f"{config.app_id}-running-count-changelog"
        assert read_to_end(bootstrap, changelog) == []
        return
    with worker_thread(topology, config) as worker:
        wait_for_count(bootstrap, sink, 10, timeout=60)
    assert worker.snapshot.records_in == 12  # the snapshot published when it stopped
    outputs = [decode(v)["n"] for _p, _o, _k, v in read_to_end(bootstrap, sink)]
    assert sorted(outputs) == list(range(10))
    assert _committed(bootstrap, config.app_id, source) == 12
    dlq = read_to_end(bootstrap, config.dlq_topic) if policy is ErrorPolicy.DEAD_LETTER else []
    if policy is ErrorPolicy.DEAD_LETTER:
        assert [(k, v) for _p, _o, k, v in dlq] == [records[4], records[8]]
        headers = _dlq_headers(bootstrap, config.dlq_topic)
        assert headers[0]["streamer.source.offset"] == b"4"
        assert headers[0]["streamer.source.topic"] == source.encode()
        assert b"invalid JSON" in headers[0]["streamer.error"]
        assert headers[1]["streamer.error.type"] == ProcessingError.__name__.encode()
        assert b"boom requested" in headers[1]["streamer.error"]


def _dlq_headers(bootstrap: str, topic: str) -> list[dict[str, bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "dlq-reader", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[dict[str, bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                break
            out.append({k: v for k, v in (message.headers() or [])})
    finally:
        consumer.close()
    return out


def test_stream_time_survives_a_restart_so_closed_windows_stay_closed(
    kafka: KafkaCluster, new_topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sink = new_topic(partitions=1), new_topic(partitions=1)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    bootstrap = kafka.bootstrap_servers
    topology = apps.windowed_count()
    config = app_config(bootstrap, tmp_path / "state")
    base = int(time.time()) * 1000 - 3_600_000

    def send(*timestamps: int) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap})
        for ts in timestamps:
            producer.produce(source, key=b"a", value=json.dumps({"ts": ts}).encode(), timestamp=ts)
        producer.flush(30)

    send(base + 500, base + 5_000)  # the second record closes window [base, base + 1 s)
    with worker_thread(topology, config):
        wait_for_count(bootstrap, sink, 1, timeout=60)
    # After the restart, a record for the closed window is late: it must not reopen it.
    send(base + 700, base + 10_000)
    with worker_thread(topology, config) as worker:
        wait_for_count(bootstrap, sink, 2, timeout=60)
        deadline = time.monotonic() + 30
        while worker.snapshot.counter("late-records") < 1:
            assert time.monotonic() < deadline, "the late record was not counted"
            time.sleep(0.05)
    windows = [
        (decode(value)["start"] - base, decode(value)["count"])
        for _p, _o, _key, value in read_to_end(bootstrap, sink)
    ]
    assert windows == [(0, 1), (5_000, 1)]
