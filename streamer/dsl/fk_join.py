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
from streamer.processors.tables import StoreView
from streamer.serde import Serde
from streamer.topology.nodes import SinkNode, SourceNode, TopicRef

if TYPE_CHECKING:
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
    left_view, right_view = left.view, right.view
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
    result_serde = value_serde or graph.default_value_serde
    graph.add_store(spec.results, key_serde=left.key_serde, value_serde=result_serde)
    subscription_topic = TopicRef(f"{name}-subscription-repartition", internal=True)
    response_topic = TopicRef(f"{name}-response-repartition", internal=True)
    subscription_serde = SubscriptionSerde(left.key_serde)
    response_serde = ResponseSerde(right.value_serde)

    # Left side: each left update subscribes (or answers itself).
    send = graph.add_processor(
        "fk-join-send",
        [left.node],
        lambda: SubscriptionSendProcessor(spec),
        name=f"{name}-send",
        stores=[spec.left_states],
        detail=kind,
    )
    graph.sink(
        send, subscription_topic, right.key_serde, subscription_serde, spec.subscription_sink
    )

    # Right side: subscriptions and right updates become responses.
    subscriptions_in = graph.add_node(
        SourceNode(
            name=f"{name}-subscription-source",
            topics=(subscription_topic,),
            key_serde=right.key_serde,
            value_serde=subscription_serde,
        )
    )
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
    graph.add_node(
        SinkNode(
            name=f"{name}-response-sink",
            topic=response_topic,
            parents=(subscribe, foreign_update),
            key_serde=left.key_serde,
            value_serde=response_serde,
        )
    )

    # Left side again: current responses join the left row.
    responses_in = graph.add_node(
        SourceNode(
            name=f"{name}-response-source",
            topics=(response_topic,),
            key_serde=left.key_serde,
            value_serde=response_serde,
        )
    )
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
