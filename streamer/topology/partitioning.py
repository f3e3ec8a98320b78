"""Custom partitioners and co-partitioning: which partitioner placed the keys of each topic the
app reads.

A task reads the same partition of every source topic of its sub-topology, so a join (or an
aggregation over merged inputs) pairs equal keys only if every one of those topics put each
key in the same partition: the same partition count (checked when the app starts,
:meth:`~streamer.topology.graph.Topology.validate_partitions`) and the same partitioner
(checked here, when the topology is built). A topic the app reads but no sink of the app
writes, or writes without a partitioner, is taken to be partitioned by Kafka's default
(murmur2 of the key bytes). Partitioners are compared by identity: give each input the same
function object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from streamer.errors import TopologyError
from streamer.topology.nodes import (
    Node,
    SinkNode,
    SourceNode,
    StreamPartitioner,
    SubTopology,
    TopicRef,
    callable_name,
)


def partitioner_name(partitioner: StreamPartitioner | None) -> str:
    """How descriptions and errors name a partitioner (``default (murmur2)`` for none)."""
    return "default (murmur2)" if partitioner is None else callable_name(partitioner)


def source_partitioners(nodes: Iterable[Node]) -> dict[TopicRef, StreamPartitioner | None]:
    """Per topic the app reads, the partitioner its sinks write it with (None: the default).

    Raises :class:`TopologyError` if sinks write one such topic with different partitioners:
    the steps reading it would find a key in more than one partition.
    """
    nodes = list(nodes)
    read = {ref for node in nodes if isinstance(node, SourceNode) for ref in node.topics}
    writers: dict[TopicRef, list[SinkNode]] = {}
    for node in nodes:
        if isinstance(node, SinkNode):
            for ref in node.topic_refs():
                if ref in read:
                    writers.setdefault(ref, []).append(node)
    found: dict[TopicRef, StreamPartitioner | None] = dict.fromkeys(read)
    for ref, sinks in writers.items():
        if len({id(sink.partitioner) for sink in sinks}) > 1:
            listing = ", ".join(f"{s.name} ({partitioner_name(s.partitioner)})" for s in sinks)
            msg = (
                f"topic {ref.name!r} is written with different partitioners ({listing}), and "
                "this app reads it: a key could land in several partitions"
            )
            raise TopologyError(msg)
        found[ref] = sinks[0].partitioner
    return found


def check_copartitioned(nodes: Sequence[Node], subtopologies: Iterable[SubTopology]) -> None:
    """Raise :class:`TopologyError` if a sub-topology reads topics written with different
    partitioners: its joins and aggregations would pair the wrong keys."""
    partitioners = source_partitioners(nodes)
    for sub in subtopologies:
        used = {id(partitioners[ref]) for ref in sub.source_topics}
        if len(used) <= 1:
            continue
        listing = ", ".join(
            f"{ref.name} ({partitioner_name(partitioners[ref])})" for ref in sub.source_topics
        )
        msg = (
            f"sub-topology {sub.id} reads topics partitioned by different partitioners "
            f"({listing}); a task reads the same partition of each, so joining or "
            "aggregating them would pair the wrong keys: partition every input with the "
            "same partitioner (repartition(name=..., partitioner=...))"
        )
        raise TopologyError(msg)


__all__ = ["check_copartitioned", "partitioner_name", "source_partitioners"]
