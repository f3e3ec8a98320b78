"""Tables: the latest value per key, as a changelog stream plus a lookup view."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from streamer.serde import Serde

if TYPE_CHECKING:
    from streamer.dsl.builder import StreamsBuilder
    from streamer.dsl.stream import Stream


class Table:
    """A table. Its updates flow downstream as records (a None value is a deletion), and
    its ``view`` answers lookups for joins. Windowed aggregates have no view."""

    def __init__(
        self,
        builder: StreamsBuilder,
        node: str,
        view: TableView | None,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        *,
        windowed: bool = False,
    ) -> None:
        self.builder = builder
        self.node = node
        self._view = view
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.windowed = windowed

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
    ) -> Table:
        node = self.builder.add_processor(operation, [self.node], factory, name=name)
        return Table(self.builder, node, view, self.key_serde, value_serde, windowed=self.windowed)

    def map_values(
        self,
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Table:
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
            value_serde or self.builder.default_value_serde,
        )

    def filter(self, predicate: Callable[[Any, Any], bool], *, name: str | None = None) -> Table:
        """Rows for which ``predicate(key, value)`` holds; others read as absent."""
        view = None if self._view is None else FilteredView(self._view, predicate)
        return self._derive(
            "table-filter", lambda: TableFilterProcessor(predicate), view, name, self.value_serde
        )

    def to_stream(self, *, name: str | None = None) -> Stream:
        """The table's updates as a stream (deletions arrive as None values)."""
        from streamer.dsl.stream import Stream

        node = self.builder.add_processor("to-stream", [self.node], PassThroughProcessor, name=name)
        return Stream(self.builder, node, self.key_serde, self.value_serde)

    def join(self, other: Table, joiner: Callable[[Any, Any], Any], *, name: str) -> Table:
        """Inner table-table join on the key: a row exists when both sides have one.

        Joined values use the builder's default value serde.
        """
        return self._join(other, joiner, "inner", name)

    def left_join(self, other: Table, joiner: Callable[[Any, Any], Any], *, name: str) -> Table:
        """A row for every row of this table; ``other`` may be None."""
        return self._join(other, joiner, "left", name)

    def outer_join(self, other: Table, joiner: Callable[[Any, Any], Any], *, name: str) -> Table:
        """A row when either side has one; the missing side is None."""
        return self._join(other, joiner, "outer", name)

    def _join(self, other: Table, joiner: Callable[[Any, Any], Any], kind: str, name: str) -> Table:
        left_view, right_view = self.view, other.view
        self.builder.claim(name)
        stores = left_view.stores() + right_view.stores()
        left = self.builder.add_processor(
            "table-join",
            [self.node],
            lambda: TableJoinProcessor(right_view, joiner, kind, this_is_left=True),
            name=f"{name}-left",
            stores=stores,
            detail=kind,
        )
        right = self.builder.add_processor(
            "table-join",
            [other.node],
            lambda: TableJoinProcessor(left_view, joiner, kind, this_is_left=False),
            name=f"{name}-right",
            stores=stores,
            detail=kind,
        )
        node = self.builder.merge_nodes([left, right], f"{name}-merge")
        view = JoinedView(left_view, right_view, joiner, kind)
        return Table(self.builder, node, view, self.key_serde, self.builder.default_value_serde)


class GlobalTable:
    """A global table: every task reads the whole topic. Join it with ``Stream.join``."""

    def __init__(self, store: str, key_serde: Serde[Any], value_serde: Serde[Any]) -> None:
        self.store = store
        self.key_serde = key_serde
        self.value_serde = value_serde

    def view(self) -> StoreView:
        return StoreView(self.store)
