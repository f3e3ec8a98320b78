"""A cogroup of two streams, one re-grouped through a repartition topic, under exactly-once
with a worker SIGKILLed mid-run: every record updates its user's one aggregate exactly once."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from streamer.kafka.clients import produce
from streamer.runtime.config import Guarantee
from streamer.testing.kafka import KafkaCluster
from tests.integration.cogroup_apps import CLICKS, OUTPUT, PURCHASES
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    wait_for_group_caught_up,
)

USERS = [f"user-{i}" for i in range(40)]
CLICK_COUNT = 12_000
PURCHASE_COUNT = 6_000
SLICES = 20

Row = tuple[bytes, bytes]


def _inputs(seed: int) -> tuple[list[Row], list[Row]]:
    rng = random.Random(seed)
    clicks = [
        (rng.choice(USERS).encode(), json.dumps({"seq": n}).encode()) for n in range(CLICK_COUNT)
    ]
    purchases = [
        (
            f"order-{n}".encode(),
            json.dumps({"user": rng.choice(USERS), "eur": rng.randint(1, 50)}).encode(),
        )
        for n in range(PURCHASE_COUNT)
    ]
    return clicks, purchases


def _produce(bootstrap: str, topics: dict[str, list[Row]], seconds: float) -> threading.Thread:
    """Each topic's rows in SLICES slices, interleaved, spread over ``seconds``."""

    def run() -> None:
        for index in range(SLICES):
            for topic, rows in topics.items():
                size = len(rows) // SLICES
                produce(bootstrap, topic, rows[index * size : (index + 1) * size])
            time.sleep(seconds / SLICES)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _totals(clicks: list[Row], purchases: list[Row]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for key, value in clicks:
        user = totals.setdefault(
            key.decode(), {"clicks": 0, "last_click": -1, "buys": 0, "spent": 0}
        )
        user["clicks"] += 1
        user["last_click"] = json.loads(value)["seq"]
    for _key, value in purchases:
        purchase = json.loads(value)
        user = totals.setdefault(
            purchase["user"], {"clicks": 0, "last_click": -1, "buys": 0, "spent": 0}
        )
        user["buys"] += 1
        user["spent"] += purchase["eur"]
    return totals


def _check_steps(history: list[dict[str, Any]]) -> None:
    """Each output is the previous aggregate updated by exactly one record of one input."""
    before = {"clicks": 0, "last_click": -1, "buys": 0, "spent": 0}
    for after in history:
        click = after["clicks"] == before["clicks"] + 1 and after["buys"] == before["buys"]
        buy = after["buys"] == before["buys"] + 1 and after["clicks"] == before["clicks"]
        assert click or buy, f"{before} -> {after}"
        if click:
            assert after["last_click"] > before["last_click"]  # clicks of a user stay in order
            assert after["spent"] == before["spent"]
        else:
            assert after["spent"] > before["spent"]
            assert after["last_click"] == before["last_click"]
        before = after


def test_cogroup_is_exact_across_sigkills(kafka: KafkaCluster, new_topic, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    clicks_topic, purchases_topic = new_topic(partitions=4), new_topic(partitions=4)
    sink = new_topic(partitions=4)
    env = {CLICKS: clicks_topic, PURCHASES: purchases_topic, OUTPUT: sink}
    config = app_config(bootstrap, tmp_path / "state", guarantee=Guarantee.EXACTLY_ONCE)
    workers = [
        WorkerProcess(
            "tests.integration.cogroup_apps:user_activity",
            dataclasses.replace(config, instance=i),
            env,
            tmp_path,
        )
        for i in range(2)
    ]
    clicks, purchases = _inputs(seed=3)
    producer = _produce(bootstrap, {clicks_topic: clicks, purchases_topic: purchases}, 12)
    try:
        for worker in workers:
            worker.start()
        victim = workers[-1]
        for _ in range(2):
            victim.wait_until_processing()
            time.sleep(1.5)  # let it work mid-transaction before the kill
            victim.kill()
            victim.start()
        producer.join(120)
        assert not producer.is_alive(), "producing the input took over 120 s"
        for topic in (clicks_topic, purchases_topic, f"{config.app_id}-by-user-repartition"):
            wait_for_group_caught_up(bootstrap, config.app_id, topic, timeout=180)
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    outputs = read_to_end(bootstrap, sink)
    assert len(outputs) == CLICK_COUNT + PURCHASE_COUNT, "duplicates or gaps"
    histories: dict[str, list[dict[str, Any]]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for partition, _offset, key, value in sorted(outputs, key=lambda o: (o[0], o[1])):
        assert key is not None
        histories[key.decode()].append(decode(value))
        partitions[key.decode()].add(partition)
    assert all(len(p) == 1 for p in partitions.values()), "a user's aggregate in two tasks"
    for user, history in histories.items():
        try:
            _check_steps(history)
        except AssertionError as exc:
            raise AssertionError(f"{user}: {exc}\n{_diagnosis(workers, tmp_path)}") from None
    finals = {user: h[-1] for user, h in histories.items()}
    assert finals == _totals(clicks, purchases), _diagnosis(workers, tmp_path)


def _diagnosis(workers: list[WorkerProcess], log_dir: Path) -> str:
    """The workers' own warnings and errors (state wiped, restores, aborts), for a failure."""
    lines = [
        line
        for worker in workers
        for line in worker.log_text().splitlines()
        if " streamer.runtime." in line and (" WARNING " in line or " ERROR " in line)
    ]
    return "\n".join([f"worker logs in {log_dir}; their warnings:", *lines[-40:]])
