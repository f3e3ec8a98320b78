"""A versioned table and an as-of join's buffer are restored from their changelogs exactly:
the history (out-of-order versions, tombstones), not only the latest values; and the join's
results are exact under exactly-once with its worker SIGKILLed mid-run."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streamer.kafka.clients import KEYED_PLACEMENT, produce
from streamer.runtime.config import AppConfig
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


# --- exactly-once across SIGKILLs ----------------------------------------------------------

SALES_TOTAL = 6_000
HISTORY_SPAN = 100_000


def _price_history(rng: random.Random) -> dict[str, list[tuple[int, int | None]]]:
    """Per product, 15 updates in production order: random times (so many come out of
    order), one in five a tombstone."""
    return {
        p: [
            (rng.randrange(HISTORY_SPAN), None if rng.random() < 0.2 else rng.randrange(1000))
            for _ in range(15)
        ]
        for p in PRODUCTS
    }


def _as_of(updates: list[tuple[int, int | None]], ts: int) -> int | None:
    """The value valid at ``ts``: the last-produced update at the latest time ``<= ts``."""
    valid: dict[int, int | None] = {}
    for at, value in updates:
        valid[at] = value
    times = [at for at in valid if at <= ts]
    return valid[max(times)] if times else None


def _produce_timed(
    bootstrap: str, topic: str, rows: list[tuple[str, Any, int]], seconds: float = 0.0
) -> None:
    """Produce ``(key, value, timestamp)`` rows in order, spread over ``seconds``."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", **KEYED_PLACEMENT})
    slices = 20 if seconds else 1
    size = -(-len(rows) // slices)
    for start in range(0, len(rows), size):
        for key, value, ts in rows[start : start + size]:
            data = None if value is None else json.dumps(value).encode()
            producer.produce(topic, key=key.encode(), value=data, timestamp=ts)
            producer.poll(0)
        assert producer.flush(30) == 0, "records were not delivered within 30 s"
        time.sleep(seconds / slices)  # pacing the input, so that kills land mid-run


def _worker_on_fresh_state(
    config: AppConfig, env: dict[str, str], tmp_path: Path, run: int
) -> WorkerProcess:
    """The worker of ``run``, on a state directory of its own: it restores every store from
    its changelog, in full."""
    (tmp_path / f"run-{run}").mkdir()
    fresh = dataclasses.replace(config, state_dir=tmp_path / f"state-{run}")
    spec = "tests.integration.versioned_apps:priced_sales"
    return WorkerProcess(spec, fresh, env, tmp_path / f"run-{run}").start()


def test_as_of_joins_are_exact_under_exactly_once_with_a_worker_killed_mid_run(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    """Killed twice while sales stream in, each time restarted on an empty state directory:
    every sale is priced once, as of its own time."""
    bootstrap = kafka.bootstrap_servers
    rng = random.Random(914)
    prices, sales = new_topic(partitions=PARTITIONS), new_topic(partitions=PARTITIONS)
    output = new_topic(partitions=PARTITIONS)
    env = {PRICES: prices, SALES: sales, OUTPUT: output}
    base = int(time.time() * 1000) - 2 * HISTORY_SPAN
    history = _price_history(rng)
    _produce_timed(
        bootstrap,
        prices,
        [(p, value, base + at) for p, updates in history.items() for at, value in updates],
    )
    sold = [(rng.choice(PRODUCTS), rng.randrange(HISTORY_SPAN)) for _ in range(SALES_TOTAL)]
    config = app_config(bootstrap, tmp_path / "state-0")

    worker = _worker_on_fresh_state(config, env, tmp_path, 0)
    try:
        # The whole price history is in the table before any sale: results do not depend on
        # how the two topics' records interleave.
        wait_for_group_caught_up(bootstrap, config.app_id, prices, timeout=120)
        rows = [(p, {"n": n}, base + ts) for n, (p, ts) in enumerate(sold)]
        producer = threading.Thread(
            target=_produce_timed, args=(bootstrap, sales, rows, 10.0), daemon=True
        )
        producer.start()
        for run in (1, 2):
            worker.wait_until_processing()
            time.sleep(1.5)  # mid-run, with records in flight and sales waiting in the buffer
            worker.kill()
            worker = _worker_on_fresh_state(config, env, tmp_path, run)
        producer.join(120)
        assert not producer.is_alive(), "producing the sales took over 120 s"
        later = base + HISTORY_SPAN + GRACE_MS
        for partition in range(PARTITIONS):
            produce(bootstrap, prices, [(b"clock", b"0")], partition=partition, timestamp=later)
        wait_for_count(bootstrap, output, SALES_TOTAL, timeout=180)
        for topic in (prices, sales):
            wait_for_group_caught_up(bootstrap, config.app_id, topic, timeout=180)
        assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        worker.ensure_dead()
    assert "restore done" in worker.log_text()

    joined: dict[int, list[Any]] = defaultdict(list)
    for _partition, _offset, key, value in read_to_end(bootstrap, output):
        row = decode(value)
        joined[row["sale"]["n"]].append((key, row["price"]))
    assert len(joined) == SALES_TOTAL, "exactly-once output has gaps"
    assert all(len(r) == 1 for r in joined.values()), "exactly-once output has duplicates"
    for n, (product, ts) in enumerate(sold):
        assert joined[n] == [(product.encode(), _as_of(history[product], ts))], n
