"""Configuration of local KRaft nodes: free ports, cluster ids and ``server.properties``.

Every node is a combined broker and controller listening on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"

# Broker settings tuned for fast, small test clusters. Every key can be overridden.
BASE_BROKER_CONFIG: dict[str, str] = {
    "process.roles": "broker,controller",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": "1",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
    # Consumer group protocol (KIP-848): notice a dead member in 10 s, not 45 s, and
    # heartbeat often, so rebalance and crash tests finish quickly.
    "group.consumer.min.session.timeout.ms": "6000",
    "group.consumer.session.timeout.ms": "10000",
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.consumer.heartbeat.interval.ms": "1000",
    "auto.create.topics.enable": "false",
    # A broker otherwise waits (up to 5 min) on SIGTERM to hand over its partitions.
    "controlled.shutdown.enable": "false",
    # Small, fast log cleaner so that compaction can be observed within seconds.
    "log.cleaner.dedupe.buffer.size": "2097152",
    "log.cleaner.backoff.ms": "250",
    "log.cleaner.threads": "1",
    # Check segment rolls / retention often.
    "log.retention.check.interval.ms": "1000",
    "file.delete.delay.ms": "1000",
    # Small heaps of background threads: this is a test broker.
    "num.network.threads": "2",
    "num.io.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
    "background.threads": "4",
}


@dataclass(frozen=True)
class NodeSpec:
    """Identity and ports of one node."""

    node_id: int
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@{HOST}:{self.controller_port}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago.

    The sockets are held open until all ports are chosen so that they differ; someone else
    may still take one before the broker binds it (the caller retries once on that).
    """
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def allocate_nodes(count: int, *, first_id: int = 1) -> list[NodeSpec]:
    ports = free_ports(2 * count)
    return [
        NodeSpec(node_id=first_id + i, port=ports[2 * i], controller_port=ports[2 * i + 1])
        for i in range(count)
    ]


def random_cluster_id() -> str:
    """A cluster id in Kafka's format (URL-safe base64 of a random UUID, no padding)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like options
            return text


def replication_settings(cluster_size: int) -> dict[str, str]:
    """Internal-topic replication: RF 1 for one node, RF 3 with min ISR 2 for 3+ nodes."""
    rf = min(cluster_size, 3)
    min_isr = 2 if rf >= 3 else 1
    return {
        "offsets.topic.replication.factor": str(rf),
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "default.replication.factor": "1",
    }


def server_properties(
    node: NodeSpec,
    *,
    voters: Sequence[NodeSpec],
    log_dir: Path,
    overrides: Mapping[str, str] | None = None,
    listener: str = "PLAINTEXT",
) -> dict[str, str]:
    """The full broker configuration of ``node`` in a cluster made of ``voters``.

    ``listener`` names the client listener on ``node.port`` (``PLAINTEXT``, or ``SASL_SSL``
    for a secured cluster, whose other settings come in ``overrides``)."""
    props = dict(BASE_BROKER_CONFIG)
    props.update(replication_settings(len(voters)))
    props.update(
        {
            "node.id": str(node.node_id),
            "controller.quorum.voters": ",".join(v.voter for v in voters),
            "listeners": f"{listener}://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
            "advertised.listeners": f"{listener}://{HOST}:{node.port}",
            "log.dirs": str(log_dir),
        }
    )
    if overrides:
        props.update(overrides)
    return props


def render_properties(props: Mapping[str, str]) -> str:
    """``key=value`` lines in Java properties syntax (values here never need escaping
    beyond backslashes, which Java would otherwise swallow)."""
    lines = ["# Generated by streamer.testing.kafka"]
    lines += [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"
