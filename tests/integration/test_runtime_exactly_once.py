"""Exactly-once and at-least-once under SIGKILL, with real worker processes and a real broker."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from streamer.kafka.clients import produce
from streamer.runtime.config import Guarantee
from streamer.testing.kafka import KafkaCluster
from tests.integration.apps import INPUT, OUTPUT
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    wait_for_group_caught_up,
)

RECORDS = 50_000
KEYS = 200


def _produce_steadily(bootstrap: str, topic: str, total: int, seconds: float) -> threading.Thread:
    """Produce ``total`` records keyed k0..k(KEYS-1), in 20 slices spread over ``seconds``."""

    def run() -> None:
        per_slice = total // 20
        for s in range(20):
            start = s * per_slice
            produce(
                bootstrap,
                topic,
                (
                    (f"k{n % KEYS}".encode(), json.dumps({"n": n}).encode())
                    for n in range(start, start + per_slice)
                ),
            )
            time.sleep(seconds / 20)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _expected_per_key(total: int) -> dict[str, list[int]]:
    expected: dict[str, list[int]] = defaultdict(list)
    for n in range(total):
        expected[f"k{n % KEYS}"].append(n)
    return expected


@pytest.mark.parametrize("guarantee", [Guarantee.EXACTLY_ONCE, Guarantee.AT_LEAST_ONCE])
def test_workers_killed_repeatedly_lose_nothing(
    kafka: KafkaCluster, new_topic, tmp_path: Path, guarantee: Guarantee
) -> None:
    source, sink = new_topic(partitions=4), new_topic(partitions=4)
    env = {INPUT: source, OUTPUT: sink}
    config = app_config(kafka.bootstrap_servers, tmp_path / "state", guarantee=guarantee)
    workers = [
        WorkerProcess(
            "tests.integration.apps:running_count",
            config.__class__(**{**config.__dict__, "instance": i}),
            env,
            tmp_path,
        )
        for i in range(2)
    ]
    producer = _produce_steadily(kafka.bootstrap_servers, source, RECORDS, seconds=12)
    try:
        for worker in workers:
            worker.start()
        victim = workers[1]
        for _ in range(3):
            victim.wait_until_processing()
            time.sleep(1.5)  # let it work mid-transaction before the kill
            victim.kill()
            victim.start()
        # After the last kill, the dead member's partitions move once its session expires.
        producer.join(120)
        assert not producer.is_alive(), "producing the input took over 120 s"
        wait_for_group_caught_up(kafka.bootstrap_servers, config.app_id, source, timeout=180)
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    outputs = read_to_end(kafka.bootstrap_servers, sink)
    per_key: dict[str, list[dict[str, int]]] = defaultdict(list)
    for _partition, _offset, key, value in outputs:
        assert key is not None
        per_key[key.decode()].append(decode(value))
    expected = _expected_per_key(RECORDS)
    assert set(per_key) == set(expected)
    if guarantee is Guarantee.EXACTLY_ONCE:
        assert len(outputs) == RECORDS, "exactly-once output has duplicates or gaps"
        for key, values in per_key.items():
            assert [v["n"] for v in values] == expected[key], (
                f"{key}: inputs out of order or repeated"
            )
            assert [v["count"] for v in values] == list(range(1, len(expected[key]) + 1)), key
        changelog = read_to_end(kafka.bootstrap_servers, f"{config.app_id}-running-count-changelog")
        final: dict[bytes, int] = {}
        for _p, _o, key, value in changelog:
            assert key is not None
            final[key] = decode(value)["count"]
        assert {k.decode(): v for k, v in final.items()} == {k: len(v) for k, v in expected.items()}
    else:
        seen = Counter(v["n"] for values in per_key.values() for v in values)
        assert set(seen) == set(range(RECORDS)), "at-least-once lost records"
        duplicates = sum(c - 1 for c in seen.values())
        print(f"at-least-once: {duplicates} duplicate outputs after 3 kills")
        for key, values in per_key.items():
            assert values[-1]["count"] >= len(expected[key]), key
