"""Table operators with internal topics under exactly-once, with a worker SIGKILLed mid-run.

Re-grouping a table: the aggregates and the number of outputs must be exactly those of a
model computed from the input, with no change lost or applied twice across the kills.
Suppress: each output partition must be exactly the sequence a model of the buffer emits
for its input partition, so a buffered update is neither lost nor emitted twice when its
task restarts from the buffer's changelog.

Each worker has a state directory of its own, and the killed one loses its directory, so
stores are rebuilt from their changelogs, not found on disk.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from streamer.kafka.clients import produce
from streamer.partitioner import partition_for_key
from streamer.runtime.config import AppConfig, Guarantee
from streamer.testing.kafka import KafkaCluster
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    wait_for_group_caught_up,
)
from tests.integration.table_op_apps import (
    INPUT,
    OUTPUT,
    SUPPRESS_LIMIT_MS,
    SUPPRESS_MAX_RECORDS,
)
from tests.unit.dsl.suppress_model import BufferModel

UPDATES = 20_000
ROWS = 300
GROUPS = 20

Update = tuple[str, dict[str, Any] | None]


def _table_updates(seed: int) -> list[Update]:
    """Row updates that often move a row to another group, and sometimes delete it."""
    rng = random.Random(seed)
    updates: list[Update] = []
    for _ in range(UPDATES):
        row = f"row-{rng.randrange(ROWS)}"
        if rng.random() < 0.1:
            updates.append((row, None))
        else:
            updates.append(
                (row, {"group": f"g{rng.randrange(GROUPS)}", "amount": rng.randint(1, 100)})
            )
    return updates


def _model(updates: list[Update]) -> tuple[int, dict[str, dict[str, int]]]:
    """The number of change records the updates make, and each group's final totals."""
    prior: dict[str, tuple[str, int]] = {}
    changes = 0
    ever: set[str] = set()
    for row, value in updates:
        old = prior.pop(row, None)
        new = None if value is None else (value["group"], value["amount"])
        if new is not None:
            prior[row] = new
            ever.add(new[0])
        if old is not None and new is not None and old[0] == new[0]:
            changes += 1
        else:
            changes += (old is not None) + (new is not None)
    totals = {group: {"rows": 0, "sum": 0} for group in ever}
    for group, amount in prior.values():
        totals[group] = {"rows": totals[group]["rows"] + 1, "sum": totals[group]["sum"] + amount}
    return changes, totals


def _slice_timestamp(index: int) -> int:
    """The timestamp of the records of slice ``index`` (one second apart)."""
    return 1_700_000_000_000 + 1_000 * index


def _slices(updates: list[Update]) -> list[list[Update]]:
    size = len(updates) // 20
    return [updates[start : start + size] for start in range(0, len(updates), size)]


def _produce_in_slices(
    bootstrap: str, topic: str, updates: list[Update], seconds: float
) -> threading.Thread:
    """Produce ``updates`` in 20 slices spread over ``seconds``, each slice's records with
    that slice's timestamp."""

    def run() -> None:
        for index, batch in enumerate(_slices(updates)):
            produce(
                bootstrap,
                topic,
                (
                    (row.encode(), None if value is None else json.dumps(value).encode())
                    for row, value in batch
                ),
                timestamp=_slice_timestamp(index),
            )
            time.sleep(seconds / 20)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _workers(
    spec: str, config: AppConfig, env: dict[str, str], tmp_path: Path
) -> list[WorkerProcess]:
    """Two worker processes, each with a state directory of its own (as on two hosts), so
    a task that moves between them is rebuilt from its changelogs."""
    return [
        WorkerProcess(
            spec,
            dataclasses.replace(config, instance=i, state_dir=tmp_path / f"state-{i}"),
            env,
            tmp_path,
        )
        for i in range(2)
    ]


def _run_with_kills(workers: list[WorkerProcess], kills: int) -> None:
    """SIGKILL the last worker ``kills`` times while it works; each time it restarts with
    its local state deleted, so its tasks restore their stores from the changelogs."""
    for worker in workers:
        worker.start()
    victim = workers[-1]
    for _ in range(kills):
        victim.wait_until_processing()
        time.sleep(1.5)  # let it work mid-transaction before the kill
        victim.kill()
        shutil.rmtree(victim.config.state_dir, ignore_errors=True)
        victim.start()


def test_regrouped_table_is_exact_across_sigkills(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink = new_topic(partitions=4), new_topic(partitions=4)
    bootstrap = kafka.bootstrap_servers
    config = app_config(bootstrap, tmp_path, guarantee=Guarantee.EXACTLY_ONCE)
    env = {INPUT: source, OUTPUT: sink}
    workers = _workers("tests.integration.table_op_apps:group_totals", config, env, tmp_path)
    updates = _table_updates(seed=16)
    producer = _produce_in_slices(bootstrap, source, updates, seconds=12)
    try:
        _run_with_kills(workers, kills=3)
        producer.join(120)
        assert not producer.is_alive(), "producing the input took over 120 s"
        wait_for_group_caught_up(bootstrap, config.app_id, source, timeout=180)
        repartition = f"{config.app_id}-by-group-repartition"
        wait_for_group_caught_up(bootstrap, config.app_id, repartition, timeout=180)
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    changes, totals = _model(updates)
    outputs = read_to_end(bootstrap, sink)
    assert len(outputs) == changes, "exactly-once output has duplicates or gaps"
    last: dict[str, tuple[int, Any]] = {}
    partitions: dict[str, set[int]] = defaultdict(set)
    for partition, offset, key, value in outputs:
        assert key is not None
        group = key.decode()
        partitions[group].add(partition)
        if group not in last or offset > last[group][0]:
            last[group] = (offset, decode(value))
    assert all(len(p) == 1 for p in partitions.values())
    assert {group: value for group, (_o, value) in last.items()} == totals


def _suppress_updates(seed: int) -> list[Update]:
    rng = random.Random(seed)
    return [
        (f"key-{rng.randrange(60)}", None if rng.random() < 0.05 else {"n": n})
        for n in range(10_000)
    ]


def _suppress_model(updates: list[Update], partitions: int) -> dict[int, list[tuple[str, Any]]]:
    """Per input partition (and so per output partition, keyed alike), the emitted updates."""
    models = {
        p: BufferModel(SUPPRESS_LIMIT_MS, SUPPRESS_MAX_RECORDS, None) for p in range(partitions)
    }
    for index, batch in enumerate(_slices(updates)):
        for key, value in batch:
            model = models[partition_for_key(key.encode(), partitions)]
            model.update(key, value, _slice_timestamp(index))
    return {p: [(k, v) for k, v, _ts in m.emitted] for p, m in models.items()}


def test_suppress_buffer_is_exact_across_sigkills(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink = new_topic(partitions=4), new_topic(partitions=4)
    bootstrap = kafka.bootstrap_servers
    config = app_config(bootstrap, tmp_path, guarantee=Guarantee.EXACTLY_ONCE)
    env = {INPUT: source, OUTPUT: sink}
    workers = _workers("tests.integration.table_op_apps:suppressed_rows", config, env, tmp_path)
    updates = _suppress_updates(seed=4)
    producer = _produce_in_slices(bootstrap, source, updates, seconds=12)
    try:
        _run_with_kills(workers, kills=3)
        producer.join(120)
        assert not producer.is_alive(), "producing the input took over 120 s"
        wait_for_group_caught_up(bootstrap, config.app_id, source, timeout=180)
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    expected = _suppress_model(updates, partitions=4)
    emitted: dict[int, list[tuple[str, Any]]] = {p: [] for p in range(4)}
    for partition, _offset, key, value in sorted(read_to_end(bootstrap, sink)):
        assert key is not None
        emitted[partition].append((key.decode(), decode(value)))
    assert sum(map(len, expected.values())) > 1_000  # the limit and the bound both emit
    for partition in range(4):
        assert emitted[partition] == expected[partition], f"partition {partition}"
