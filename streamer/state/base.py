"""The bytes-level store contract every state layer implements or wraps.

Stores are stacked, never branched inside one class. Every task store, in the worker and
in the test driver alike, is the same three layers::

    typed view (KeyValueStore / WindowStore / SessionStore)   encode keys and values
      └── CachingStore                                       write cache until commit
            └── RocksDBStore (worker) | MemoryStore (driver)  the bytes themselves

At each commit the task sends the cache's dirty entries to the store's changelog, then
applies them to the bytes store in one batch (:mod:`streamer.state.cache` gives the order).
The changelog is written by the task, not by a store layer. The test driver uses
``MemoryStore`` unless asked for RocksDB.

Invariants every :class:`BytesStore` keeps:

* Keys and values are ``bytes``; keys are ordered lexicographically by unsigned byte value
  (``b"" < b"\\x00" < b"a" < b"ab" < b"b" < b"\\xff"``).
* ``range(start, end)`` is half-open ``[start, end)``; a ``None`` bound is unbounded on that
  side. ``start >= end`` yields nothing. ``reverse=True`` yields the same entries in
  descending key order.
* ``prefix(p)`` yields exactly the keys that start with ``p``, in ascending order
  (``prefix(b"")`` is everything).
* ``write_batch`` applies all of its entries or none of them; an entry whose value is
  ``None`` deletes its key. Later entries for the same key win.
* An iterator yields each key at most once and in order, even if the store is written while
  it is open; whether such writes are visible to it is unspecified. Closing the store while
  an iterator is open is undefined.
* Every operation on a closed store raises :class:`streamer.errors.StateError`;
  ``close()`` itself is idempotent.
* A store is owned by one thread (the stream thread that runs its task); stores are not
  thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from streamer.errors import StateError


@runtime_checkable
class BytesStore(Protocol):
    """An ordered map from ``bytes`` to ``bytes``; see the module docstring for invariants."""

    @property
    def name(self) -> str:
        """The store's name, unique within a task; used for its changelog topic and metrics."""
        ...

    @property
    def is_open(self) -> bool:
        """True until :meth:`close` is called."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """The value stored for ``key``, or ``None`` when there is none."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` for ``key``, replacing any previous value."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
        ...

    def range(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``start <= key < end`` in ascending (or, reversed, descending) order."""
        ...

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in ascending key order."""
        ...

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        """Apply all entries atomically, in order; a ``None`` value deletes the key.

        ``position``, when given, is recorded in the same atomic write: the next changelog
        offset whose effect the store's contents do not yet include. A crash leaves either
        the batch with its position or neither.

        ``logged=False`` lets a persistent store skip its write-ahead log (restore uses it):
        such a batch may be lost in a crash until :meth:`flush` returns, but the position
        that survives a crash never runs ahead of the entries that survive.
        """
        ...

    def changelog_position(self) -> int | None:
        """The position recorded by the last :meth:`write_batch` that gave one; ``None`` if
        none ever did. It survives reopening a persistent store."""
        ...

    def approximate_size(self) -> int:
        """An estimate of the bytes the store holds (keys plus values); never negative."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable (a no-op for in-memory stores)."""
        ...

    def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with ``prefix``.

    ``None`` means there is no such key (the prefix is empty or all ``0xff``), so a prefix scan
    is unbounded above. Trailing ``0xff`` bytes cannot be incremented and are dropped:
    ``b"a\\xff" -> b"b"``.
    """
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def range_is_empty(start: bytes | None, end: bytes | None) -> bool:
    """True when the half-open range ``[start, end)`` holds no key at all."""
    return start is not None and end is not None and start >= end


def checked_batch(
    name: str, entries: Iterable[tuple[bytes, bytes | None]]
) -> list[tuple[bytes, bytes | None]]:
    """``entries`` as a list, after checking every entry is ``(bytes, bytes | None)``.

    Raises :class:`~streamer.errors.StateError` before anything is applied, so stores that
    apply a batch entry by entry stay atomic.
    """
    batch = list(entries)
    for key, value in batch:
        if not _is_entry(key, value):
            msg = (
                f"state store {name!r}: batch entries must be (bytes, bytes | None), "
                f"got ({type(key).__name__}, {type(value).__name__}); nothing was written"
            )
            raise StateError(msg)
    return batch


def _is_entry(key: object, value: object) -> bool:
    return isinstance(key, bytes) and (value is None or isinstance(value, bytes))


def closed_error(name: str) -> StateError:
    """The error every operation on a closed store raises."""
    return StateError(f"state store {name!r} is closed; reopen it before reading or writing")


__all__ = ["BytesStore", "checked_batch", "closed_error", "prefix_upper_bound", "range_is_empty"]
