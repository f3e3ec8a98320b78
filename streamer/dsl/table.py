"""Tables: the latest value per key, as a changelog stream plus a lookup view.

``Table[K, V]`` and ``GlobalTable[K, V]`` carry the static types of keys and row values, so
that a type checker checks the functions given to each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, overload

from streamer.dsl._types import K2, KO, V2, VO, VR, K, V
from streamer.dsl.fk_join import foreign_key_join
from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.stateless import PassThroughProcessor
from streamer.processors.tables import (
    FilteredView,
    JoinedView,
    MappedView,
    StoreView,
    TableFilterProcessor,
    TableJoinProcessor,
    TableMapValuesProcessor,
    TableView,
)
from streamer.serde import BytesSerde, Serde
from streamer.topology.history import HistoryRetention

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.grouped_table import GroupedTable
    from streamer.dsl.stream import Stream
    from streamer.processors.suppress import WhenFull


class Table(Generic[K, V]):
    """A table. Its updates flow downstream as records (a None value is a deletion), and
    its ``view`` answers lookups for joins. Windowed aggregates have no view.

    ``V`` is the type of a row's value; deletions are not part of it.
    """

    def __init__(
        self,
        graph: GraphBuilder,
        node: str,
        view: TableView | None,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        *,
        windowed: bool = False,
        history: tuple[str, HistoryRetention] | None = None,
    ) -> None:
        self._graph = graph
        self.node = node
        self._view = view
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.windowed = windowed
        self.history = history
        """For a versioned table (and its ``map_values``/``filter``): the versioned store
        its view reads, with its retention; stream joins then look rows up as of a time."""

    @property
    def view(self) -> TableView:
        if self._view is None:
            msg = f"the windowed table from {self.node!r} cannot be looked up or joined"
            raise TopologyError(msg)
        return self._view

    def _derive(
        self,
        operation: str,
        factory: Callable[[], Processor],
        view: TableView | None,
        name: str | None,
        value_serde: Serde[Any],
    ) -> Table[Any, Any]:
        node = self._graph.add_processor(operation, [self.node], factory, name=name)
        return Table(
            self._graph,
            node,
            view,
            self.key_serde,
            value_serde,
            windowed=self.windowed,
            history=self.history,
        )

    def map_values(
        self,
        fn: Callable[[V], V2],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Table[K, V2]:
        """``fn(value) -> new_value`` for every row; deletions stay deletions.

        The new values use ``value_serde``, else the builder's default value serde (as for
        :meth:`Stream.map_values`): the old serde may not fit them.
        """
        view = None if self._view is None else MappedView(self._view, fn)
        return self._derive(
            "table-map-values",
            lambda: TableMapValuesProcessor(fn),
            view,
            name,
            value_serde or self._graph.default_value_serde,
        )

    def filter(self, predicate: Callable[[K, V], bool], *, name: str | None = None) -> Table[K, V]:
        """Rows for which ``predicate(key, value)`` holds; others read as absent."""
        view = None if self._view is None else FilteredView(self._view, predicate)
        return self._derive(
            "table-filter", lambda: TableFilterProcessor(predicate), view, name, self.value_serde
        )

    def to_stream(self, *, name: str | None = None) -> Stream[K, V]:
        """The table's updates as a stream.

        Deletions arrive as None values, which ``V`` does not show: a table fed by tombstones
        or filtered rows should be read with that in mind.
        """
        from streamer.dsl.stream import Stream

        node = self._graph.add_processor("to-stream", [self.node], PassThroughProcessor, name=name)
        return Stream(self._graph, node, self.key_serde, self.value_serde)

    def group_by(
        self,
        selector: Callable[[K, V], tuple[K2, V2]],
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GroupedTable[K2, V2]:
        """Re-group rows by ``selector(key, value) -> (group, value)`` through
        ``<app_id>-<name>-repartition``, for aggregations with an adder and a subtractor.

        A row that changes subtracts its old value from its old group and adds its new value
        to its new group; a deletion subtracts. Each row's last selection is kept in the
        store ``<name>-prior``. ``key_serde`` and ``value_serde`` (default: the builder's)
        encode the groups and selected values.
        """
        from streamer.dsl.grouped_table import GroupedTable
        from streamer.processors.grouped_tables import (
            ChangeSerde,
            PairSerde,
            TableGroupByProcessor,
        )

        graph = self._graph
        graph.claim(name)
        group_serde = key_serde or graph.default_key_serde
        selected_serde = value_serde or graph.default_value_serde
        prior = graph.add_store(
            f"{name}-prior",
            key_serde=self.key_serde,
            value_serde=PairSerde(group_serde, selected_serde),
        )
        select = graph.add_processor(
            "table-group-by",
            [self.node],
            lambda: TableGroupByProcessor(prior, selector, group_serde),
            name=f"{name}-select",
            stores=[prior],
        )
        source = graph.repartition(select, name, group_serde, ChangeSerde(selected_serde))
        return GroupedTable(graph, source, group_serde, selected_serde)

    def suppress(
        self,
        *,
        until_time_limit: int,
        name: str,
        max_records: int | None = None,
        max_bytes: int | None = None,
        when_full: WhenFull | None = None,
    ) -> Table[K, V]:
        """Per key, hold the latest update and forward it ``until_time_limit`` ms (of stream
        time) after the key's first held update; see :mod:`streamer.processors.suppress`.

        ``max_records`` and ``max_bytes`` bound the buffer, which then needs ``when_full``:
        ``"emit-early"`` forwards the oldest keys early, ``"shutdown"`` stops the app. The
        buffer is the store ``name``. Lookups (joins) read the table before suppression.
        """
        from streamer.processors.suppress import SuppressProcessor

        _check_suppress(self, until_time_limit, max_records, max_bytes, when_full)
        graph, key_serde, value_serde = self._graph, self.key_serde, self.value_serde
        store = graph.add_store(name, key_serde=BytesSerde(), value_serde=BytesSerde())
        policy: WhenFull = when_full or "emit-early"
        bounds = f" max_records={max_records}" if max_records is not None else ""
        bounds += f" max_bytes={max_bytes}" if max_bytes is not None else ""
        bounds += f" when_full={policy}" if bounds else ""
        node = graph.add_processor(
            "suppress",
            [self.node],
            lambda: SuppressProcessor(
                store,
                until_time_limit,
                key_serde,
                value_serde,
                max_records=max_records,
                max_bytes=max_bytes,
                when_full=policy,
            ),
            name=name,
            stores=[store],
            detail=f"until_time_limit={until_time_limit}ms{bounds}",
        )
        return Table(graph, node, self._view, key_serde, value_serde)

    @overload
    def join(
        self,
        other: Table[K, VO],
        joiner: Callable[[V, VO], VR],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table[K, VR]: ...

    @overload
    def join(
        self,
        other: Table[KO, VO],
        joiner: Callable[[V, VO], VR],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
        foreign_key: Callable[[V], KO | None],
    ) -> Table[K, VR]: ...

    def join(
        self,
        other: Table[Any, Any],
        joiner: Callable[[Any, Any], Any],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
        foreign_key: Callable[[Any], Any] | None = None,
    ) -> Table[Any, Any]:
        """Inner table-table join on the key: a row exists when both sides have one.

        With ``foreign_key``, a foreign-key join: ``foreign_key(value)`` names the row of
        ``other`` (keyed by that foreign key) that this table's row joins; the result is keyed
        by this table's keys, and has no row where the foreign key is None or names no row.
        See ``docs/joins.md`` for its internal topics and stores.

        Joined values use ``value_serde``, else the builder's default value serde.
        """
        if foreign_key is not None:
            return foreign_key_join(self, other, foreign_key, joiner, "inner", name, value_serde)
        return self._join(other, joiner, "inner", name, value_serde)

    @overload
    def left_join(
        self,
        other: Table[K, VO],
        joiner: Callable[[V, VO | None], VR],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table[K, VR]: ...

    @overload
    def left_join(
        self,
        other: Table[KO, VO],
        joiner: Callable[[V, VO | None], VR],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
        foreign_key: Callable[[V], KO | None],
    ) -> Table[K, VR]: ...

    def left_join(
        self,
        other: Table[Any, Any],
        joiner: Callable[[Any, Any], Any],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
        foreign_key: Callable[[Any], Any] | None = None,
    ) -> Table[Any, Any]:
        """A row for every row of this table; ``other`` may be None.

        With ``foreign_key``, a foreign-key join (see :meth:`join`): the right value is None
        when the foreign key is None or names no row.
        """
        if foreign_key is not None:
            return foreign_key_join(self, other, foreign_key, joiner, "left", name, value_serde)
        return self._join(other, joiner, "left", name, value_serde)

    def outer_join(
        self,
        other: Table[K, VO],
        joiner: Callable[[V | None, VO | None], VR],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table[K, VR]:
        """A row when either side has one; the missing side is None."""
        return self._join(other, joiner, "outer", name, value_serde)

    def _join(
        self,
        other: Table[Any, Any],
        joiner: Callable[[Any, Any], Any],
        kind: str,
        name: str,
        value_serde: Serde[Any] | None,
    ) -> Table[Any, Any]:
        graph = self._graph
        left_view, right_view = self.view, other.view
        graph.claim(name)
        stores = left_view.stores() + right_view.stores()
        left = graph.add_processor(
            "table-join",
            [self.node],
            lambda: TableJoinProcessor(right_view, joiner, kind, this_is_left=True),
            name=f"{name}-left",
            stores=stores,
            detail=kind,
        )
        right = graph.add_processor(
            "table-join",
            [other.node],
            lambda: TableJoinProcessor(left_view, joiner, kind, this_is_left=False),
            name=f"{name}-right",
            stores=stores,
            detail=kind,
        )
        node = graph.merge_nodes([left, right], f"{name}-merge")
        view = JoinedView(left_view, right_view, joiner, kind)
        serde = value_serde or graph.default_value_serde
        return Table(graph, node, view, self.key_serde, serde)


def _check_suppress(
    table: Table[Any, Any],
    until_time_limit: int,
    max_records: int | None,
    max_bytes: int | None,
    when_full: str | None,
) -> None:
    """Refuse windowed tables, negative limits, empty bounds and an unknown or missing
    ``when_full`` policy."""
    if table.windowed:
        msg = (
            f"suppress() is for non-windowed tables; the windowed table from {table.node!r} "
            "forwards each window once, when it closes, with emit='final' on its aggregation"
        )
        raise TopologyError(msg)
    if until_time_limit < 0:
        msg = f"until_time_limit must be 0 or more milliseconds, got {until_time_limit}"
        raise TopologyError(msg)
    for bound, value in (("max_records", max_records), ("max_bytes", max_bytes)):
        if value is not None and value < 1:
            msg = f"{bound} must be at least 1, got {value}"
            raise TopologyError(msg)
    if when_full not in (None, "emit-early", "shutdown"):
        msg = f"when_full must be 'emit-early' or 'shutdown', not {when_full!r}"
        raise TopologyError(msg)
    if (max_records is not None or max_bytes is not None) and when_full is None:
        msg = "a bounded suppress buffer needs when_full='emit-early' or when_full='shutdown'"
        raise TopologyError(msg)


class GlobalTable(Generic[K, V]):
    """A global table: every task reads the whole topic. Join it with ``Stream.join``.

    ``store`` names the store that holds it; processors list it in ``stores=`` to read it.
    """

    def __init__(self, store: str, key_serde: Serde[Any], value_serde: Serde[Any]) -> None:
        self.store = store
        self.key_serde = key_serde
        self.value_serde = value_serde

    def view(self) -> StoreView:
        return StoreView(self.store)
