"""Streams: unbounded sequences of key/value records.

``Stream[K, V]`` carries the static types of its keys and values, so that a type checker
checks the functions given to each step. Joins are built in :mod:`streamer.dsl.stream_joins`,
grouping leads to :mod:`streamer.dsl.grouped`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic

from streamer.dsl import branching, sinks, stream_joins
from streamer.dsl._types import K2, V2, VO, VR, K, V
from streamer.errors import TopologyError
from streamer.processors import stateless as sl
from streamer.processors.api import Processor, RecordContext
from streamer.serde import Serde
from streamer.topology.windows import JoinWindows

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.grouped import GroupedStream
    from streamer.dsl.stream_joins import StreamJoined
    from streamer.dsl.table import GlobalTable, Table


class Stream(Generic[K, V]):
    """A stream of records. Every operation returns a new Stream; nothing runs until built.

    ``node`` names the step whose output this is. ``key_changed`` is True after an operation
    that may change keys (``map``, ``select_key``, ``flat_map``, ``process``): grouping or
    joining then repartitions, so that equal keys meet in one task.
    """

    def __init__(
        self,
        graph: GraphBuilder,
        node: str,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        *,
        key_changed: bool = False,
    ) -> None:
        self._graph = graph
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.key_changed = key_changed

    def _then(
        self,
        operation: str,
        factory: Callable[[], Processor],
        *,
        name: str | None,
        key_changed: bool | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        stores: Iterable[str] = (),
        revalues: bool = False,
    ) -> Stream[Any, Any]:
        """Add a step after this one. Steps that change keys (``key_changed``) or values
        (``revalues``) fall back to the builder's default serdes unless given one."""
        graph = self._graph
        rekeys = bool(key_changed)
        node = graph.add_processor(operation, [self.node], factory, name=name, stores=list(stores))
        return Stream(
            graph,
            node,
            key_serde or (graph.default_key_serde if rekeys else self.key_serde),
            value_serde or (graph.default_value_serde if revalues else self.value_serde),
            key_changed=self.key_changed if key_changed is None else key_changed,
        )

    def _like(self, node: str, *, key_changed: bool | None = None) -> Stream[K, V]:
        """The output of ``node``, a step that passes this stream's records on unchanged."""
        changed = self.key_changed if key_changed is None else key_changed
        return Stream(self._graph, node, self.key_serde, self.value_serde, key_changed=changed)

    # --- stateless ------------------------------------------------------------------------

    def filter(self, predicate: Callable[[K, V], bool], *, name: str | None = None) -> Stream[K, V]:
        """Keep records for which ``predicate(key, value)`` is true."""
        return self._then("filter", lambda: sl.FilterProcessor(predicate), name=name)

    def filter_not(
        self, predicate: Callable[[K, V], bool], *, name: str | None = None
    ) -> Stream[K, V]:
        """Drop records for which ``predicate(key, value)`` is true."""
        return self._then(
            "filter-not", lambda: sl.FilterProcessor(predicate, negate=True), name=name
        )

    def map(
        self,
        fn: Callable[[K, V], tuple[K2, V2]],
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream[K2, V2]:
        """``fn(key, value) -> (new_key, new_value)``. Marks the key as changed."""
        return self._then(
            "map",
            lambda: sl.MapProcessor(fn),
            name=name,
            key_changed=True,
            revalues=True,
            key_serde=key_serde,
            value_serde=value_serde,
        )

    def map_values(
        self,
        fn: Callable[[V], V2],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream[K, V2]:
        """``fn(value) -> new_value``; the key is kept."""
        return self._then(
            "map-values",
            lambda: sl.MapValuesProcessor(fn),
            name=name,
            value_serde=value_serde,
            revalues=True,
        )

    def map_values_with_key(
        self,
        fn: Callable[[K, V], V2],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream[K, V2]:
        """``fn(key, value) -> new_value``; the key is kept."""
        return self._then(
            "map-values",
            lambda: sl.MapValuesProcessor(fn, with_key=True),
            name=name,
            value_serde=value_serde,
            revalues=True,
        )

    def flat_map(
        self,
        fn: Callable[[K, V], Iterable[tuple[K2, V2]]],
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream[K2, V2]:
        """``fn(key, value) -> iterable of (key, value)``. Marks the key as changed."""
        return self._then(
            "flat-map",
            lambda: sl.FlatMapProcessor(fn),
            name=name,
            key_changed=True,
            revalues=True,
            key_serde=key_serde,
            value_serde=value_serde,
        )

    def flat_map_values(
        self,
        fn: Callable[[V], Iterable[V2]],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream[K, V2]:
        """``fn(value) -> iterable of values``, each with the record's key."""
        return self._then(
            "flat-map-values",
            lambda: sl.FlatMapValuesProcessor(fn),
            name=name,
            value_serde=value_serde,
            revalues=True,
        )

    def peek(self, fn: Callable[[K, V], None], *, name: str | None = None) -> Stream[K, V]:
        """Call ``fn(key, value)`` for its side effect; the record passes unchanged."""
        return self._then("peek", lambda: sl.PeekProcessor(fn), name=name)

    def select_key(
        self,
        fn: Callable[[K, V], K2],
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
    ) -> Stream[K2, V]:
        """``fn(key, value) -> new_key``. Marks the key as changed."""
        return self._then(
            "select-key",
            lambda: sl.SelectKeyProcessor(fn),
            name=name,
            key_changed=True,
            key_serde=key_serde,
        )

    def branch(
        self,
        branches: Mapping[str, Callable[[K, V], bool]],
        *,
        default: str | None = None,
        name: str | None = None,
    ) -> dict[str, Stream[K, V]]:
        """Split by predicates, tried in order; a record goes to the first that holds.

        Returns one stream per branch name (plus ``default``, which takes records no
        predicate matched). Branch step names are ``<name>-<branch>``.
        """
        return branching.branch(self, branches, default, name)

    def merge(self, *others: Stream[K, V], name: str | None = None) -> Stream[K, V]:
        """One stream with the records of this and the other streams, in arrival order."""
        node = self._graph.merge_nodes([self.node, *(o.node for o in others)], name)
        changed = self.key_changed or any(o.key_changed for o in others)
        return self._like(node, key_changed=changed)

    def process(
        self,
        factory: Callable[[], Processor],
        *,
        name: str,
        stores: Iterable[str] = (),
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        keeps_key: bool = False,
    ) -> Stream[Any, Any]:
        """Run a user :class:`~streamer.processors.api.Processor` with access to ``stores``.

        ``factory()`` is called once per task. What the processor forwards flows on; its
        types are not known statically. ``keeps_key=True`` promises that it forwards each
        record under the key it received, so grouping or joining afterwards does not
        repartition (as after ``map_values``); otherwise keys count as changed.
        """
        return self._then(
            "process",
            factory,
            name=name,
            stores=stores,
            key_serde=key_serde,
            value_serde=value_serde,
            key_changed=None if keeps_key else True,
            revalues=True,
        )

    def to(
        self,
        topic: str | Callable[[K, V, RecordContext], str],
        *,
        topics: Iterable[str] | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        partitioner: Callable[[K, V, int], int] | None = None,
        name: str | None = None,
    ) -> None:
        """Write every record to ``topic``; or, given a topic extractor
        ``topic(key, value, context) -> name``, each record to the topic it names, which must
        be one of ``topics`` (all checked to exist at start). ``partitioner(key, value,
        partition_count) -> partition`` picks partitions from the decoded key and value;
        by default the producer's murmur2 of the key bytes does."""
        sinks.to(self, topic, topics, key_serde, value_serde, partitioner, name)

    # --- repartitioning and grouping --------------------------------------------------------

    def repartition(
        self, *, name: str, partitioner: Callable[[K, V, int], int] | None = None
    ) -> Stream[K, V]:
        """Send records through ``<app_id>-<name>-repartition`` so that each key lands in the
        task that owns it: the partition ``partitioner(key, value, partition_count)`` picks,
        by default murmur2 of the key bytes. A partitioner that depends on more than the key
        splits a key over tasks; inputs joined downstream need the same partitioner."""
        sinks.check_partitioner(partitioner)
        self._graph.claim(name)
        graph = self._graph
        source = graph.repartition(self.node, name, self.key_serde, self.value_serde, partitioner)
        return self._like(source, key_changed=False)

    def group_by_key(
        self,
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GroupedStream[K, V]:
        """Group by the current key; repartitions (and needs ``name``) if the key changed."""
        from streamer.dsl.grouped import GroupedStream

        stream: Stream[K, V] = self
        if key_serde or value_serde:
            stream = Stream(
                self._graph,
                self.node,
                key_serde or self.key_serde,
                value_serde or self.value_serde,
                key_changed=self.key_changed,
            )
        if stream.key_changed:
            if name is None:
                msg = (
                    f"group_by_key() after a key-changing step ({self.node!r}) repartitions; "
                    "give it a stable name=..."
                )
                raise TopologyError(msg)
            stream = stream.repartition(name=name)
        return GroupedStream(stream, self._graph)

    def group_by(
        self,
        fn: Callable[[K, V], K2],
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GroupedStream[K2, V]:
        """Re-key with ``fn(key, value) -> new_key`` and repartition under ``name``."""
        keyed = self.select_key(fn, key_serde=key_serde)
        return keyed.group_by_key(name=name, value_serde=value_serde)

    # --- joins ----------------------------------------------------------------------------------

    def join(
        self,
        other: Table[K, VO] | GlobalTable[Any, VO] | Stream[K, VO],
        joiner: Callable[[V, VO], VR],
        *,
        name: str,
        windows: JoinWindows | None = None,
        key_selector: Callable[[K, V], Any] | None = None,
        grace: int | None = None,
        value_serde: Serde[Any] | None = None,
        stream_joined: StreamJoined | None = None,
    ) -> Stream[K, VR]:
        """Inner join with a table, a global table (``key_selector`` picks its key), or a
        stream (``windows`` required). A versioned table is read as of each record's
        timestamp, after ``grace`` ms. Joined values use ``value_serde``, else the builder's
        default value serde; ``stream_joined`` sets a stream-stream join's store serdes."""
        return stream_joins.join(
            self,
            other,
            joiner,
            "inner",
            name,
            windows,
            key_selector,
            grace,
            value_serde=value_serde,
            stream_joined=stream_joined,
        )

    def left_join(
        self,
        other: Table[K, VO] | GlobalTable[Any, VO] | Stream[K, VO],
        joiner: Callable[[V, VO | None], VR],
        *,
        name: str,
        windows: JoinWindows | None = None,
        key_selector: Callable[[K, V], Any] | None = None,
        grace: int | None = None,
        value_serde: Serde[Any] | None = None,
        stream_joined: StreamJoined | None = None,
    ) -> Stream[K, VR]:
        """Like :meth:`join`, but records without a partner still flow, joined with None."""
        return stream_joins.join(
            self,
            other,
            joiner,
            "left",
            name,
            windows,
            key_selector,
            grace,
            value_serde=value_serde,
            stream_joined=stream_joined,
        )

    def outer_join(
        self,
        other: Stream[K, VO],
        joiner: Callable[[V | None, VO | None], VR],
        *,
        name: str,
        windows: JoinWindows,
        value_serde: Serde[Any] | None = None,
        stream_joined: StreamJoined | None = None,
    ) -> Stream[K, VR]:
        """Windowed stream-stream outer join: unmatched records of either side flow too."""
        return stream_joins.join(
            self,
            other,
            joiner,
            "outer",
            name,
            windows,
            None,
            value_serde=value_serde,
            stream_joined=stream_joined,
        )
