"""The plumbing under the DSL: the graph of steps and stores that ``build()`` freezes.

Internal. :class:`GraphBuilder` is what :class:`~streamer.dsl.stream.Stream`,
:class:`~streamer.dsl.table.Table` and the grouped streams call to add steps; users only see
it through :class:`~streamer.dsl.builder.StreamsBuilder`.

Invariants kept here:

* every step name and every store name is legal (:func:`check_name`) and unique;
* a step is added after its parents, so the node list is in topological order;
* the node list only grows: a step, once added, is never removed or renamed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.stateless import PassThroughProcessor
from streamer.serde import JsonSerde, Serde
from streamer.topology.graph import Topology, split_subtopologies
from streamer.topology.nodes import (
    GlobalTableSpec,
    Node,
    ProcessorNode,
    SinkNode,
    SourceNode,
    StoreKind,
    StoreSpec,
    StreamPartitioner,
    TopicExtractor,
    TopicRef,
)
from streamer.topology.partitioning import check_copartitioned

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_name(name: str) -> None:
    """Step names become topic and directory names: Kafka's legal topic characters only."""
    if not name or not set(name) <= _NAME_CHARS or len(name) > 200:
        msg = (
            f"invalid step name {name!r}: use 1-200 characters from [a-zA-Z0-9._-], "
            "since it becomes part of topic and directory names"
        )
        raise TopologyError(msg)


class GraphBuilder:
    """The steps, stores and global tables of one topology under construction.

    ``default_key_serde`` and ``default_value_serde`` serve topics and stores that do not name
    their own, and the values of steps that change keys or values.
    """

    def __init__(self, default_key_serde: Serde[Any], default_value_serde: Serde[Any]) -> None:
        self.default_key_serde = default_key_serde
        self.default_value_serde = default_value_serde
        self._nodes: list[Node] = []
        self._stores: list[StoreSpec] = []
        self._global_tables: list[GlobalTableSpec] = []
        self._names: set[str] = set()
        self._counter = 0

    # --- naming -------------------------------------------------------------------------------

    def generated_name(self, operation: str) -> str:
        """A fresh ``<operation>-<nnnn>`` name that no step has claimed yet."""
        self._counter += 1
        name = f"{operation}-{self._counter:04d}"
        while name in self._names:
            self._counter += 1
            name = f"{operation}-{self._counter:04d}"
        return name

    def claim(self, name: str) -> str:
        """Reserve ``name`` for one step; a second claim of the same name is an error."""
        check_name(name)
        if name in self._names:
            msg = f"duplicate step name {name!r}: every step needs a unique name"
            raise TopologyError(msg)
        self._names.add(name)
        return name

    # --- steps --------------------------------------------------------------------------------

    def add_node(self, node: Node) -> str:
        """Add ``node``, whose parents must already be in the graph; returns its name."""
        self.claim(node.name)
        for parent in node.parents:
            if parent not in self._names:
                msg = f"step {node.name!r} names an unknown parent {parent!r}"
                raise TopologyError(msg)
        self._nodes.append(node)
        return node.name

    def add_processor(
        self,
        operation: str,
        parents: Sequence[str],
        factory: Callable[[], Processor],
        *,
        name: str | None = None,
        stores: Sequence[str] = (),
        detail: str = "",
    ) -> str:
        """Add a processor step after ``parents``; ``name`` defaults to a generated one."""
        node = ProcessorNode(
            name=self.generated_name(operation) if name is None else name,
            parents=tuple(parents),
            factory=factory,
            operation=operation,
            stores=tuple(stores),
            detail=detail,
        )
        return self.add_node(node)

    def merge_nodes(self, parents: Iterable[str], name: str | None) -> str:
        """One step that forwards the records of all ``parents``."""
        return self.add_processor("merge", list(parents), PassThroughProcessor, name=name)

    def sink(
        self,
        parent: str,
        topic: TopicRef | None,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        name: str | None = None,
        *,
        partitioner: StreamPartitioner | None = None,
        topic_extractor: TopicExtractor | None = None,
        declared_topics: Sequence[TopicRef] = (),
    ) -> str:
        """Write the records of ``parent`` to ``topic``, or with ``topic_extractor`` to the
        one of ``declared_topics`` it picks per record."""
        return self.add_node(
            SinkNode(
                name=self.generated_name("sink") if name is None else name,
                topic=topic,
                parents=(parent,),
                key_serde=key_serde,
                value_serde=value_serde,
                topic_extractor=topic_extractor,
                declared_topics=tuple(declared_topics),
                partitioner=partitioner,
            )
        )

    def repartition(
        self,
        parent: str,
        name: str,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        partitioner: StreamPartitioner | None = None,
    ) -> str:
        """Route records through ``<app_id>-<name>-repartition``; returns the new source."""
        topic = TopicRef(f"{name}-repartition", internal=True)
        sink_name = f"{name}-repartition-sink"
        self.sink(parent, topic, key_serde, value_serde, sink_name, partitioner=partitioner)
        return self.add_node(
            SourceNode(
                name=f"{name}-repartition-source",
                topics=(topic,),
                key_serde=key_serde,
                value_serde=value_serde,
            )
        )

    # --- stores -------------------------------------------------------------------------------

    def _check_store_name(self, name: str) -> None:
        check_name(name)
        if any(s.name == name for s in self._stores) or any(
            g.name == name for g in self._global_tables
        ):
            msg = f"duplicate store name {name!r}"
            raise TopologyError(msg)

    def add_store(
        self,
        name: str,
        kind: StoreKind = StoreKind.KEY_VALUE,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        changelog: bool = True,
        history_retention: int | None = None,
        ttl_ms: int | None = None,
    ) -> str:
        """Declare a state store; unnamed serdes are JSON. A ``VERSIONED`` store, and only
        one, takes a ``history_retention`` (ms); a ``KEY_VALUE_TTL`` store, and only one,
        a ``ttl_ms``."""
        self._check_store_name(name)
        if (kind is StoreKind.VERSIONED) != (history_retention is not None):
            msg = f"store {name!r}: a history retention goes with a versioned store, only"
            raise TopologyError(msg)
        if (kind is StoreKind.KEY_VALUE_TTL) != (ttl_ms is not None):
            msg = f"store {name!r}: a time to live goes with a key-value-ttl store, only"
            raise TopologyError(msg)
        self._stores.append(
            StoreSpec(
                name=name,
                kind=kind,
                key_serde=key_serde or JsonSerde(),
                value_serde=value_serde or JsonSerde(),
                changelog=changelog,
                history_retention=history_retention,
                ttl_ms=ttl_ms,
            )
        )
        return name

    def add_global_table(self, spec: GlobalTableSpec) -> str:
        """Declare a global table; its store name shares the namespace of the stores."""
        self._check_store_name(spec.name)
        self._global_tables.append(spec)
        return spec.name

    # --- freezing -----------------------------------------------------------------------------

    def _check_stores(self) -> None:
        known = {s.name for s in self._stores} | {g.name for g in self._global_tables}
        for node in self._nodes:
            if isinstance(node, ProcessorNode):
                for store in node.stores:
                    if store not in known:
                        msg = f"step {node.name!r} uses store {store!r}, which is not declared"
                        raise TopologyError(msg)

    def _check_sources(self) -> None:
        children = {p for n in self._nodes for p in n.parents}
        readers: dict[TopicRef, str] = {}
        for node in self._nodes:
            if not isinstance(node, SourceNode):
                continue
            if node.name not in children:
                msg = f"source {node.name!r} has no downstream step"
                raise TopologyError(msg)
            for topic in node.topics:
                if topic in readers:
                    msg = (
                        f"topic {topic.name!r} is read by both {readers[topic]!r} and "
                        f"{node.name!r}: read it once and reuse that stream or table"
                    )
                    raise TopologyError(msg)
                readers[topic] = node.name

    def build(self) -> Topology:
        """Validate and freeze the graph: stores declared, sources used, topics read once,
        the inputs of each sub-topology partitioned by one partitioner."""
        if not self._nodes:
            msg = "the topology is empty: add at least one stream() or table()"
            raise TopologyError(msg)
        self._check_stores()
        self._check_sources()
        nodes = tuple(self._nodes)
        global_names = frozenset(g.name for g in self._global_tables)
        subtopologies = split_subtopologies(nodes, global_names)
        check_copartitioned(nodes, subtopologies)
        return Topology(
            nodes=nodes,
            stores=tuple(self._stores),
            global_tables=tuple(self._global_tables),
            subtopologies=subtopologies,
        )
