"""A count with a TTL, restored from its changelog by a fresh worker after a SIGKILL: expired
keys stay expired (purged or not when the first worker died), and live keys keep expiring."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from streamer.kafka.clients import produce
from streamer.partitioner import partition_for_key
from streamer.processors.ttl import PURGE_PER_RECORD
from streamer.testing.kafka import KafkaCluster
from tests.integration.support import (
    WorkerProcess,
    app_config,
    read_to_end,
    wait_for_count,
    wait_for_group_caught_up,
)
from tests.integration.ttl_apps import INPUT, OUTPUT, TTL_MS

PARTITIONS = 2
OLD = [f"a{i:02d}" for i in range(60)]  # written at 0: expired by the clock at 12 s
YOUNG = [f"b{i:02d}" for i in range(20)]  # written at 5 s: live when the first worker dies
APP = "tests.integration.ttl_apps:expiring_count"


def _produce(bootstrap: str, topic: str, ts: int, keys: list[str]) -> None:
    produce(bootstrap, topic, [(k.encode(), b"1") for k in keys], timestamp=ts)


def _clock(bootstrap: str, topic: str, ts: int) -> None:
    """One record per partition, keyed by the partition, to move every task's stream time."""
    for p in range(PARTITIONS):
        produce(bootstrap, topic, [(f"clock-{p}".encode(), b"1")], partition=p, timestamp=ts)


def _outputs(bootstrap: str, topic: str) -> dict[str, list[int | None]]:
    per_key: dict[str, list[int | None]] = defaultdict(list)
    for _partition, _offset, key, value in read_to_end(bootstrap, topic):
        assert key is not None
        count = None if value is None else int.from_bytes(value, "big", signed=True)
        per_key[key.decode()].append(count)
    return per_key


def _purged_first(keys: list[str]) -> set[str]:
    """The keys the clock record purges in each partition: the first PURGE_PER_RECORD by
    (last update, encoded key); all of ``keys`` were last updated together."""
    by_partition: dict[int, list[str]] = defaultdict(list)
    for key in keys:
        by_partition[partition_for_key(key.encode(), PARTITIONS)].append(key)
    return {k for ks in by_partition.values() for k in sorted(ks)[:PURGE_PER_RECORD]}


def test_expiry_survives_a_restore_from_the_changelog(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    assert TTL_MS == 10_000, "the timeline below is written for a 10 s TTL"
    bootstrap = kafka.bootstrap_servers
    source, sink = new_topic(partitions=PARTITIONS), new_topic(partitions=PARTITIONS)
    env = {INPUT: source, OUTPUT: sink}
    base = int(time.time() * 1000) - 120_000  # recent: within the topics' time retention
    config = app_config(bootstrap, tmp_path / "state-a")

    _produce(bootstrap, source, base, OLD)
    _produce(bootstrap, source, base + 5_000, YOUNG)
    _clock(bootstrap, source, base + 12_000)  # the OLD keys expire at 10 s
    first = WorkerProcess(APP, config, env, tmp_path)
    try:
        first.start()
        wait_for_group_caught_up(bootstrap, config.app_id, source, timeout=120)
        first.kill()  # its state stays behind, in a directory the next worker does not use
    finally:
        first.ensure_dead()
    before = _outputs(bootstrap, sink)
    purged = {k for k in OLD if before[k] == [1, None]}
    assert purged == _purged_first(OLD), "the clock record purges at most 16 keys per task"
    assert len(purged) < len(OLD)  # the others were expired, and unpurged, at the kill
    assert all(before[k] == [1] for k in OLD if k not in purged)
    assert all(before[k] == [1] for k in YOUNG)

    restarted = config.__class__(**{**config.__dict__, "state_dir": tmp_path / "state-b"})
    second = WorkerProcess(APP, restarted, env, tmp_path)
    try:
        second.start()
        _produce(bootstrap, source, base + 13_000, OLD)  # must count from 1 again
        _produce(bootstrap, source, base + 14_000, YOUNG[:1])  # live: counts on, to 2
        _clock(bootstrap, source, base + 16_000)  # the other YOUNG keys expire at 15 s
        expected_records = sum(len(v) for v in before.values()) + 2 * len(OLD) - len(purged)
        expected_records += 1 + (len(YOUNG) - 1) + PARTITIONS
        wait_for_count(bootstrap, sink, expected_records, timeout=120)
        wait_for_group_caught_up(bootstrap, config.app_id, source, timeout=120)
        assert second.stop() == 0, second.log_text()[-3000:]
    finally:
        second.ensure_dead()
    assert "restore done" in second.log_text()

    after = _outputs(bootstrap, sink)
    assert {k: after[k] for k in OLD} == {k: [1, None, 1] for k in OLD}
    assert after[YOUNG[0]] == [1, 2]
    assert {k: after[k] for k in YOUNG[1:]} == {k: [1, None] for k in YOUNG[1:]}
    assert {k: after[k] for k in after if k.startswith("clock")} == {
        f"clock-{p}": [1, 2] for p in range(PARTITIONS)
    }
    assert sum(len(v) for v in after.values()) == expected_records
