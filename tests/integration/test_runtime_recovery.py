"""Crash recovery restores only the changelog tail, on a real broker with a SIGKILLed worker."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from streamer.kafka.clients import produce
from streamer.runtime.config import Guarantee
from streamer.state import RocksDBStore
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


def _produce(bootstrap: str, topic: str, start: int, stop: int, keys: int) -> None:
    produce(
        bootstrap,
        topic,
        ((f"k{n % keys}".encode(), json.dumps({"n": n}).encode()) for n in range(start, stop)),
    )


def _recorded_positions(state_dir: Path, app_id: str) -> dict[int, int | None]:
    """Per partition, the changelog position the crashed worker's store recorded."""
    positions: dict[int, int | None] = {}
    for task_dir in sorted((state_dir / app_id).glob("0_*")):
        store = RocksDBStore(task_dir / STORE, STORE)
        try:
            positions[int(task_dir.name.split("_")[1])] = store.changelog_position()
        finally:
            store.close()
    return positions


@pytest.mark.parametrize(
    ("guarantee", "keys"),
    # Exactly-once with a store of 200,000 keys: the changelog is large, the tail small.
    [(Guarantee.EXACTLY_ONCE, 200_000), (Guarantee.AT_LEAST_ONCE, 50)],
)
def test_after_sigkill_a_worker_restores_only_the_tail_past_its_recorded_position(
    kafka: KafkaCluster, new_topic, tmp_path: Path, guarantee: Guarantee, keys: int
) -> None:
    bootstrap = kafka.bootstrap_servers
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    state = tmp_path / "state"
    config = app_config(bootstrap, state, guarantee=guarantee)
    changelog = f"{config.app_id}-{STORE}-changelog"
    worker = WorkerProcess(
        "tests.integration.apps:running_count", config, {INPUT: source, OUTPUT: sink}, tmp_path
    )
    try:
        worker.start()
        # Two commits seen by the group: the first one's writes, with their position, are
        # surely applied (a commit's writes are applied before the loop polls again).
        first = max(keys, 3000)
        _produce(bootstrap, source, 0, first, keys)
        wait_for_group_caught_up(bootstrap, config.app_id, source, timeout=120)
        _produce(bootstrap, source, first, first + 2000, keys)
        wait_for_group_caught_up(bootstrap, config.app_id, source, timeout=90)
        worker.kill()

        if guarantee is Guarantee.EXACTLY_ONCE:  # at-least-once checkpoints every 30 s
            assert not list(state.glob(f"{config.app_id}/*/.checkpoint")), "no clean close"
        positions = _recorded_positions(state, config.app_id)
        assert set(positions) == {0, 1}
        # Positions are read at most once a second, so a partition whose first records came
        # after the first read may have none yet; the first read recorded at least one.
        assert any(p is not None and p > 0 for p in positions.values()), positions
        records = read_to_end(bootstrap, changelog)
        tail = [o for p, o, _k, _v in records if o >= (positions[p] or 0)]
        assert len(tail) < len(records), "the whole changelog would be restored"

        worker.start()
        total = first + 3000
        _produce(bootstrap, source, first + 2000, total, keys)
        wait_for_count(bootstrap, sink, total, timeout=120)
        assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        worker.ensure_dead()

    restart_log = (tmp_path / f"worker-{config.instance}-2.log").read_text(errors="replace")
    restored = [int(n) for n in re.findall(rf"restored {STORE}: (\d+) records", restart_log)]
    assert sum(restored) == len(tail), restart_log[-3000:]
    # The restore metric's figure, logged when the task's restore ends, says the same.
    done = [int(n) for n in re.findall(r"restore done: (\d+) records", restart_log)]
    assert sum(done) == len(tail), done
    if keys > 1000:  # a large store: its tail (about a second of writes) is a part of it
        assert len(tail) < len(records) // 2, (len(tail), len(records))
    assert "wiping" not in restart_log
    final: dict[str, int] = {}
    for _p, _o, key, value in read_to_end(bootstrap, changelog):
        assert key is not None
        final[key.decode()] = decode(value)["count"]
    expected = Counter(f"k{n % keys}" for n in range(total))
    if guarantee is Guarantee.EXACTLY_ONCE:
        assert final == expected
    else:  # at-least-once may count records processed again after the kill
        assert final.keys() == expected.keys()
        assert all(count >= expected[key] for key, count in final.items()), final
