"""A versioned table and an as-of join's buffer are restored from their changelogs exactly:
the history (out-of-order versions, tombstones), not only the latest values."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from streamer.kafka.clients import produce
from streamer.testing.kafka import KafkaCluster
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    wait_for_count,
    wait_for_group_caught_up,
)
from tests.integration.versioned_apps import GRACE_MS, OUTPUT, PRICES, SALES

PRODUCTS = [f"p{i}" for i in range(12)]
PARTITIONS = 2
# Per product, in this order: 3000 comes before 2000 (out of order), 4000 is a tombstone.
UPDATES = [1000, 3000, 2000, 4000, 5000]
# Sales read after the restart, at these offsets from the base time; one more sale, at 2200,
# is read before it and still waits in the buffer when the first worker is killed.
SALES_AFTER = [500, 1500, 2500, 3500, 4200, 5000, 6000]
WAITING_SALE = 2200


def price(product: str, offset: int) -> str | None:
    return None if offset == 4000 else f"{product}@{offset}"


def price_as_of(product: str, offset: int) -> str | None:
    valid = [u for u in UPDATES if u <= offset]
    return price(product, max(valid)) if valid else None


def _produce_at(bootstrap: str, topic: str, ts: int, rows: list[tuple[str, Any]]) -> None:
    produce(
        bootstrap,
        topic,
        [(key.encode(), None if v is None else json.dumps(v).encode()) for key, v in rows],
        timestamp=ts,
    )


def test_a_fresh_worker_restores_the_history_and_the_waiting_records(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prices, sales = new_topic(partitions=PARTITIONS), new_topic(partitions=PARTITIONS)
    output = new_topic(partitions=PARTITIONS)
    env = {PRICES: prices, SALES: sales, OUTPUT: output}
    base = int(time.time() * 1000) - 60_000  # recent: within the topics' time retention
    config = app_config(bootstrap, tmp_path / "state-a")

    for offset in UPDATES:
        _produce_at(bootstrap, prices, base + offset, [(p, price(p, offset)) for p in PRODUCTS])
    _produce_at(bootstrap, sales, base + WAITING_SALE, [(p, "waiting") for p in PRODUCTS])
    first = WorkerProcess("tests.integration.versioned_apps:priced_sales", config, env, tmp_path)
    try:
        first.start()
        for topic in (prices, sales):
            wait_for_group_caught_up(bootstrap, config.app_id, topic, timeout=120)
        first.kill()  # its state stays behind, in a directory the next worker does not use
    finally:
        first.ensure_dead()
    assert read_to_end(bootstrap, output) == []  # the sale waits for its grace period

    restarted = config.__class__(**{**config.__dict__, "state_dir": tmp_path / "state-b"})
    second = WorkerProcess(
        "tests.integration.versioned_apps:priced_sales", restarted, env, tmp_path
    )
    try:
        second.start()
        for offset in SALES_AFTER:
            _produce_at(bootstrap, sales, base + offset, [(p, offset) for p in PRODUCTS])
        # A price far ahead, on each partition, moves stream time past every grace period.
        later = base + max(SALES_AFTER) + GRACE_MS + 1
        for partition in range(PARTITIONS):
            produce(bootstrap, prices, [(b"clock", b"0")], partition=partition, timestamp=later)
        expected_count = len(PRODUCTS) * (len(SALES_AFTER) + 1)
        wait_for_count(bootstrap, output, expected_count, timeout=120)
        for topic in (prices, sales):
            wait_for_group_caught_up(bootstrap, config.app_id, topic, timeout=120)
        assert second.stop() == 0, second.log_text()[-3000:]
    finally:
        second.ensure_dead()
    assert "restore done" in second.log_text()

    joined: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for _partition, _offset, key, value in read_to_end(bootstrap, output):
        assert key is not None
        row = decode(value)
        joined[key.decode()].append((row["sale"], row["price"]))
    expected = {
        p: sorted(
            [("waiting", price_as_of(p, WAITING_SALE))]
            + [(offset, price_as_of(p, offset)) for offset in SALES_AFTER],
            key=str,
        )
        for p in PRODUCTS
    }
    assert {p: sorted(rows, key=str) for p, rows in joined.items()} == expected
