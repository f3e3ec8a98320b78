"""A re-grouped table: the input of table aggregations with an adder and a subtractor.

``Table.group_by(selector, name=...)`` gives a ``GroupedTable[K, V]``: rows re-keyed by
group ``K`` with values ``V``. Its aggregations produce ``Table[K, A]``. How changes reach
the groups, and the ordering they rely on, is in :mod:`streamer.processors.grouped_tables`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic

from streamer.dsl._types import VA, K, V
from streamer.processors.api import Processor
from streamer.processors.grouped_tables import TableAggregateProcessor, TableReduceProcessor
from streamer.processors.tables import StoreView
from streamer.serde import JsonSerde, LongSerde, Serde

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.table import Table


def _count_adder(key: Any, value: Any, aggregate: int) -> int:
    return aggregate + 1


def _count_subtractor(key: Any, value: Any, aggregate: int) -> int:
    return aggregate - 1


def _zero() -> int:
    return 0


class GroupedTable(Generic[K, V]):
    """Table rows grouped by the selector's key; each group is owned by one task.

    ``node`` is the source of the repartition topic, whose records are changes.
    """

    def __init__(
        self, graph: GraphBuilder, node: str, key_serde: Serde[Any], value_serde: Serde[Any]
    ) -> None:
        self._graph = graph
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde

    def _aggregate_node(
        self,
        name: str,
        factory: Callable[[], Processor],
        value_serde: Serde[Any],
        operation: str,
    ) -> Table[Any, Any]:
        from streamer.dsl.table import Table

        graph = self._graph
        graph.add_store(name, key_serde=self.key_serde, value_serde=value_serde)
        node = graph.add_processor(operation, [self.node], factory, name=name, stores=[name])
        return Table(graph, node, StoreView(name), self.key_serde, value_serde)

    def count(self, *, name: str, value_serde: Serde[Any] | None = None) -> Table[K, int]:
        """The number of rows per group. A group whose rows all left keeps a count of 0.
        Stored with ``LongSerde`` unless ``value_serde``."""
        return self._aggregate_node(
            name,
            lambda: TableAggregateProcessor(name, _zero, _count_adder, _count_subtractor),
            value_serde or LongSerde(),
            "table-count",
        )

    def reduce(
        self,
        adder: Callable[[V, V], V],
        subtractor: Callable[[V, V], V],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table[K, V]:
        """``adder(aggregate, value)`` and ``subtractor(aggregate, value)``.

        A group's first value is its aggregate. A result of None deletes the group's row.
        """
        return self._aggregate_node(
            name,
            lambda: TableReduceProcessor(name, adder, subtractor),
            value_serde or self.value_serde,
            "table-reduce",
        )

    def aggregate(
        self,
        initializer: Callable[[], VA],
        adder: Callable[[K, V, VA], VA],
        subtractor: Callable[[K, V, VA], VA],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table[K, VA]:
        """``initializer()``, then ``subtractor(group, old, aggregate)`` for a value leaving
        the group and ``adder(group, new, aggregate)`` for one entering it.

        Aggregates are stored as JSON unless ``value_serde=`` says otherwise. A result of
        None deletes the group's row.
        """
        return self._aggregate_node(
            name,
            lambda: TableAggregateProcessor(name, initializer, adder, subtractor),
            value_serde or JsonSerde(),
            "table-aggregate",
        )
