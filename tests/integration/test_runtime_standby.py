"""Standby replicas on a real broker: a group of three hosts, one SIGKILLed; its tasks move
to hosts that hold warm copies of their stores and restore only a tail."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from streamer.kafka.clients import produce
from streamer.kafka.groups import GroupAdmin
from streamer.testing.kafka import KafkaCluster
from tests.integration.apps import INPUT, OUTPUT
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    wait_for_count,
    wait_for_group_caught_up,
)

STORE = "running-count"
KEYS = 30_000
AGAIN = 3_000
PARTITIONS = 6


def _produce(bootstrap: str, topic: str, keys: range) -> None:
    produce(bootstrap, topic, ((f"k{n}".encode(), json.dumps({"n": n}).encode()) for n in keys))


def test_a_killed_hosts_tasks_restore_only_a_tail_from_standby_copies(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    source, sink = new_topic(partitions=PARTITIONS), new_topic(partitions=PARTITIONS)
    base = app_config(
        bootstrap,
        tmp_path,
        standby_replicas=2,
        # The killed worker's open transaction blocks read_committed readers until the
        # broker aborts it: let that happen soon after its session expires.
        producer_config={"transaction.timeout.ms": 10_000},
    )
    workers = [
        WorkerProcess(
            "tests.integration.apps:running_count",
            dataclasses.replace(
                base, state_dir=tmp_path / f"host-{n}", instance=n, instance_prefix=f"h{n}-"
            ),
            {INPUT: source, OUTPUT: sink},
            tmp_path,
        )
        for n in range(3)
    ]
    changelog = f"{base.app_id}-{STORE}-changelog"
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_until_processing()
        _produce(bootstrap, source, range(KEYS))
        wait_for_count(bootstrap, sink, KEYS, timeout=120)
        wait_for_group_caught_up(bootstrap, base.app_id, source, timeout=60)

        victim = workers[1]
        members = GroupAdmin(bootstrap).describe_group(base.app_id).members
        owned = next(m for m in members if m.client_id == f"{base.app_id}-h1-1").partitions
        moved = sorted(f"0_{p}" for _t, p in owned)
        assert moved, "the victim owned no task"
        before = [len(worker.log_text()) for worker in workers]
        victim.kill()
        _produce(bootstrap, source, range(AGAIN))
        wait_for_count(bootstrap, sink, KEYS + AGAIN, timeout=120)
        survivors = [workers[0], workers[2]]
        for worker in survivors:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    sizes: dict[int, int] = {}
    for partition, _o, _k, _v in read_to_end(bootstrap, changelog):
        sizes[partition] = sizes.get(partition, 0) + 1
    # What the survivors did after the kill: each moved task starts from its warm copy (taken
    # over open, or reopened from the files it left) and restores only a tail.
    logs = "\n".join(workers[n].log_text()[before[n] :] for n in (0, 2))
    for task in moved:
        size = sizes[int(task.split("_")[1])]
        starts = [
            int(n)
            for n in re.findall(
                rf"task {task}: {STORE} taken over from its standby copy at offset (\d+)", logs
            )
            + re.findall(rf"task {task}: restoring {STORE} from \S+ from offset (\d+)", logs)
        ]
        assert starts, f"task {task} did not start on a survivor:\n{logs[-4000:]}"
        assert min(starts) > size // 2, (task, starts, size)
        assert "from the beginning" not in logs
        restored = sum(
            int(n) for n in re.findall(rf"task {task}: restored {STORE}: (\d+) records", logs)
        )
        assert restored < size // 10, f"task {task} restored {restored} of {size} records"

    outputs: dict[str, list[int]] = {}
    for _p, _o, key, value in read_to_end(bootstrap, sink):
        assert key is not None
        outputs.setdefault(key.decode(), []).append(decode(value)["count"])
    assert len(outputs) == KEYS
    assert all(counts == ([1, 2] if int(k[1:]) < AGAIN else [1]) for k, counts in outputs.items())
