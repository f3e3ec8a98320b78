"""The built topology: nodes, stores and global tables, split into sub-topologies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streamer.errors import TopologyError
from streamer.topology.nodes import (
    GlobalTableSpec,
    Node,
    ProcessorNode,
    SinkNode,
    SourceNode,
    StoreSpec,
    SubTopology,
    TopicRef,
)


@dataclass(frozen=True, slots=True)
class Topology:
    """An immutable, validated processing graph. Build one with :class:`streamer.StreamsBuilder`.

    Invariants: node names are unique; every parent is listed before its children; every store
    a processor names exists; every node belongs to exactly one sub-topology.
    """

    nodes: tuple[Node, ...]
    stores: tuple[StoreSpec, ...]
    global_tables: tuple[GlobalTableSpec, ...]
    subtopologies: tuple[SubTopology, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        msg = f"no step named {name!r} in this topology"
        raise KeyError(msg)

    def store(self, name: str) -> StoreSpec:
        for spec in self.stores:
            if spec.name == name:
                return spec
        msg = f"no store named {name!r} in this topology"
        raise KeyError(msg)

    def children(self, name: str) -> list[str]:
        return [n.name for n in self.nodes if name in n.parents]

    def source_topics(self) -> set[TopicRef]:
        return {t for s in self.subtopologies for t in s.source_topics}

    def sink_topics(self) -> set[TopicRef]:
        return {t for n in self.nodes if isinstance(n, SinkNode) for t in n.topic_refs()}

    def internal_topics(self, app_id: str) -> dict[str, str]:
        """Every internal topic, resolved for ``app_id``, mapped to its role."""
        topics: dict[str, str] = {}
        for ref in self.source_topics() | self.sink_topics():
            if ref.internal:
                topics[ref.resolve(app_id)] = "repartition"
        for spec in self.stores:
            if spec.changelog:
                topics[spec.changelog_topic(app_id)] = "changelog"
        return topics

    def internal_partition_counts(
        self, user_counts: Mapping[str, int], app_id: str
    ) -> dict[str, int]:
        """The partition count of every internal topic, resolved for ``app_id``.

        ``user_counts`` maps the user topics the app reads to their partition counts. An
        internal topic read by a sub-topology that also reads user topics gets their largest
        count, so that it is co-partitioned with them (a repartitioned stream joining a
        table; a foreign-key join's subscriptions, partitioned like the right table, and its
        responses, like the left). Any other gets the largest count of the user stream
        sources, or 1 when the app has none.
        """
        default = max(
            (user_counts[ref.name] for ref in self.source_topics() if not ref.internal),
            default=1,
        )
        counts: dict[str, int] = {}
        for sub in self.subtopologies:
            user = [user_counts[ref.name] for ref in sub.source_topics if not ref.internal]
            for ref in sub.source_topics:
                if ref.internal:
                    counts[ref.resolve(app_id)] = max(user, default=default)
        for ref in self.sink_topics():
            if ref.internal:
                counts.setdefault(ref.resolve(app_id), default)
        return counts

    def subtopology_for(self, topic: str, app_id: str) -> SubTopology | None:
        for sub in self.subtopologies:
            if any(ref.resolve(app_id) == topic for ref in sub.source_topics):
                return sub
        return None

    def validate_partitions(self, partition_counts: Mapping[str, int], app_id: str) -> None:
        """Check that the source topics of each sub-topology are co-partitioned.

        ``partition_counts`` maps resolved topic names to partition counts. Topics missing from
        it are not checked. One task reads the same partition of every source topic of its
        sub-topology, so a join or merge of inputs with different partition counts would pair
        the wrong keys.
        """
        for sub in self.subtopologies:
            counts = {
                ref.resolve(app_id): partition_counts[ref.resolve(app_id)]
                for ref in sub.source_topics
                if ref.resolve(app_id) in partition_counts
            }
            if len(set(counts.values())) > 1:
                listing = ", ".join(f"{t}={n}" for t, n in sorted(counts.items()))
                msg = (
                    f"sub-topology {sub.id} reads topics that are not co-partitioned "
                    f"({listing}); joined or merged inputs need the same partition count"
                )
                raise TopologyError(msg)

    def describe(self, app_id: str = "<app-id>") -> str:
        """A readable listing of sub-topologies, their nodes, stores and internal topics."""
        lines = ["Topologies:"]
        for sub in self.subtopologies:
            lines.append(f"  Sub-topology: {sub.id}")
            for name in sub.nodes:
                node = self.node(name)
                lines.append(f"    {node.describe()}")
                children = self.children(name)
                if children:
                    lines.append(f"      --> {', '.join(children)}")
        if self.global_tables:
            lines.append("  Global tables:")
            for table in self.global_tables:
                lines.append(f"    {table.name} (topic: {table.topic})")
        if self.stores:
            lines.append("  Stores:")
            for spec in self.stores:
                changelog = spec.changelog_topic(app_id) if spec.changelog else "no changelog"
                lines.append(f"    {spec.name} [{spec.describe_kind()}] changelog: {changelog}")
        internal = self.internal_topics(app_id)
        if internal:
            lines.append("  Internal topics:")
            for topic, role in sorted(internal.items()):
                lines.append(f"    {topic} ({role})")
        return "\n".join(lines)


def split_subtopologies(
    nodes: tuple[Node, ...], global_stores: frozenset[str] = frozenset()
) -> tuple[SubTopology, ...]:
    """Group nodes connected by parent edges or by a shared store (union-find).

    Internal topics do not connect: a repartition sink ends one sub-topology and the source
    reading it starts another. Global stores do not connect either: every task sees them.
    """
    parent: dict[str, str] = {n.name: n.name for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    store_owner: dict[str, str] = {}
    for node in nodes:
        for p in node.parents:
            union(p, node.name)
        if isinstance(node, ProcessorNode):
            for store in node.stores:
                if store in global_stores:
                    continue
                if store in store_owner:
                    union(store_owner[store], node.name)
                else:
                    store_owner[store] = node.name

    groups: dict[str, list[Node]] = {}
    for node in nodes:
        groups.setdefault(find(node.name), []).append(node)
    result = []
    for index, members in enumerate(groups.values()):
        sources = tuple(t for n in members if isinstance(n, SourceNode) for t in n.topics)
        stores = tuple(
            dict.fromkeys(
                s
                for n in members
                if isinstance(n, ProcessorNode)
                for s in n.stores
                if s not in global_stores
            )
        )
        result.append(
            SubTopology(
                id=index,
                nodes=tuple(n.name for n in members),
                source_topics=sources,
                stores=stores,
                copartition_groups=(sources,) if len(sources) > 1 else (),
            )
        )
    return tuple(result)
