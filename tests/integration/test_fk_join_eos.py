"""A foreign-key table join under exactly-once, with a worker SIGKILLed mid-run.

Orders and customers are updated, deleted and moved between customers while two worker
processes run an inner and a left foreign-key join; one worker is SIGKILLed three times and
restarts with an empty state directory, so its tasks rebuild their stores (the join's
subscriptions and foreign keys included) from the changelogs. The two tables have different
partition counts, so subscriptions and responses cross between tasks.

Checked, for both joins:

* the final result per order is exactly the join of the final tables;
* every result joins a version the order really had and a version its customer really had;
* per order, results never go back to an older order version, nor (for one order version)
  to an older customer version: no stale result from a response that was overtaken;
* the internal topics have the partition counts of the tables they are co-partitioned with.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from streamer.kafka.admin import KafkaAdmin
from streamer.kafka.clients import produce
from streamer.runtime.config import AppConfig, Guarantee
from streamer.testing.kafka import KafkaCluster
from tests.integration.fk_join_apps import CUSTOMERS, INNER_OUT, LEFT_OUT, ORDERS
from tests.integration.support import (
    WorkerProcess,
    app_config,
    decode,
    read_to_end,
    wait_for_group_caught_up,
)

ORDER_UPDATES = 8_000
CUSTOMER_UPDATES = 2_000
ORDER_KEYS = 400
CUSTOMER_KEYS = 50
SLICES = 20
ORDER_PARTITIONS = 4
CUSTOMER_PARTITIONS = 3

Update = tuple[str, dict[str, Any] | None]


def _updates(seed: int) -> tuple[list[Update], list[Update]]:
    """Order and customer updates; every value carries a unique sequence number ``n``."""
    rng = random.Random(seed)
    orders: list[Update] = []
    for n in range(ORDER_UPDATES):
        key = f"o-{rng.randrange(ORDER_KEYS)}"
        roll = rng.random()
        if roll < 0.08:
            orders.append((key, None))
        else:
            customer = None if roll < 0.13 else f"c-{rng.randrange(CUSTOMER_KEYS)}"
            orders.append((key, {"n": n, "customer": customer}))
    customers: list[Update] = []
    for n in range(CUSTOMER_UPDATES):
        key = f"c-{rng.randrange(CUSTOMER_KEYS)}"
        customers.append((key, None if rng.random() < 0.1 else {"n": n, "name": f"{key}/{n}"}))
    return orders, customers


def _final(updates: list[Update]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for key, value in updates:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def _expected(
    orders: list[Update], customers: list[Update], kind: str
) -> dict[str, dict[str, Any]]:
    final_orders, final_customers = _final(orders), _final(customers)
    rows = {}
    for key, order in final_orders.items():
        customer = None if order["customer"] is None else final_customers.get(order["customer"])
        if customer is not None or kind == "left":
            rows[key] = {"order": order, "customer": customer}
    return rows


def _produce(
    bootstrap: str, orders: str, customers: str, seconds: float
) -> tuple[threading.Thread, list[Update], list[Update]]:
    """Produce both tables' updates interleaved, in slices spread over ``seconds``."""
    order_updates, customer_updates = _updates(seed=213)

    def encode(batch: list[Update]) -> list[tuple[bytes, bytes | None]]:
        return [(k.encode(), None if v is None else json.dumps(v).encode()) for k, v in batch]

    def run() -> None:
        o_size, c_size = ORDER_UPDATES // SLICES, CUSTOMER_UPDATES // SLICES
        for index in range(SLICES):
            produce(
                bootstrap,
                customers,
                encode(customer_updates[index * c_size : (index + 1) * c_size]),
            )
            produce(bootstrap, orders, encode(order_updates[index * o_size : (index + 1) * o_size]))
            time.sleep(seconds / SLICES)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, order_updates, customer_updates


def _workers(config: AppConfig, env: dict[str, str], tmp_path: Path) -> list[WorkerProcess]:
    spec = "tests.integration.fk_join_apps:orders_with_customers"
    return [
        WorkerProcess(
            spec,
            dataclasses.replace(config, instance=i, state_dir=tmp_path / f"state-{i}"),
            env,
            tmp_path,
        )
        for i in range(2)
    ]


def _check(
    outputs: list[tuple[int, int, bytes | None, bytes | None]],
    orders: list[Update],
    customers: list[Update],
    kind: str,
) -> int:
    """Assert the module docstring's checks on one join's output; returns its record count."""
    order_versions = {(k, v["n"]) for k, v in orders if v is not None}
    customer_versions = {(k, v["n"]) for k, v in customers if v is not None}
    last: dict[str, Any] = {}
    seen_order: dict[str, int] = {}
    seen_customer: dict[tuple[str, int], int] = {}
    for _partition, _offset, key, value in sorted(outputs):
        assert key is not None
        order_id, row = key.decode(), decode(value)
        last[order_id] = row
        if row is None:
            continue
        order, customer = row["order"], row["customer"]
        assert (order_id, order["n"]) in order_versions
        assert order["n"] >= seen_order.get(order_id, -1), f"{order_id} went back: {row}"
        seen_order[order_id] = order["n"]
        if customer is None:
            assert kind == "left"
            continue
        assert (order["customer"], customer["n"]) in customer_versions, row
        previous = seen_customer.get((order_id, order["n"]), -1)
        assert customer["n"] >= previous, f"{order_id} joined an older customer: {row}"
        seen_customer[(order_id, order["n"])] = customer["n"]
    rows = {k: v for k, v in last.items() if v is not None}
    assert rows == _expected(orders, customers, kind)
    return len(outputs)


def test_foreign_key_joins_are_exact_across_sigkills(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    orders_topic = new_topic(partitions=ORDER_PARTITIONS)
    customers_topic = new_topic(partitions=CUSTOMER_PARTITIONS)
    inner_topic, left_topic = new_topic(partitions=2), new_topic(partitions=2)
    config = app_config(bootstrap, tmp_path, guarantee=Guarantee.EXACTLY_ONCE)
    env = {ORDERS: orders_topic, CUSTOMERS: customers_topic, INNER_OUT: inner_topic}
    env[LEFT_OUT] = left_topic
    workers = _workers(config, env, tmp_path)
    producer, orders, customers = _produce(bootstrap, orders_topic, customers_topic, seconds=12)
    app = config.app_id
    try:
        for worker in workers:
            worker.start()
        victim = workers[-1]
        for _ in range(3):
            victim.wait_until_processing()
            time.sleep(1.5)  # let it work mid-transaction before the kill
            victim.kill()
            shutil.rmtree(victim.config.state_dir, ignore_errors=True)
            victim.start()
        producer.join(120)
        assert not producer.is_alive(), "producing the input took over 120 s"
        # Inputs first, then what they sent: subscriptions, then the responses to them.
        for topic in (
            orders_topic,
            customers_topic,
            f"{app}-named-subscription-repartition",
            f"{app}-maybe-subscription-repartition",
            f"{app}-named-response-repartition",
            f"{app}-maybe-response-repartition",
        ):
            wait_for_group_caught_up(bootstrap, app, topic, timeout=240)
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()[-3000:]
    finally:
        for worker in workers:
            worker.ensure_dead()

    admin = KafkaAdmin(bootstrap)
    for join in ("named", "maybe"):
        assert len(admin.partitions(f"{app}-{join}-subscription-repartition")) == 3
        assert len(admin.partitions(f"{app}-{join}-response-repartition")) == 4
    inner = _check(read_to_end(bootstrap, inner_topic), orders, customers, "inner")
    left = _check(read_to_end(bootstrap, left_topic), orders, customers, "left")
    assert inner > 1_000
    assert left > 1_000
