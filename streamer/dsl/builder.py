"""The streams DSL: :class:`StreamsBuilder` makes streams and tables, and ``build()`` freezes
them into a :class:`~streamer.topology.graph.Topology`.

Naming: stateless steps get generated names (``filter-0003``); stateful steps (aggregations,
joins, repartitions, tables) take a ``name`` from the user, because that name fixes the
store, the changelog topic and the repartition topic. Renaming it abandons that state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.stateless import PassThroughProcessor
from streamer.processors.tables import MaterializeProcessor, StoreView
from streamer.serde import JsonSerde, Serde, StringSerde
from streamer.topology.graph import Topology, split_subtopologies
from streamer.topology.nodes import (
    GlobalTableSpec,
    Node,
    ProcessorNode,
    SinkNode,
    SourceNode,
    StoreKind,
    StoreSpec,
    TimestampExtractor,
    TopicRef,
)

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import GlobalTable, Table

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_name(name: str) -> None:
    """Step names become topic and directory names: Kafka's legal topic characters only."""
    if not name or not set(name) <= _NAME_CHARS or len(name) > 200:
        msg = (
            f"invalid step name {name!r}: use 1-200 characters from [a-zA-Z0-9._-], "
            "since it becomes part of topic and directory names"
        )
        raise TopologyError(msg)


class StreamsBuilder:
    """Collects the steps of a topology. ``build()`` validates and freezes it.

    ``key_serde`` and ``value_serde`` are the defaults for topics and stores that do not name
    their own.
    """

    def __init__(
        self,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> None:
        self.default_key_serde: Serde[Any] = key_serde or StringSerde()
        self.default_value_serde: Serde[Any] = value_serde or JsonSerde()
        self._nodes: list[Node] = []
        self._stores: list[StoreSpec] = []
        self._global_tables: list[GlobalTableSpec] = []
        self._names: set[str] = set()
        self._counter = 0

    # --- naming and registration (used by the DSL classes) ------------------------------

    def generated_name(self, operation: str) -> str:
        self._counter += 1
        name = f"{operation}-{self._counter:04d}"
        while name in self._names:
            self._counter += 1
            name = f"{operation}-{self._counter:04d}"
        return name

    def claim(self, name: str) -> str:
        check_name(name)
        if name in self._names:
            msg = f"duplicate step name {name!r}: every step needs a unique name"
            raise TopologyError(msg)
        self._names.add(name)
        return name

    def add_node(self, node: Node) -> str:
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
        node = ProcessorNode(
            name=self.generated_name(operation) if name is None else name,
            parents=tuple(parents),
            factory=factory,
            operation=operation,
            stores=tuple(stores),
            detail=detail,
        )
        return self.add_node(node)

    def add_store(
        self,
        name: str,
        kind: StoreKind = StoreKind.KEY_VALUE,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        changelog: bool = True,
    ) -> str:
        """Declare a state store for the processor API (or for DSL steps)."""
        check_name(name)
        if any(s.name == name for s in self._stores) or any(
            g.name == name for g in self._global_tables
        ):
            msg = f"duplicate store name {name!r}"
            raise TopologyError(msg)
        self._stores.append(
            StoreSpec(
                name=name,
                kind=kind,
                key_serde=key_serde or JsonSerde(),
                value_serde=value_serde or JsonSerde(),
                changelog=changelog,
            )
        )
        return name

    # --- entry points ---------------------------------------------------------------------

    def stream(
        self,
        topics: str | Sequence[str],
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        timestamp_extractor: TimestampExtractor | None = None,
        name: str | None = None,
    ) -> Stream:
        """A stream of the records of one or more topics.

        Each topic is read by one ``stream()`` or ``table()`` only; reuse the returned stream
        to process it in several ways.
        """
        from streamer.dsl.stream import Stream

        topic_list = [topics] if isinstance(topics, str) else list(topics)
        if not topic_list:
            msg = "stream() needs at least one topic"
            raise TopologyError(msg)
        ks = key_serde or self.default_key_serde
        vs = value_serde or self.default_value_serde
        source = SourceNode(
            name=self.generated_name("source") if name is None else name,
            topics=tuple(TopicRef(t) for t in topic_list),
            key_serde=ks,
            value_serde=vs,
            timestamp_extractor=timestamp_extractor,
        )
        return Stream(self, self.add_node(source), ks, vs)

    def table(
        self,
        topic: str,
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        timestamp_extractor: TimestampExtractor | None = None,
    ) -> Table:
        """A table holding the latest value per key of a (compacted) topic.

        ``name`` (default: the topic name) names its store. A None value deletes the key.
        """
        from streamer.dsl.table import Table

        store = topic if name is None else name
        ks = key_serde or self.default_key_serde
        vs = value_serde or self.default_value_serde
        source = self.add_node(
            SourceNode(
                name=self.generated_name("table-source"),
                topics=(TopicRef(topic),),
                key_serde=ks,
                value_serde=vs,
                timestamp_extractor=timestamp_extractor,
            )
        )
        self.add_store(store, key_serde=ks, value_serde=vs)
        node = self.add_processor(
            "table",
            [source],
            lambda: MaterializeProcessor(store),
            name=store,
            stores=[store],
        )
        return Table(self, node, StoreView(store), ks, vs)

    def global_table(
        self,
        topic: str,
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GlobalTable:
        """Reference data: every task can look up any key of the whole topic."""
        from streamer.dsl.table import GlobalTable

        store = topic if name is None else name
        check_name(store)
        if any(g.name == store for g in self._global_tables) or any(
            s.name == store for s in self._stores
        ):
            msg = f"duplicate store name {store!r}"
            raise TopologyError(msg)
        ks = key_serde or self.default_key_serde
        vs = value_serde or self.default_value_serde
        self._global_tables.append(GlobalTableSpec(store, topic, ks, vs))
        return GlobalTable(store, ks, vs)

    def merge_nodes(self, parents: Iterable[str], name: str | None) -> str:
        return self.add_processor("merge", list(parents), PassThroughProcessor, name=name)

    def build(self) -> Topology:
        """Validate and freeze the topology."""
        if not self._nodes:
            msg = "the topology is empty: add at least one stream() or table()"
            raise TopologyError(msg)
        known_stores = {s.name for s in self._stores} | {g.name for g in self._global_tables}
        for node in self._nodes:
            if isinstance(node, ProcessorNode):
                for store in node.stores:
                    if store not in known_stores:
                        msg = f"step {node.name!r} uses store {store!r}, which is not declared"
                        raise TopologyError(msg)
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
        nodes = tuple(self._nodes)
        global_names = frozenset(g.name for g in self._global_tables)
        return Topology(
            nodes=nodes,
            stores=tuple(self._stores),
            global_tables=tuple(self._global_tables),
            subtopologies=split_subtopologies(nodes, global_names),
        )

    def sink(
        self,
        parent: str,
        topic: TopicRef,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        name: str | None = None,
    ) -> str:
        return self.add_node(
            SinkNode(
                name=self.generated_name("sink") if name is None else name,
                topic=topic,
                parents=(parent,),
                key_serde=key_serde,
                value_serde=value_serde,
            )
        )

    def repartition(
        self, parent: str, name: str, key_serde: Serde[Any], value_serde: Serde[Any]
    ) -> str:
        """Route records through ``<app_id>-<name>-repartition``; returns the new source."""
        topic = TopicRef(f"{name}-repartition", internal=True)
        self.sink(parent, topic, key_serde, value_serde, name=f"{name}-repartition-sink")
        return self.add_node(
            SourceNode(
                name=f"{name}-repartition-source",
                topics=(topic,),
                key_serde=key_serde,
                value_serde=value_serde,
            )
        )
