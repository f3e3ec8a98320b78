"""Where a key lives: its partition, its task, and the member that owns it.

A key of store ``S`` lives in the task ``<sub-topology>_<partition>`` of the sub-topology
that holds ``S``, where the partition is the one the producer put the key in: Kafka's
murmur2 of the key's bytes (encoded by the store's key serde, as the producer encoded it
for the sub-topology's input topic) modulo that topic's partition count
(:func:`streamer.partitioner.partition_for_key`). If the app writes that topic with a custom
partitioner (a repartition topic, ``repartition(partitioner=...)``), the partitioner decides
instead: it is called with the decoded key, no value (None), and the partition count, as
Kafka Streams does; one that cannot place a key without its value makes key lookups fail
with :class:`UnroutableKey` (scans of every partition still work).

The owner of a partition is the group member the group description lists with the
sub-topology's input partition. Each member publishes its query server's URL in its client
id (``<app-id>-<slot>|<url>``, see :func:`streamer.runtime.client_config.member_client_id`),
so the description alone says where to send a query. Descriptions and partition counts
are cached: a description for ``DESCRIBE_TTL_S`` (or until a caller asks for a fresh one,
after a forward found the owner moved), partition counts for the server's lifetime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from streamer.errors import StreamerError
from streamer.kafka.groups import GroupDescription
from streamer.partitioner import partition_for_key
from streamer.runtime.client_config import query_url_of
from streamer.topology.graph import Topology
from streamer.topology.nodes import StoreSpec, StreamPartitioner, SubTopology, callable_name
from streamer.topology.partitioning import source_partitioners

DESCRIBE_TTL_S = 1.0


class UnknownStore(StreamerError):
    """The topology has no store of that name (or it is a global table)."""


class UnroutableKey(StreamerError):
    """The custom partitioner of a store's input cannot place a key from the key alone."""


class ClusterView(Protocol):
    """What routing asks the cluster: partition counts and the group's members."""

    def partition_count(self, topic: str) -> int: ...

    def describe_group(self) -> GroupDescription: ...


@dataclass(frozen=True)
class Place:
    """Where one key of one store lives."""

    store: StoreSpec
    subtopology: int
    topic: str
    partition: int

    @property
    def task(self) -> str:
        return f"{self.subtopology}_{self.partition}"


class Locator:
    """Finds the place of a key and the URL of a partition's owner. Thread-safe."""

    def __init__(
        self,
        topology: Topology,
        prefix: str,
        cluster: ClusterView,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topology = topology
        self._prefix = prefix
        self._cluster = cluster
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._group: GroupDescription | None = None
        self._group_at = 0.0
        self._partitioners = source_partitioners(topology.nodes)

    def store(self, name: str) -> tuple[StoreSpec, SubTopology]:
        """The store ``name`` and its sub-topology; :class:`UnknownStore` if none."""
        for sub in self._topology.subtopologies:
            if name in sub.stores:
                return self._topology.store(name), sub
        known = ", ".join(sorted(s for sub in self._topology.subtopologies for s in sub.stores))
        msg = f"no store named {name!r} in this app (its stores: {known or 'none'})"
        raise UnknownStore(msg)

    def input_topic(self, sub: SubTopology) -> str:
        """The input topic whose partitions name the sub-topology's tasks."""
        return sorted(ref.resolve(self._prefix) for ref in sub.source_topics)[0]

    def partitions(self, sub: SubTopology) -> int:
        topic = self.input_topic(sub)
        with self._lock:
            count = self._counts.get(topic)
        if count is None:
            count = self._cluster.partition_count(topic)
            with self._lock:
                self._counts[topic] = count
        return count

    def place(self, name: str, key: bytes) -> Place:
        spec, sub = self.store(name)
        count = self.partitions(sub)
        # The inputs of one sub-topology share their partitioner (checked at build).
        partitioner = self._partitioners.get(sub.source_topics[0])
        if partitioner is None:
            partition = partition_for_key(key, count)
        else:
            partition = _custom_partition(partitioner, spec, key, count)
        return Place(spec, sub.id, self.input_topic(sub), partition)

    def places(self, name: str) -> list[Place]:
        """Every partition of the store, in partition order."""
        spec, sub = self.store(name)
        topic = self.input_topic(sub)
        return [Place(spec, sub.id, topic, p) for p in range(self.partitions(sub))]

    def group(self, *, fresh: bool = False) -> GroupDescription:
        """The group's description, at most ``DESCRIBE_TTL_S`` old unless ``fresh``."""
        now = self._clock()
        with self._lock:
            cached, taken = self._group, self._group_at
        if cached is not None and not fresh and now - taken < DESCRIBE_TTL_S:
            return cached
        group = self._cluster.describe_group()
        with self._lock:
            self._group, self._group_at = group, now
        return group

    def owner_url(self, topic: str, partition: int, *, fresh: bool = False) -> str | None:
        """The query URL of the member that owns ``topic[partition]``; None when no member
        owns it now (a rebalance is moving it) or its owner serves no queries."""
        member = self.group(fresh=fresh).owners().get((topic, partition))
        return None if member is None else query_url_of(member.client_id)

    def member_urls(self) -> dict[str, str]:
        """Each member's client id and query URL, for members that publish one."""
        urls = {}
        for member in self.group().members:
            url = query_url_of(member.client_id)
            if url is not None:
                urls[member.client_id] = url
        return urls


def _custom_partition(
    partitioner: StreamPartitioner, spec: StoreSpec, key: bytes, count: int
) -> int:
    """``partitioner(decoded key, None, count)``, checked; :class:`UnroutableKey` if it fails."""
    name = callable_name(partitioner)
    advice = (
        f"store {spec.name!r} is fed through a topic partitioned by {name}, which cannot "
        "place a key without its value; read the store's partitions with a range scan instead"
    )
    try:
        partition: object = partitioner(spec.key_serde.decode(key), None, count)
    except Exception as exc:
        msg = f"{advice} ({type(exc).__name__})"
        raise UnroutableKey(msg) from None
    if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < count:
        msg = f"{advice} (it returned no partition from 0 to {count - 1})"
        raise UnroutableKey(msg)
    return partition


__all__ = ["DESCRIBE_TTL_S", "ClusterView", "Locator", "Place", "UnknownStore", "UnroutableKey"]
