"""A write cache that holds a commit interval's writes in memory until the task commits.

Commit protocol (the runtime follows this order; the cache relies on it)::

    1. records = store.dirty_entries()   # one record per dirty key, latest value, key order
    2. send records to the store's changelog topic inside the Kafka transaction, together
       with the input offsets, and commit the transaction
    3. store.commit()                    # ONE write_batch into the inner store; clears cache
    4. store.flush(); write the changelog offsets to the checkpoint file
    on an aborted transaction instead of 2-4:
    2'. store.discard()                  # the committed view is back, as if nothing happened

Why this order is safe: the inner store never holds a write whose changelog record is not
committed, so it never has to be rolled back. A crash between 2 and 3 (or 3 and 4) leaves the
inner store and checkpoint behind the changelog; restoring replays the changelog from the
checkpointed offset, and since every changelog record is the key's whole latest value (not a
delta), replaying records that are already applied is harmless.

Invariants:

* Writes (``put``, ``delete``, ``write_batch``) go only to the dirty map, never to the inner
  store before :meth:`CachingStore.commit`. A delete is kept as a tombstone (``None``) so it
  hides the inner entry and becomes a changelog tombstone.
* Reads see the dirty map layered over the inner store: ``get`` checks the dirty map first;
  ``range`` and ``prefix`` merge both in key order (or reverse key order), the dirty value
  winning on equal keys and tombstones hiding inner entries.
* A range iterator copies the dirty entries in its range when it is created; the inner part
  behaves as the inner store's iterators do.
* ``get`` also remembers the committed values it read from the inner store, and
  :meth:`CachingStore.commit` the values it applied (at most :data:`READ_CACHE_ENTRIES`
  keys, forgotten all at once past that), so a key read again is not read from the inner
  store: the inner store is written only through :meth:`CachingStore.commit`, so what is
  remembered stays what it holds. A caller that writes the inner store itself (a
  changelog restore) calls :meth:`CachingStore.forget_reads` first.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

from streamer.errors import StateError
from streamer.state.base import (
    BytesStore,
    checked_batch,
    closed_error,
    prefix_upper_bound,
    range_is_empty,
)

READ_CACHE_ENTRIES = 8192
"""Committed values a :class:`CachingStore` remembers (absent keys included)."""


class CachingStore:
    """Buffers writes to ``inner`` until :meth:`commit`; implements ``BytesStore`` itself.

    ``dirty_count`` and ``dirty_bytes`` let the runtime commit early when the cache grows too
    large. Closing the store drops uncommitted writes and closes ``inner``.
    """

    def __init__(self, inner: BytesStore) -> None:
        self._inner = inner
        self._dirty: dict[bytes, bytes | None] = {}
        self._dirty_keys: list[bytes] = []  # sorted keys of _dirty
        self._dirty_bytes = 0
        self._reads: dict[bytes, bytes | None] = {}  # committed values, see module docstring
        self._discards = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def inner(self) -> BytesStore:
        return self._inner

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    @property
    def dirty_count(self) -> int:
        """How many keys have uncommitted writes (tombstones included)."""
        return len(self._dirty)

    @property
    def discards(self) -> int:
        """How many times :meth:`discard` ran: a view that keeps a position in the store
        (the expiry cursor of :mod:`streamer.state.ttl`) starts over when it changes."""
        return self._discards

    @property
    def dirty_bytes(self) -> int:
        """Bytes held by uncommitted writes: each dirty key plus its value (0 for a tombstone)."""
        return self._dirty_bytes

    def _check_open(self) -> None:
        if not self._inner.is_open:
            raise closed_error(self.name)

    def _set(self, key: bytes, value: bytes | None) -> None:
        new_size = len(value) if value is not None else 0
        if key in self._dirty:
            old = self._dirty[key]
            self._dirty_bytes += new_size - (len(old) if old is not None else 0)
        else:
            insort(self._dirty_keys, key)
            self._dirty_bytes += len(key) + new_size
        self._dirty[key] = value

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        if key in self._dirty:
            return self._dirty[key]
        reads = self._reads
        if key in reads:
            return reads[key]
        value = self._inner.get(key)
        if len(reads) >= READ_CACHE_ENTRIES:
            reads.clear()
        reads[key] = value
        return value

    def forget_reads(self) -> None:
        """Forget the committed values read so far (the inner store is written directly)."""
        self._reads = {}

    def put(self, key: bytes, value: bytes) -> None:
        self._check_open()
        self._set(key, value)

    def delete(self, key: bytes) -> None:
        self._check_open()
        self._set(key, None)

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        """Buffer the entries like single writes. A position belongs to committed state, so
        it is only recorded by :meth:`commit`."""
        self._check_open()
        if position is not None:
            msg = f"state store {self.name!r}: a changelog position is recorded by commit()"
            raise StateError(msg)
        batch = checked_batch(self.name, entries)  # check all first: atomic
        for key, value in batch:
            self._set(key, value)

    def changelog_position(self) -> int | None:
        """The position of the committed state in the inner store."""
        self._check_open()
        return self._inner.changelog_position()

    def range(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        if range_is_empty(start, end):
            return iter(())
        keys = self._dirty_keys
        lo = 0 if start is None else bisect_left(keys, start)
        hi = len(keys) if end is None else bisect_left(keys, end)
        dirty = [(key, self._dirty[key]) for key in keys[lo:hi]]
        if reverse:
            dirty.reverse()
        inner = self._inner.range(start, end, reverse=reverse)
        if not dirty:
            return inner
        return _merge(dirty, inner, reverse)

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.range(prefix, prefix_upper_bound(prefix))

    def approximate_size(self) -> int:
        self._check_open()
        return self._inner.approximate_size() + self._dirty_bytes

    def flush(self) -> None:
        """Flush the inner store. Uncommitted writes stay in the cache: use :meth:`commit`."""
        self._check_open()
        self._inner.flush()

    def close(self) -> None:
        """Drop uncommitted writes and close the inner store; idempotent."""
        self._clear()
        self._reads = {}
        self._inner.close()

    # -- commit protocol -------------------------------------------------------------------

    def dirty_entries(self) -> list[tuple[bytes, bytes | None]]:
        """This interval's changelog records: each dirty key once, latest value, key order."""
        self._check_open()
        return [(key, self._dirty[key]) for key in self._dirty_keys]

    def commit(self, *, position: int | None = None) -> None:
        """Apply every dirty entry to the inner store in ONE ``write_batch``, then clear.

        ``position``, when given, is recorded in that same batch (see
        :meth:`BytesStore.write_batch`). If the inner write fails, the dirty map is kept and
        the error propagates, so a retry (or :meth:`discard`) is still possible.
        """
        self._check_open()
        if not self._dirty and position is None:
            return
        entries = self.dirty_entries()
        self._inner.write_batch(entries, position=position)
        reads = self._reads
        if len(reads) + len(entries) > READ_CACHE_ENTRIES:
            reads.clear()
        reads.update(entries[-READ_CACHE_ENTRIES:])
        self._clear()

    def discard(self) -> int:
        """Drop uncommitted writes (the transaction aborted); returns how many keys were dirty."""
        count = len(self._dirty)
        self._clear()
        self._discards += 1
        return count

    def _clear(self) -> None:
        self._dirty = {}
        self._dirty_keys = []
        self._dirty_bytes = 0

    def __repr__(self) -> str:
        return f"CachingStore({self._inner!r}, {len(self._dirty)} dirty)"


def _merge(
    dirty: list[tuple[bytes, bytes | None]],
    inner: Iterator[tuple[bytes, bytes]],
    reverse: bool,
) -> Iterator[tuple[bytes, bytes]]:
    """Merge two key-ordered streams; dirty entries win on equal keys, tombstones hide."""

    def before(a: bytes, b: bytes) -> bool:
        return a > b if reverse else a < b

    inner_entry = next(inner, None)
    for dkey, dvalue in dirty:
        while inner_entry is not None and before(inner_entry[0], dkey):
            yield inner_entry
            inner_entry = next(inner, None)
        if inner_entry is not None and inner_entry[0] == dkey:
            inner_entry = next(inner, None)
        if dvalue is not None:
            yield dkey, dvalue
    if inner_entry is not None:
        yield inner_entry
        yield from inner
