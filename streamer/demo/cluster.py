"""What the demo and its throughput run share: the topics, a local broker, the reference
tables and a started worker group, each stopped by an :class:`~contextlib.ExitStack`."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from streamer.demo.generator import FraudDataGenerator
from streamer.demo.worker_group import WorkerGroup
from streamer.errors import StreamerError
from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.kafka.clients import produce
from streamer.testing.kafka import LocalKafkaCluster

TRANSACTIONS = "transactions"
ALERTS = "alerts"
RISK_SCORES = "risk-scores"
CASES = "fraud-cases"
BLOCKED_MERCHANTS = "blocked-merchants"
CARD_LIMITS = "card-limits"
INVALID = "transactions-invalid"
APP_ID = "fraud-demo"

Say = Callable[[str], None]


def fraud_topology_path() -> Path:
    """The file of ``topologies/fraud.py``, which the package ships as ``streamer.examples``:
    in the installed package, or in the checkout under an editable install. The workers load
    it by path, as ``streamer run topologies/fraud.py`` does, so its sibling imports work."""
    found = importlib.util.find_spec("streamer.examples.fraud")
    if found is None or found.origin is None:
        msg = "streamer.examples.fraud is missing from this installation: reinstall streamer"
        raise StreamerError(msg)
    return Path(found.origin)


class Lag:
    """The group's committed offsets and the end offsets of its input topic, summed."""

    def __init__(self, admin: KafkaAdmin, app_id: str = APP_ID, topic: str = TRANSACTIONS) -> None:
        self.admin = admin
        self.app_id = app_id
        self.topic = topic

    def committed_and_end(self) -> tuple[int, int]:
        committed = self.admin.group_offsets(self.app_id, self.topic)
        end = self.admin.end_offsets(self.topic)
        return sum(committed.values()), sum(end.values())


def start_broker(say: Say, cleanup: contextlib.ExitStack) -> str:
    """Start a one-node local Kafka, stopped by ``cleanup``; return its bootstrap servers."""
    say("==> starting a local Kafka broker (KRaft, one node)")
    began = time.monotonic()
    cluster = LocalKafkaCluster(brokers=1)
    cluster.start()
    cleanup.callback(cluster.stop)
    bootstrap = cluster.bootstrap_servers
    say(f"    ready in {time.monotonic() - began:.1f} s at {bootstrap}")
    return bootstrap


def create_topics(say: Say, admin: KafkaAdmin, partitions: int) -> None:
    compacted = {"cleanup.policy": "compact"}
    admin.create_topics(
        [
            TopicSpec(TRANSACTIONS, partitions),
            TopicSpec(ALERTS, partitions),
            TopicSpec(RISK_SCORES, partitions),
            TopicSpec(CASES, partitions),
            TopicSpec(INVALID, 1),
            TopicSpec(BLOCKED_MERCHANTS, 1, config=compacted),
            TopicSpec(CARD_LIMITS, 1, config=compacted),
        ]
    )
    say(
        f"==> topics: {TRANSACTIONS}, {ALERTS}, {RISK_SCORES} and {CASES} "
        f"({partitions} partitions), "
        f"{BLOCKED_MERCHANTS} and {CARD_LIMITS} (compacted), {INVALID}"
    )


def seed_tables(say: Say, bootstrap: str, generator: FraudDataGenerator) -> None:
    """Produce the ``blocked-merchants`` and ``card-limits`` tables' rows."""
    produce(
        bootstrap,
        BLOCKED_MERCHANTS,
        ((m.encode(), json.dumps(r).encode()) for m, r in generator.blocked_merchants.items()),
    )
    produce(
        bootstrap,
        CARD_LIMITS,
        ((c.encode(), json.dumps(r).encode()) for c, r in generator.card_limits()),
    )
    say(
        f"    seeded {len(generator.blocked_merchants)} blocked merchants and "
        f"{len(generator.cards):,} card limits"
    )


def start_workers(
    say: Say, cleanup: contextlib.ExitStack, workers: WorkerGroup
) -> list[int | None]:
    """Start the group (stopped by ``cleanup``) and wait until every worker owns partitions.

    Returns the list that receives the workers' exit codes when ``cleanup`` stops them.
    """
    say(
        f"==> starting {workers.count} worker processes running "
        f"{os.path.relpath(workers.spec)} ({workers.config.guarantee.value})"
    )
    workers.start()
    codes: list[int | None] = []

    def stop_workers() -> None:
        codes.extend(workers.stop())

    cleanup.callback(stop_workers)
    began = time.monotonic()
    while not workers.all_assigned():
        workers.check_alive()
        if time.monotonic() - began > 90:
            msg = f"the workers got no partitions within 90 s; see {workers.log_dir}"
            raise StreamerError(msg)
        time.sleep(0.2)
    say(f"    every worker owns partitions after {time.monotonic() - began:.1f} s")
    return codes
