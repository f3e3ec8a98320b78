"""The key-value aggregate step shared by grouped and cogrouped streams. Internal.

An aggregation named ``name`` is one step ``name`` with one store ``name``: a key-value
store, or with ``ttl`` (ms of stream time) a ``key-value-ttl`` store whose unwritten keys
expire (:mod:`streamer.processors.ttl`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.tables import StoreView
from streamer.processors.ttl import Fold, TtlAggregateProcessor
from streamer.serde import Serde
from streamer.topology.nodes import StoreKind

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.table import Table


def check_ttl(name: str, ttl: int | None) -> None:
    """Refuse a time to live that is not a positive int of milliseconds."""
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        msg = f"aggregation {name!r}: ttl must be a positive int of milliseconds, got {ttl!r}"
        raise TopologyError(msg)


def aggregate_table(
    graph: GraphBuilder,
    parents: Sequence[str],
    name: str,
    *,
    operation: str,
    serdes: tuple[Serde[Any], Serde[Any]],
    factory: Callable[[], Processor],
    fold: Fold,
    ttl: int | None,
    detail: str = "",
) -> Table[Any, Any]:
    """Declare the store and add the step; ``factory`` makes the step without a TTL,
    ``fold`` is the same aggregation for :class:`TtlAggregateProcessor`."""
    from streamer.dsl.table import Table

    check_ttl(name, ttl)
    key_serde, value_serde = serdes
    if ttl is None:
        graph.add_store(name, key_serde=key_serde, value_serde=value_serde)
    else:
        kind = StoreKind.KEY_VALUE_TTL
        graph.add_store(name, kind, key_serde=key_serde, value_serde=value_serde, ttl_ms=ttl)
        detail = f"{detail} ttl={ttl}ms".strip()

        def factory() -> Processor:
            return TtlAggregateProcessor(name, fold)

    node = graph.add_processor(
        operation, list(parents), factory, name=name, stores=[name], detail=detail
    )
    return Table(graph, node, StoreView(name), key_serde, value_serde)
