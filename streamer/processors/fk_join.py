"""The steps of a foreign-key table-table join, as in Kafka Streams (KIP-213).

The left table's value names a key of the right table (``foreign_key(left_value)``). The two
tables are partitioned by different keys, so the join runs in two places and talks through
two internal topics (byte formats in :mod:`streamer.processors.fk_wire`)::

    left task                                  right task (partition of the foreign key)
    ---------                                  ----------------------------------------
    left update --> SubscriptionSend --subscription topic--> SubscriptionReceive
        |             (foreign-key store:                      (subscription store:
        |              left key -> fk, hash)                    (fk, left key) -> hash)
        |                                                                |
        |   ResponseResolve <--response topic-- responses <-- ForeignUpdate <-- right update
        |     (drops a response whose hash
        |      is no longer the left row's)
        v          v
      JoinResult (the join's own store; the output table)

Invariants and ordering:

* Every left update gets a new hash (:func:`~streamer.processors.fk_wire.next_hash`), stored
  with the foreign key it subscribed to *before* the subscription leaves. A response carries
  the hash it answers; the resolver emits it only if that hash is still the left row's. A
  response overtaken by a later left update (another foreign key's answer, from another
  partition, can arrive in any order) is dropped, so no stale result is ever emitted.
* Responses to one left key from one foreign key come from one right task through one
  partition, so they arrive in the order the right side sent them.
* A left row that moves to another foreign key unsubscribes from the old one
  (``UNSUBSCRIBE``, no answer); the old key's later updates then reach it no more.
* The left side answers for itself when there is nothing to ask: a deleted left row gives a
  tombstone and a left row without a foreign key gives ``joiner(left, None)`` in a left join
  or a tombstone in an inner join, at once.
* The result store holds the join's rows, so lookups and queries need no remote read, and a
  tombstone for a key without a row is not forwarded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamer.errors import ProcessingError
from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.processors.fk_wire import (
    CombinedKeySerde,
    Instruction,
    LeftState,
    Response,
    Subscribed,
    SubscribedSerde,
    Subscription,
    next_hash,
)
from streamer.processors.tables import TableView, join_values
from streamer.serde import Serde

STALE_DROPPED = "fk-join-stale-responses-dropped"
"""The task counter of responses dropped because the left row changed since it subscribed."""
NULL_KEY_SKIPPED = "fk-join-null-key-skipped"
"""The task counter of left or right updates without a key, which cannot join."""


@dataclass(frozen=True, slots=True)
class ForeignKeyJoinSpec:
    """What the steps of one foreign-key join share: the user's functions, the serdes that
    fix the byte formats, and the names of the stores and of the steps forwarded to."""

    kind: str  # "inner" | "left"
    foreign_key: Callable[[Any], Any]
    joiner: Callable[[Any, Any], Any]
    left_value_serde: Serde[Any]
    foreign_key_serde: Serde[Any]
    combined_key_serde: CombinedKeySerde
    left_states: str  # store: left key -> LeftState
    subscriptions: str  # store: (foreign key, left key) -> Subscribed
    results: str  # store: left key -> joined value
    subscription_sink: str
    result_step: str


class SubscriptionSendProcessor(Processor):
    """Left side: turns each left update into subscriptions, or answers it directly."""

    def __init__(self, spec: ForeignKeyJoinSpec) -> None:
        self.spec = spec
        self.encode_value = spec.left_value_serde.encode
        self.encode_key = spec.foreign_key_serde.encode

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.states = context.store(self.spec.left_states)

    def process(self, record: Record) -> None:
        key = record.key
        if key is None:
            self.context.count(NULL_KEY_SKIPPED)
            return
        previous: LeftState | None = self.states.get(key)
        value = record.value
        if value is None:
            if previous is None:
                return  # no row before, none now
            self.states.delete(key)
            self._unsubscribe(record, previous)
            self.context.forward(record.with_value(None), to=self.spec.result_step)
            return
        foreign_key = self.spec.foreign_key(value)
        encoded = None if foreign_key is None else self.encode_key(foreign_key)
        digest = next_hash(
            previous.hash if previous else None, self.encode_value(value), self.context.origin
        )
        if previous is not None and previous.foreign_key != encoded:
            self._unsubscribe(record, previous)
        self.states.put(key, LeftState(encoded, digest))
        if foreign_key is None:
            joined = join_values(self.spec.kind, self.spec.joiner, value, None)
            self.context.forward(record.with_value(joined), to=self.spec.result_step)
            return
        always = self.spec.kind == "left" or previous is not None
        instruction = Instruction.RESPOND_ALWAYS if always else Instruction.RESPOND_IF_FOUND
        self._send(record, foreign_key, instruction, digest)

    def _unsubscribe(self, record: Record, previous: LeftState) -> None:
        if previous.foreign_key is not None:
            old = self.spec.foreign_key_serde.decode(previous.foreign_key)
            self._send(record, old, Instruction.UNSUBSCRIBE, previous.hash)

    def _send(
        self, record: Record, foreign_key: Any, instruction: Instruction, digest: bytes
    ) -> None:
        subscription = Subscription(instruction, record.key, digest, self.context.partition)
        self.context.forward(
            record.with_key_value(foreign_key, subscription), to=self.spec.subscription_sink
        )


class SubscriptionReceiveProcessor(Processor):
    """Right side: stores or removes a subscription, and answers it with the right row."""

    def __init__(self, spec: ForeignKeyJoinSpec, right: TableView) -> None:
        self.spec = spec
        self.right_view = right

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.subscriptions = context.store(self.spec.subscriptions)
        self.right = self.right_view.bind(context)

    def process(self, record: Record) -> None:
        foreign_key, subscription = record.key, record.value
        if foreign_key is None or subscription is None:
            self.context.count(NULL_KEY_SKIPPED)
            return
        row_key = (foreign_key, subscription.left_key)
        if subscription.instruction is Instruction.UNSUBSCRIBE:
            self.subscriptions.delete(row_key)
            return
        partition = subscription.partition
        self.subscriptions.put(row_key, Subscribed(subscription.hash, partition))
        right = self.right.get(foreign_key)
        if right is None and subscription.instruction is Instruction.RESPOND_IF_FOUND:
            return
        response = Response(subscription.hash, partition, right)
        self.context.forward(record.with_key_value(subscription.left_key, response))


class ForeignUpdateProcessor(Processor):
    """Right side: sends a right row's update to every left row subscribed to its key."""

    def __init__(self, spec: ForeignKeyJoinSpec) -> None:
        self.spec = spec
        self.prefix = spec.combined_key_serde.prefix
        self.decode_key = spec.combined_key_serde.decode
        self.decode_row = SubscribedSerde().decode

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.subscriptions = context.store(self.spec.subscriptions)

    def process(self, record: Record) -> None:
        if record.key is None:
            self.context.count(NULL_KEY_SKIPPED)
            return
        # The typed store encodes whole keys; the prefix scan reads the bytes under it.
        for combined, data in self.subscriptions.store.prefix(self.prefix(record.key)):
            _, left_key = self.decode_key(combined)
            subscribed = self.decode_row(data)
            response = Response(subscribed.hash, subscribed.partition, record.value)
            self.context.forward(record.with_key_value(left_key, response))


class ResponseResolveProcessor(Processor):
    """Left side: joins a response with the current left row, if it answers that row."""

    def __init__(self, spec: ForeignKeyJoinSpec, left: TableView) -> None:
        self.spec = spec
        self.left_view = left

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.states = context.store(self.spec.left_states)
        self.left = self.left_view.bind(context)

    def process(self, record: Record) -> None:
        response: Response = record.value
        if response.partition != self.context.partition:
            msg = (
                f"a foreign-key join response for left partition {response.partition} "
                f"arrived on partition {self.context.partition}: the left table's topic must "
                "be partitioned by the producer's default partitioner (murmur2 of the key bytes)"
            )
            raise ProcessingError(msg, step=self.context.step_name)
        state: LeftState | None = self.states.get(record.key)
        left = None if state is None or state.hash != response.hash else self.left.get(record.key)
        if left is None:
            self.context.count(STALE_DROPPED)
            return
        joined = join_values(self.spec.kind, self.spec.joiner, left, response.value)
        self.context.forward(record.with_value(joined))


class JoinResultProcessor(Processor):
    """Keeps the join's rows in its store and forwards changes; a tombstone for a key
    without a row is not forwarded."""

    def __init__(self, store: str) -> None:
        self.store_name = store

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        if record.value is None:
            if self.store.get(record.key) is None:
                return
            self.store.delete(record.key)
        else:
            self.store.put(record.key, record.value)
        self.context.forward(record)
