"""``streamer demo``: the README's main job.

Starts a local Kafka broker (from Maven-resolved jars), creates a topic, round-trips a few
card transactions through it and checks that every record came back intact, then stops the
broker. The fraud-detection demo will take this command over.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from streamer.errors import StreamerError
from streamer.kafka.admin import TopicSpec
from streamer.kafka.clients import consume, produce
from streamer.testing.kafka import LocalKafkaCluster


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="start a local broker and round-trip records through it",
        description=__doc__,
    )
    parser.add_argument("--records", type=int, default=20, help="how many records (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the records")
    parser.set_defaults(handler=run)


def make_transactions(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cards = [f"card-{i:03d}" for i in range(5)]
    return [
        {
            "id": f"tx-{i:05d}",
            "card": rng.choice(cards),
            "amount": round(rng.uniform(1, 500), 2),
            "currency": "EUR",
            "merchant": rng.choice(["grocer", "fuel", "books", "travel"]),
        }
        for i in range(count)
    ]


def run(args: argparse.Namespace) -> int:
    transactions = make_transactions(args.records, args.seed)
    print("==> starting a local Kafka broker (KRaft, one node)")
    began = time.monotonic()
    with LocalKafkaCluster(brokers=1) as cluster:
        print(f"    ready in {time.monotonic() - began:.1f} s at {cluster.bootstrap_servers}")
        topic = "transactions"
        cluster.admin.create_topics([TopicSpec(topic, partitions=3)])
        print(f"==> producing {len(transactions)} transactions to {topic!r}")
        produce(
            cluster.bootstrap_servers,
            topic,
            ((t["card"].encode(), json.dumps(t).encode()) for t in transactions),
        )
        print("==> consuming them back")
        records = consume(cluster.bootstrap_servers, topic, len(transactions), group_id="demo")
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            assert record.value is not None
            tx = json.loads(record.value)
            print(
                f"    p{record.partition}@{record.offset:<3} {tx['id']} {tx['card']} "
                f"{tx['amount']:>8.2f} {tx['currency']} {tx['merchant']}"
            )
        sent = {t["id"]: t for t in transactions}
        got = {json.loads(r.value)["id"]: json.loads(r.value) for r in records if r.value}
        if got != sent:
            msg = "the records read back differ from the records produced"
            raise StreamerError(msg)
        print(f"==> all {len(sent)} records round-tripped intact; stopping the broker")
    return 0
