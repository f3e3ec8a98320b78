"""Key-value aggregations, table materialisation and table views.

A *table view* answers "what is the table's value for this key now?". A source table or an
aggregate reads its store; ``map_values`` and ``filter`` on a table, and table-table joins,
compute their value from their parents' views on lookup instead of keeping another copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.processors.drops import NullKeyDrops


class TableLookup(Protocol):
    def get(self, key: Any) -> Any: ...


class AsOfLookup(Protocol):
    """A lookup into a versioned table's history (``as_of``: a timestamp, ms)."""

    def get(self, key: Any, *, as_of: int) -> Any: ...


# --- view specs (frozen data, part of the topology) -------------------------------------


@dataclass(frozen=True, slots=True)
class StoreView:
    store: str

    def stores(self) -> tuple[str, ...]:
        return (self.store,)

    def bind(self, context: ProcessorContext) -> TableLookup:
        store: TableLookup = context.store(self.store)
        return store


@dataclass(frozen=True, slots=True)
class MappedView:
    parent: TableView
    fn: Callable[[Any], Any]

    def stores(self) -> tuple[str, ...]:
        return self.parent.stores()

    def bind(self, context: ProcessorContext) -> TableLookup:
        return _MappedLookup(self.parent.bind(context), self.fn)


@dataclass(frozen=True, slots=True)
class FilteredView:
    parent: TableView
    predicate: Callable[[Any, Any], bool]

    def stores(self) -> tuple[str, ...]:
        return self.parent.stores()

    def bind(self, context: ProcessorContext) -> TableLookup:
        return _FilteredLookup(self.parent.bind(context), self.predicate)


@dataclass(frozen=True, slots=True)
class JoinedView:
    left: TableView
    right: TableView
    joiner: Callable[[Any, Any], Any]
    kind: str  # "inner" | "left" | "outer"

    def stores(self) -> tuple[str, ...]:
        return self.left.stores() + self.right.stores()

    def bind(self, context: ProcessorContext) -> TableLookup:
        return _JoinedLookup(
            self.left.bind(context), self.right.bind(context), self.joiner, self.kind
        )


TableView = StoreView | MappedView | FilteredView | JoinedView


class _MappedLookup:
    def __init__(self, parent: TableLookup, fn: Callable[[Any], Any]) -> None:
        self.parent, self.fn = parent, fn

    def get(self, key: Any, *, as_of: int | None = None) -> Any:
        value = _parent_get(self.parent, key, as_of)
        return None if value is None else self.fn(value)


class _FilteredLookup:
    def __init__(self, parent: TableLookup, predicate: Callable[[Any, Any], bool]) -> None:
        self.parent, self.predicate = parent, predicate

    def get(self, key: Any, *, as_of: int | None = None) -> Any:
        value = _parent_get(self.parent, key, as_of)
        return value if value is not None and self.predicate(key, value) else None


def _parent_get(parent: TableLookup, key: Any, as_of: int | None) -> Any:
    """``parent.get(key)``, as of ``as_of`` when given (the parent is then versioned)."""
    if as_of is None:
        return parent.get(key)
    versioned: AsOfLookup = parent  # type: ignore[assignment]
    return versioned.get(key, as_of=as_of)


def join_values(kind: str, joiner: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    """The joined value of a table-table join, or None when the join has no row."""
    if kind == "inner":
        return None if left is None or right is None else joiner(left, right)
    if kind == "left":
        return None if left is None else joiner(left, right)
    return None if left is None and right is None else joiner(left, right)


class _JoinedLookup:
    def __init__(
        self,
        left: TableLookup,
        right: TableLookup,
        joiner: Callable[[Any, Any], Any],
        kind: str,
    ) -> None:
        self.left, self.right, self.joiner, self.kind = left, right, joiner, kind

    def get(self, key: Any) -> Any:
        return join_values(self.kind, self.joiner, self.left.get(key), self.right.get(key))


# --- processors ----------------------------------------------------------------------------


class MaterializeProcessor(Processor):
    """Writes each record into a key-value store (None deletes), then forwards it.

    Used for ``table(topic)``. Records with a None key cannot be stored and are counted.
    """

    def __init__(self, store: str) -> None:
        self.store_name = store

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        if record.key is None:
            self.context.count("null-key-dropped")
            return
        if record.value is None:
            self.store.delete(record.key)
        else:
            self.store.put(record.key, record.value)
        self.context.forward(record)


class AggregateProcessor(Processor):
    """Per-key aggregation into a key-value store: count, reduce and aggregate.

    ``initializer()`` gives the first aggregate; ``adder(key, value, aggregate)`` gives the
    next. Forwards ``(key, new aggregate)`` after each update. Records with a None key or
    value are skipped and counted, as in Kafka Streams; keyless ones are also reported (see
    :mod:`streamer.processors.drops`).
    """

    def __init__(
        self,
        store: str,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
    ) -> None:
        self.store_name = store
        self.initializer = initializer
        self.adder = adder
        self.drops = NullKeyDrops()

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        key = record.key
        if key is None or record.value is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        current = self.store.get(key)
        if current is None:
            current = self.initializer()
        updated = self.adder(key, record.value, current)
        self.store.put(key, updated)
        self.context.forward(record.with_value(updated))


class ReduceProcessor(Processor):
    """``reducer(aggregate, value)``; the first value of a key is its first aggregate."""

    def __init__(self, store: str, reducer: Callable[[Any, Any], Any]) -> None:
        self.store_name = store
        self.reducer = reducer
        self.drops = NullKeyDrops()

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        key = record.key
        if key is None or record.value is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        current = self.store.get(key)
        updated = record.value if current is None else self.reducer(current, record.value)
        self.store.put(key, updated)
        self.context.forward(record.with_value(updated))


class TableMapValuesProcessor(Processor):
    """Forwards table updates with the mapped value; a deletion stays a deletion."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def process(self, record: Record) -> None:
        value = None if record.value is None else self.fn(record.value)
        self.context.forward(record.with_value(value))


class TableFilterProcessor(Processor):
    """Forwards rows that pass; a row that fails becomes a deletion downstream."""

    def __init__(self, predicate: Callable[[Any, Any], bool]) -> None:
        self.predicate = predicate

    def process(self, record: Record) -> None:
        value = record.value
        if value is not None and not self.predicate(record.key, value):
            value = None
        self.context.forward(record.with_value(value))


class TableJoinProcessor(Processor):
    """One side of a table-table join: an update on this side is joined with the other view.

    When the join needs a row on the other side (both sides of an inner join, the right side
    of a left join) and the other side has none, the joined row is absent before and after
    the update, so nothing is forwarded rather than a tombstone for a row that never existed.
    """

    def __init__(
        self,
        other: TableView,
        joiner: Callable[[Any, Any], Any],
        kind: str,
        *,
        this_is_left: bool,
    ) -> None:
        self.other_view = other
        self.joiner = joiner
        self.kind = kind
        self.this_is_left = this_is_left
        self.needs_other = kind == "inner" or (kind == "left" and not this_is_left)

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.other = self.other_view.bind(context)

    def process(self, record: Record) -> None:
        other = self.other.get(record.key)
        if other is None and self.needs_other:
            return
        if self.this_is_left:
            value = join_values(self.kind, self.joiner, record.value, other)
        else:
            value = join_values(self.kind, self.joiner, other, record.value)
        self.context.forward(record.with_value(value))


class StreamTableJoinProcessor(Processor):
    """Joins each stream record with the table's current value for a lookup key.

    ``key_selector(key, value)`` picks the table key (identity for co-partitioned tables; any
    key for global tables). Inner joins drop records without a table row (counted).
    """

    def __init__(
        self,
        view: TableView,
        joiner: Callable[[Any, Any], Any],
        *,
        left: bool,
        key_selector: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.view = view
        self.joiner = joiner
        self.left = left
        self.key_selector = key_selector

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.table = self.view.bind(context)

    def process(self, record: Record) -> None:
        key = record.key
        if self.key_selector is not None:
            key = self.key_selector(record.key, record.value)
        if key is None or record.value is None:
            self.context.count("join-null-key-or-value-skipped")
            return
        row = self.table.get(key)
        if row is None and not self.left:
            self.context.count("join-unmatched-dropped")
            return
        self.context.forward(record.with_value(self.joiner(record.value, row)))
