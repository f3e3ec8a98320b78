"""Code the multi-host query test runs inside network namespaces (``python -m ... ARGS``).

``broker ADDRESS``: a Kafka broker listening on ``ADDRESS`` (the harness's loopback host
swapped for the namespace's own address); prints ``bootstrap=<host:port>`` and runs until
stdin closes. ``produce BOOTSTRAP TOPIC SINK PARTITIONS``: creates both topics and
produces the test's keys into the first. ``settled URL TOKEN``: exits 0 once two members
serve queries, each running tasks, none restoring. ``lookup URL TOKEN KEY...``: prints
each key's answer as JSON lines.
"""

from __future__ import annotations

import json
import sys
import time

KEYS = [f"n-{i}" for i in range(24)]


def count_of(key: str) -> int:
    return int(key.split("-")[1]) % 5 + 1


def broker(address: str) -> None:
    from streamer.testing.kafka import LocalKafkaCluster, config

    config.HOST = address  # listen and advertise on the namespace's address
    with LocalKafkaCluster(brokers=1) as cluster:
        print(f"bootstrap={cluster.bootstrap_servers}", flush=True)
        sys.stdin.read()


def produce(bootstrap: str, topic: str, sink: str, partitions: str) -> None:
    from streamer.kafka.admin import KafkaAdmin, TopicSpec
    from streamer.kafka.clients import produce as send

    KafkaAdmin(bootstrap).create_topics(
        [TopicSpec(topic, int(partitions)), TopicSpec(sink, int(partitions))]
    )
    records = [(k.encode(), b"{}") for k in KEYS for _ in range(count_of(k))]
    send(bootstrap, topic, records)


def settled(url: str, token: str) -> None:
    from streamer.query import QueryClient, QueryError

    deadline = time.monotonic() + 90
    with QueryClient(url, token=token) as client:
        while time.monotonic() < deadline:
            try:
                workers = client.overview()["workers"]
            except QueryError:
                workers = []
            if len(workers) == 2 and all(
                w.get("tasks") and all(t["state"] == "running" for t in w["tasks"]) for w in workers
            ):
                return
            time.sleep(0.3)
    sys.exit(f"the group did not settle: {workers}")


def lookup(url: str, token: str, *keys: str) -> None:
    from streamer.query import QueryClient

    with QueryClient(url, token=token) as client:
        for key in keys:
            print(json.dumps(client.get("counts", key)), flush=True)


if __name__ == "__main__":
    {"broker": broker, "produce": produce, "settled": settled, "lookup": lookup}[sys.argv[1]](
        *sys.argv[2:]
    )
