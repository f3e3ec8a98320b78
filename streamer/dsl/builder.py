"""The streams DSL: :class:`StreamsBuilder` makes streams and tables, and ``build()`` freezes
them into a :class:`~streamer.topology.graph.Topology`.

Naming: stateless steps get generated names (``filter-0003``); stateful steps (aggregations,
joins, repartitions, tables) take a ``name`` from the user, because that name fixes the
store, the changelog topic and the repartition topic. Renaming it abandons that state.

The builder's methods are the user's entry points; the graph plumbing that streams and tables
call to add their steps lives in :mod:`streamer.dsl._graph`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamer.dsl._graph import GraphBuilder
from streamer.errors import TopologyError
from streamer.processors.tables import MaterializeProcessor, StoreView
from streamer.processors.versioned import VersionedMaterializeProcessor
from streamer.serde import JsonSerde, Serde, StringSerde
from streamer.topology.graph import Topology
from streamer.topology.history import HistoryRetention
from streamer.topology.nodes import (
    GlobalTableSpec,
    SourceNode,
    StoreKind,
    TimestampExtractor,
    TopicRef,
)

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import GlobalTable, Table

__all__ = ["StreamsBuilder"]


class StreamsBuilder:
    """Collects the steps of a topology. ``build()`` validates and freezes it.

    ``key_serde`` and ``value_serde`` are the defaults for topics and stores that do not name
    their own. Streams and tables made here add their steps to this builder's graph.
    """

    def __init__(
        self,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> None:
        self._graph = GraphBuilder(key_serde or StringSerde(), value_serde or JsonSerde())

    def stream(
        self,
        topics: str | Sequence[str],
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        timestamp_extractor: TimestampExtractor | None = None,
        name: str | None = None,
    ) -> Stream[Any, Any]:
        """A stream of the records of one or more topics.

        Each topic is read by one ``stream()`` or ``table()`` only; reuse the returned stream
        to process it in several ways.
        """
        from streamer.dsl.stream import Stream

        topic_list = [topics] if isinstance(topics, str) else list(topics)
        if not topic_list:
            msg = "stream() needs at least one topic"
            raise TopologyError(msg)
        graph = self._graph
        ks = key_serde or graph.default_key_serde
        vs = value_serde or graph.default_value_serde
        source = SourceNode(
            name=graph.generated_name("source") if name is None else name,
            topics=tuple(TopicRef(t) for t in topic_list),
            key_serde=ks,
            value_serde=vs,
            timestamp_extractor=timestamp_extractor,
        )
        return Stream(graph, graph.add_node(source), ks, vs)

    def table(
        self,
        topic: str,
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        timestamp_extractor: TimestampExtractor | None = None,
        versioned: HistoryRetention | None = None,
    ) -> Table[Any, Any]:
        """A table holding the latest value per key of a (compacted) topic.

        ``name`` (default: the topic name) names its store. A None value deletes the key.
        With ``versioned=HistoryRetention(ms)`` the store also keeps each key's earlier
        values for ``ms`` of stream time, and a stream joined with the table looks it up as
        of each record's timestamp (see :mod:`streamer.processors.versioned`).
        """
        from streamer.dsl.table import Table

        graph = self._graph
        store = topic if name is None else name
        ks = key_serde or graph.default_key_serde
        vs = value_serde or graph.default_value_serde
        source = graph.add_node(
            SourceNode(
                name=graph.generated_name("table-source"),
                topics=(TopicRef(topic),),
                key_serde=ks,
                value_serde=vs,
                timestamp_extractor=timestamp_extractor,
            )
        )
        if versioned is not None:
            return self._versioned_table(source, store, ks, vs, versioned)
        graph.add_store(store, key_serde=ks, value_serde=vs)
        node = graph.add_processor(
            "table",
            [source],
            lambda: MaterializeProcessor(store),
            name=store,
            stores=[store],
        )
        return Table(graph, node, StoreView(store), ks, vs)

    def _versioned_table(
        self,
        source: str,
        store: str,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        history: HistoryRetention,
    ) -> Table[Any, Any]:
        from streamer.dsl.table import Table

        given: object = history  # user code may pass anything
        if not isinstance(given, HistoryRetention):
            msg = f"table(versioned=...) takes a HistoryRetention, got {history!r}"
            raise TopologyError(msg)
        graph = self._graph
        graph.add_store(
            store,
            StoreKind.VERSIONED,
            key_serde=key_serde,
            value_serde=value_serde,
            history_retention=history.ms,
        )
        node = graph.add_processor(
            "table",
            [source],
            lambda: VersionedMaterializeProcessor(store),
            name=store,
            stores=[store],
            detail=f"versioned, {history.describe()}",
        )
        view = StoreView(store)
        return Table(graph, node, view, key_serde, value_serde, history=(store, history))

    def global_table(
        self,
        topic: str,
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GlobalTable[Any, Any]:
        """Reference data: every task can look up any key of the whole topic."""
        from streamer.dsl.table import GlobalTable

        graph = self._graph
        ks = key_serde or graph.default_key_serde
        vs = value_serde or graph.default_value_serde
        store = graph.add_global_table(
            GlobalTableSpec(topic if name is None else name, topic, ks, vs)
        )
        return GlobalTable(store, ks, vs)

    def add_store(
        self,
        name: str,
        kind: StoreKind = StoreKind.KEY_VALUE,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        changelog: bool = True,
        history: HistoryRetention | None = None,
    ) -> str:
        """Declare a state store for the processor API; unnamed serdes are JSON. A
        ``StoreKind.VERSIONED`` store needs its ``history`` retention, other kinds none.

        Returns ``name``, which a step lists in ``process(..., stores=[name])`` to use it.
        """
        return self._graph.add_store(
            name,
            kind,
            key_serde=key_serde,
            value_serde=value_serde,
            changelog=changelog,
            history_retention=None if history is None else history.ms,
        )

    def build(self) -> Topology:
        """Validate and freeze the topology."""
        return self._graph.build()
