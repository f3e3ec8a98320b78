"""`streamer run` worker groups: repartitioning across processes, shutdown, give-up on poison,
static membership, and a rebalance in the middle of a restore."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.kafka.clients import produce
from streamer.runtime.restore import StateRestorer
from streamer.serde import JsonSerde, StringSerde
from streamer.state import KeyValueStore, RocksDBStore
from streamer.testing.kafka import KafkaCluster
from tests.integration import apps
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    start_streamer_run,
    wait_for_count,
    worker_thread,
)


def test_streamer_run_repartitions_across_processes_and_stops_cleanly(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink = new_topic(partitions=4), new_topic(partitions=4)
    bootstrap = kafka.bootstrap_servers
    records = [
        (f"card-{n % 37}".encode(), json.dumps({"n": n, "group": f"g{n % 5}"}).encode())
        for n in range(4000)
    ]
    produce(bootstrap, source, records)
    log = tmp_path / "run.log"
    app_id = f"it-run-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    group = start_streamer_run(
        [
            "tests.integration.apps:regrouped_sum",
            "--app-id",
            app_id,
            "--bootstrap-servers",
            bootstrap,
            "--processes",
            "2",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        {apps.INPUT: source, apps.OUTPUT: sink},
        log,
    )
    try:
        wait_for_count(bootstrap, sink, len(records), timeout=120)
        group.send_signal(signal.SIGTERM)
        assert group.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if group.poll() is None:
            group.kill()
    text = log.read_text()
    assert "[worker 0]" in text
    assert "[worker 1]" in text
    assert len(re.findall(r"worker \d stopped", text)) == 2
    outputs = read_to_end(bootstrap, sink)
    assert len(outputs) == len(records)
    per_group: dict[str, list[dict[str, int]]] = defaultdict(list)
    for _p, _o, key, value in outputs:
        assert key is not None
        per_group[key.decode()].append(decode(value))
    for group_name, values in per_group.items():
        members = [n for n in range(4000) if f"g{n % 5}" == group_name]
        assert [v["count"] for v in values] == list(range(1, len(members) + 1))
        assert values[-1]["total"] == sum(members)
    repartition = read_to_end(bootstrap, f"{app_id}-by-group-repartition")
    assert len(repartition) == len(records)


def test_a_poison_record_under_fail_stops_the_group_after_bounded_restarts(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink = new_topic(partitions=1), new_topic(partitions=1)
    bootstrap = kafka.bootstrap_servers
    produce(bootstrap, source, [(b"k", b'{"n": 1}'), (b"k", b"\xff not json")])
    log = tmp_path / "run.log"
    group = start_streamer_run(
        [
            "tests.integration.apps:running_count",
            "--app-id",
            f"it-poison-{os.getpid()}",
            "--bootstrap-servers",
            bootstrap,
            "--state-dir",
            str(tmp_path / "state"),
            "--error-policy",
            "fail",
            "--max-restarts",
            "2",
        ],
        {apps.INPUT: source, apps.OUTPUT: sink},
        log,
    )
    try:
        code = group.wait(120)
    finally:
        if group.poll() is None:
            group.kill()
    text = log.read_text()
    assert code == 1, text[-3000:]
    assert f"cannot decode record at {source}[0]@1" in text
    assert "keeps failing; stopping the group" in text
    assert len(re.findall(r"worker 0 failed", text)) == 2


def test_a_static_member_restarted_gracefully_gets_its_partitions_back(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink = new_topic(partitions=4), new_topic(partitions=4)
    env = {apps.INPUT: source, apps.OUTPUT: sink}
    config = app_config(kafka.bootstrap_servers, tmp_path / "state", static_membership=True)
    workers = [
        WorkerProcess(
            "tests.integration.apps:running_count",
            config.__class__(**{**config.__dict__, "instance": i}),
            env,
            tmp_path,
        )
        for i in range(2)
    ]

    def assignment(worker: WorkerProcess) -> set[str]:
        owned: set[str] = set()
        for line in worker.log_text().splitlines():
            if "assigned" in line:
                owned |= set(re.findall(r"[\w.-]+\[\d+\]", line.split("):", 1)[-1]))
            if "revoked" in line:
                owned -= set(re.findall(r"[\w.-]+\[\d+\]", line.split(":", 3)[-1]))
        return owned

    try:
        workers[0].start().wait_until_processing()
        workers[1].start().wait_until_processing()
        deadline = time.monotonic() + 60
        while len(assignment(workers[0])) + len(assignment(workers[1])) != 4 or not all(
            assignment(w) for w in workers
        ):
            assert time.monotonic() < deadline, "the group did not settle"
            time.sleep(0.2)
        before = assignment(workers[0])
        revocations_of_1 = workers[1].log_text().count("revoked")
        assert workers[0].stop() == 0
        workers[0].start().wait_until_processing(timeout=30)
        produce(
            kafka.bootstrap_servers, source, [(f"k{i}".encode(), b'{"n": 0}') for i in range(40)]
        )
        wait_for_count(kafka.bootstrap_servers, sink, 40, timeout=60)
        current_log = (tmp_path / f"worker-0-{workers[0].starts}.log").read_text()
        regained = set(
            re.findall(r"[\w.-]+\[\d+\]", current_log.split("assigned", 1)[1].split("\n")[0])
        )
        assert regained == before
        assert workers[1].log_text().count("revoked") == revocations_of_1
        for worker in workers:
            assert worker.stop() == 0
    finally:
        for worker in workers:
            worker.ensure_dead()


def test_a_rebalance_during_restore_hands_the_store_over_cleanly(
    kafka: KafkaCluster, new_topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    bootstrap = kafka.bootstrap_servers
    config = app_config(bootstrap, tmp_path / "state")
    changelog = f"{config.app_id}-running-count-changelog"
    KafkaAdmin(bootstrap).create_topics(
        [TopicSpec(changelog, partitions=2, config={"cleanup.policy": "compact"})]
    )
    # A long changelog: many updates of 2,000 keys, as a busy app would leave it.
    per_partition = 150_000
    expected: dict[str, int] = {}
    for partition in range(2):
        rows = []
        for i in range(per_partition):
            key = f"p{partition}-k{i % 1000}"
            rows.append((key.encode(), json.dumps({"n": i, "count": i}).encode()))
            expected[key] = i
        produce(bootstrap, changelog, rows, config={"linger.ms": 50}, partition=partition)

    # Restores pause after their first 10,000 records until the rebalance has cancelled
    # one, however fast they are (both workers run in this process).
    rebalanced = threading.Event()
    step = StateRestorer.step

    def held_step(self: StateRestorer, *args: object, **kwargs: object) -> int:
        if not rebalanced.is_set() and self.total_restored >= 10_000:
            rebalanced.wait(0.05)
            return 0
        return step(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StateRestorer, "step", held_step)
    topology = apps.running_count()
    with worker_thread(topology, config) as first:
        deadline = time.monotonic() + 30
        while not first.snapshot.restoring:
            assert time.monotonic() < deadline, "the first worker never started restoring"
            time.sleep(0.01)
        with worker_thread(
            topology, config.__class__(**{**config.__dict__, "instance": 1})
        ) as second:
            deadline = time.monotonic() + 90
            while not first.snapshot.restores_cancelled:
                assert time.monotonic() < deadline, "the rebalance did not interrupt the restore"
                time.sleep(0.05)
            rebalanced.set()
            while not (first.ready and second.ready):
                assert time.monotonic() < deadline, "restore did not finish after the rebalance"
                time.sleep(0.05)
            assert first.snapshot.restores_cancelled >= 1, (
                "the rebalance did not interrupt the restore"
            )
            assert second.snapshot.restored > 0
    stores: dict[str, int] = {}
    for task_dir in (tmp_path / "state" / config.app_id).glob("0_*"):
        db = RocksDBStore(task_dir / "running-count", "running-count")
        try:
            stores.update(
                {k: v["count"] for k, v in KeyValueStore(db, StringSerde(), JsonSerde()).items()}
            )
        finally:
            db.close()
    assert stores == expected
