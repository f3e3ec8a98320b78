"""Builds a foreign-key table-table join into the graph. Internal: ``Table.join`` and
``Table.left_join`` with ``foreign_key=`` call :func:`foreign_key_join`.

Names, all derived from the join's ``name``:

* steps ``<name>-send``, ``<name>-subscribe``, ``<name>-foreign-update``, ``<name>-resolve``
  and ``<name>`` (the result), with the internal topics' sinks and sources;
* topics ``<app_id>-<name>-subscription-repartition`` (keyed by foreign key, partitioned
  like the right table) and ``<app_id>-<name>-response-repartition`` (keyed by left key,
  partitioned like the left table);
* stores ``<name>-foreign-keys`` (left side), ``<name>-subscriptions`` (right side) and
  ``<name>`` (the joined rows), each with its changelog.

How the steps work together is in :mod:`streamer.processors.fk_join`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamer.processors.fk_join import (
    ForeignKeyJoinSpec,
    ForeignUpdateProcessor,
    JoinResultProcessor,
    ResponseResolveProcessor,
    SubscriptionReceiveProcessor,
    SubscriptionSendProcessor,
)
from streamer.processors.fk_wire import (
    CombinedKeySerde,
    LeftStateSerde,
    ResponseSerde,
    SubscribedSerde,
    SubscriptionSerde,
)
from streamer.processors.tables import StoreView, TableView
from streamer.serde import Serde
from streamer.topology.nodes import SinkNode, SourceNode, TopicRef

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.table import Table


def foreign_key_join(
    left: Table[Any, Any],
    right: Table[Any, Any],
    foreign_key: Callable[[Any], Any],
    joiner: Callable[[Any, Any], Any],
    kind: str,
    name: str,
    value_serde: Serde[Any] | None = None,
) -> Table[Any, Any]:
    """Add the steps, topics and stores of a foreign-key join; returns the joined table,
    whose values (and result store) use ``value_serde``, else the builder's default."""
    from streamer.dsl.table import Table

    graph = left._graph
    left_view, right_view = left.view, right.view  # windowed tables refused before any step
    result_serde = value_serde or graph.default_value_serde
    spec = _declare(left, right, foreign_key, joiner, kind, name, result_serde)

    # Left side: each left update subscribes (or answers itself).
    send = graph.add_processor(
        "fk-join-send",
        [left.node],
        lambda: SubscriptionSendProcessor(spec),
        name=f"{name}-send",
        stores=[spec.left_states],
        detail=kind,
    )
    subscriptions_in = _channel(
        graph, f"{name}-subscription", [send], right.key_serde, SubscriptionSerde(left.key_serde)
    )
    # Right side: subscriptions and right updates become responses.
    responders = _right_side(spec, name, right, right_view, subscriptions_in)
    responses_in = _channel(
        graph,
        f"{name}-response",
        responders,
        left.key_serde,
        ResponseSerde(right.value_serde),
    )
    # Left side again: current responses join the left row.
    resolve = graph.add_processor(
        "fk-join-resolve",
        [responses_in],
        lambda: ResponseResolveProcessor(spec, left_view),
        name=f"{name}-resolve",
        stores=[spec.left_states, *left_view.stores()],
        detail=kind,
    )
    result = graph.add_processor(
        "fk-join-result",
        [send, resolve],
        lambda: JoinResultProcessor(spec.results),
        name=spec.result_step,
        stores=[spec.results],
    )
    return Table(graph, result, StoreView(spec.results), left.key_serde, result_serde)


def _declare(
    left: Table[Any, Any],
    right: Table[Any, Any],
    foreign_key: Callable[[Any], Any],
    joiner: Callable[[Any, Any], Any],
    kind: str,
    name: str,
    result_serde: Serde[Any],
) -> ForeignKeyJoinSpec:
    """The join's spec, with its three stores declared in the graph."""
    graph = left._graph
    spec = ForeignKeyJoinSpec(
        kind=kind,
        foreign_key=foreign_key,
        joiner=joiner,
        left_value_serde=left.value_serde,
        foreign_key_serde=right.key_serde,
        combined_key_serde=CombinedKeySerde(right.key_serde, left.key_serde),
        left_states=f"{name}-foreign-keys",
        subscriptions=f"{name}-subscriptions",
        results=name,
        subscription_sink=f"{name}-subscription-sink",
        result_step=name,
    )
    graph.add_store(spec.left_states, key_serde=left.key_serde, value_serde=LeftStateSerde())
    graph.add_store(
        spec.subscriptions, key_serde=spec.combined_key_serde, value_serde=SubscribedSerde()
    )
    graph.add_store(spec.results, key_serde=left.key_serde, value_serde=result_serde)
    return spec


def _right_side(
    spec: ForeignKeyJoinSpec,
    name: str,
    right: Table[Any, Any],
    right_view: TableView,
    subscriptions_in: str,
) -> list[str]:
    """The right side's two steps, which answer subscriptions and right updates."""
    graph = right._graph
    subscribe = graph.add_processor(
        "fk-join-subscribe",
        [subscriptions_in],
        lambda: SubscriptionReceiveProcessor(spec, right_view),
        name=f"{name}-subscribe",
        stores=[spec.subscriptions, *right_view.stores()],
    )
    foreign_update = graph.add_processor(
        "fk-join-foreign-update",
        [right.node],
        lambda: ForeignUpdateProcessor(spec),
        name=f"{name}-foreign-update",
        stores=[spec.subscriptions],
    )
    return [subscribe, foreign_update]


def _channel(
    graph: GraphBuilder,
    prefix: str,
    parents: list[str],
    key_serde: Serde[Any],
    value_serde: Serde[Any],
) -> str:
    """``parents`` write to the internal topic ``<prefix>-repartition`` (step
    ``<prefix>-sink``), read back by the step ``<prefix>-source``, whose name is returned."""
    topic = TopicRef(f"{prefix}-repartition", internal=True)
    graph.add_node(
        SinkNode(
            name=f"{prefix}-sink",
            topic=topic,
            parents=tuple(parents),
            key_serde=key_serde,
            value_serde=value_serde,
        )
    )
    return graph.add_node(
        SourceNode(
            name=f"{prefix}-source", topics=(topic,), key_serde=key_serde, value_serde=value_serde
        )
    )
