"""Aggregations whose keys expire: ``count``, ``reduce`` and ``aggregate`` with ``ttl=``.

The store is a :class:`~streamer.state.ttl.TtlKeyValueStore`. Per record reaching the step,
in this order:

1. **Purge**: up to :data:`PURGE_PER_RECORD` expired keys are deleted, oldest write first
   (ties by encoded key), and for each one a tombstone ``(key, None)`` is forwarded with the
   timestamp ``updated_at + ttl``, the stream time at which it expired.
2. A record with a None key or value is skipped and counted, as without a TTL.
3. If the record's key has an expired row the purge has not reached yet, its tombstone is
   forwarded first (as in 1); the aggregation then starts afresh, as for a new key.
4. ``fold(key, value, current or None)`` gives the new aggregate, which is stored (as written
   at the current stream time) and forwarded with the record's timestamp; None deletes the
   key and forwards a tombstone, as without a TTL.

So every expiry forwards exactly one tombstone downstream, and each record costs at most
:data:`PURGE_PER_RECORD` index rows of purging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.processors.drops import NullKeyDrops

PURGE_PER_RECORD = 16
"""At most this many index rows are examined (and expired keys deleted) per record."""

Fold = Callable[[Any, Any, Any], Any]
"""``fold(key, value, current)``: the new aggregate; ``current`` is None for a new key."""


def aggregate_fold(initializer: Callable[[], Any], adder: Callable[[Any, Any, Any], Any]) -> Fold:
    """The fold of ``aggregate`` (and ``count``): ``adder`` over ``initializer()`` or the
    current aggregate."""

    def fold(key: Any, value: Any, current: Any) -> Any:
        return adder(key, value, initializer() if current is None else current)

    return fold


def reduce_fold(reducer: Callable[[Any, Any], Any]) -> Fold:
    """The fold of ``reduce``: a key's first value is its first aggregate."""

    def fold(key: Any, value: Any, current: Any) -> Any:
        return value if current is None else reducer(current, value)

    return fold


class TtlAggregateProcessor(Processor):
    """Per-key aggregation into a store with a time to live; see the module docstring."""

    def __init__(self, store: str, fold: Fold) -> None:
        self.store_name = store
        self.fold = fold
        self.drops = NullKeyDrops()

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)
        self.ttl_ms: int = self.store.ttl_ms

    def process(self, record: Record) -> None:
        for key, updated_at in self.store.purge_expired(PURGE_PER_RECORD):
            self._expired(key, updated_at)
        key = record.key
        if key is None or record.value is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        current = None
        entry = self.store.entry(key)
        if entry is not None:
            if self.store.is_live(entry):
                current = entry.value
            else:
                self._expired(key, entry.updated_at)
        updated = self.fold(key, record.value, current)
        self.store.put(key, updated)
        self.context.forward(record.with_value(updated))

    def _expired(self, key: Any, updated_at: int) -> None:
        self.context.forward(Record(key, None, updated_at + self.ttl_ms, ()))
