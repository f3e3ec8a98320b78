"""Re-grouping a table: changes travel as old/new pairs and are subtracted, then added.

``Table.group_by(selector)`` turns each update of a table row into :class:`Change` records
keyed by *group*, sent through a repartition topic to the task that owns the group:

* the selector's result for every row is kept in a store of its own (the *prior* store,
  keyed by the table's key), because table updates carry only the new value; the old
  group and value come from there, not from the selector run again, so a row's subtraction
  always undoes exactly the addition it made;
* a row that stays in its group sends one record ``Change(old, new)``; a row that moves
  sends ``Change(old, None)`` to the old group, then ``Change(None, new)`` to the new one;
  a deletion sends ``Change(old, None)``;
* the prior store's update and the change records are written in the same transaction as
  the input offset under exactly-once, so after a crash either all of them are visible or
  none.

Ordering invariant: the records for one group come from the table's task in the order of
its updates, and Kafka keeps their order within a partition, so every addition of a row's
value reaches its group before the subtraction that undoes it. Changes of different rows
(or tasks) interleave in any order, so adders and subtractors must commute, as in Kafka
Streams. Aggregates between the two records of a move may count the row in neither or
both groups; once both are processed the aggregates are exact.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from streamer.errors import SerializationError
from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.processors.drops import NullKeyDrops
from streamer.serde import Serde

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

_LENGTH = struct.Struct(">I")
_OLD, _NEW = 1, 2


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """A row's value leaving (``old``) and entering (``new``) a group; None is absent."""

    old: T | None
    new: T | None


class ChangeSerde(Generic[T]):
    """``Change`` as one flags byte, the old value's length (4 bytes) and both values."""

    def __init__(self, inner: Serde[T]) -> None:
        self.inner = inner

    def encode(self, value: Change[T]) -> bytes:
        old = b"" if value.old is None else self.inner.encode(value.old)
        new = b"" if value.new is None else self.inner.encode(value.new)
        flags = (_OLD if value.old is not None else 0) | (_NEW if value.new is not None else 0)
        return bytes((flags,)) + _LENGTH.pack(len(old)) + old + new

    def decode(self, data: bytes) -> Change[T]:
        if len(data) < 5 or data[0] > (_OLD | _NEW):
            msg = f"not a table change record ({len(data)} bytes)"
            raise SerializationError(msg)
        flags = data[0]
        (old_length,) = _LENGTH.unpack_from(data, 1)
        if 5 + old_length > len(data):
            msg = f"table change record says its old value has {old_length} bytes of {len(data)}"
            raise SerializationError(msg)
        old = data[5 : 5 + old_length]
        new = data[5 + old_length :]
        return Change(
            self.inner.decode(old) if flags & _OLD else None,
            self.inner.decode(new) if flags & _NEW else None,
        )


class PairSerde(Generic[A, B]):
    """A ``(first, second)`` pair: the first's length (4 bytes), then both encodings."""

    def __init__(self, first: Serde[A], second: Serde[B]) -> None:
        self.first = first
        self.second = second

    def encode(self, value: tuple[A, B]) -> bytes:
        first = self.first.encode(value[0])
        return _LENGTH.pack(len(first)) + first + self.second.encode(value[1])

    def decode(self, data: bytes) -> tuple[A, B]:
        if len(data) < 4:
            msg = f"not a pair ({len(data)} bytes)"
            raise SerializationError(msg)
        (length,) = _LENGTH.unpack_from(data)
        if 4 + length > len(data):
            msg = f"pair says its first part has {length} bytes of {len(data)}"
            raise SerializationError(msg)
        return self.first.decode(data[4 : 4 + length]), self.second.decode(data[4 + length :])


Selector = Callable[[Any, Any], tuple[Any, Any]]


class TableGroupByProcessor(Processor):
    """Turns table updates into :class:`Change` records keyed by group (see module doc).

    ``selector(key, value) -> (group, value)``. A row whose selector gives a None group or
    value belongs to no group; a None group is also counted and reported as a keyless drop.
    """

    def __init__(self, prior_store: str, selector: Selector, group_serde: Serde[Any]) -> None:
        self.prior_name = prior_store
        self.selector = selector
        self.group_serde = group_serde
        self.drops = NullKeyDrops()

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.prior = context.store(self.prior_name)

    def _select(self, record: Record) -> tuple[Any, Any] | None:
        if record.value is None:
            return None
        selected: object = self.selector(record.key, record.value)
        if not isinstance(selected, tuple) or len(selected) != 2:
            msg = (
                "the group_by selector must return a (group, value) pair, "
                f"got {type(selected).__name__}"
            )
            raise TypeError(msg)
        group, value = selected
        if group is None:
            self.drops.skipped(self.context, key_missing=True)
            return None
        return None if value is None else (group, value)

    def process(self, record: Record) -> None:
        if record.key is None:
            self.context.count("null-key-dropped")
            return
        old: tuple[Any, Any] | None = self.prior.get(record.key)
        new = self._select(record)
        if old is None and new is None:
            return
        self.prior.put(record.key, new)
        if old is not None and new is not None and self._same_group(old[0], new[0]):
            self.context.forward(record.with_key_value(new[0], Change(old[1], new[1])))
            return
        if old is not None:
            self.context.forward(record.with_key_value(old[0], Change(old[1], None)))
        if new is not None:
            self.context.forward(record.with_key_value(new[0], Change(None, new[1])))

    def _same_group(self, a: Any, b: Any) -> bool:
        """Groups are the same when their encodings are: that is what partitions them."""
        return bool(self.group_serde.encode(a) == self.group_serde.encode(b))


class TableAggregateProcessor(Processor):
    """Applies :class:`Change` records to a per-group aggregate: subtract, then add.

    ``subtractor(group, old, aggregate)`` removes a value, ``adder(group, new, aggregate)``
    adds one; a group without an aggregate starts from ``initializer()``. Forwards the new
    aggregate once per change record. An aggregate of None deletes the group's row and is
    forwarded as a deletion.
    """

    def __init__(
        self,
        store: str,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
    ) -> None:
        self.store_name = store
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor
        self.drops = NullKeyDrops()

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        key, change = record.key, record.value
        if key is None or change is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        aggregate = self.store.get(key)
        if aggregate is None:
            aggregate = self.initializer()
        if change.old is not None:
            aggregate = self.subtractor(key, change.old, aggregate)
        if change.new is not None:
            aggregate = self.adder(key, change.new, aggregate)
        self.store.put(key, aggregate)
        self.context.forward(record.with_value(aggregate))


class TableReduceProcessor(Processor):
    """Like :class:`TableAggregateProcessor` without an initializer, as Kafka Streams' reduce.

    ``subtractor(aggregate, old)`` runs only when the group has an aggregate; a group's first
    value is its aggregate, later ones go through ``adder(aggregate, new)``. A None aggregate
    deletes the group's row.
    """

    def __init__(
        self,
        store: str,
        adder: Callable[[Any, Any], Any],
        subtractor: Callable[[Any, Any], Any],
    ) -> None:
        self.store_name = store
        self.adder = adder
        self.subtractor = subtractor
        self.drops = NullKeyDrops()

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        key, change = record.key, record.value
        if key is None or change is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        aggregate = self.store.get(key)
        if change.old is not None and aggregate is not None:
            aggregate = self.subtractor(aggregate, change.old)
        if change.new is not None:
            aggregate = change.new if aggregate is None else self.adder(aggregate, change.new)
        self.store.put(key, aggregate)
        self.context.forward(record.with_value(aggregate))
