"""A key-value store whose keys expire: a key not written for ``ttl_ms`` of stream time is gone.

Each key has two rows in the bytes store underneath (see :mod:`streamer.state.layout` for the
time encoding)::

    primary  b"k" + key                     -> updated_at (8 bytes) + value
    index    b"t" + updated_at + key        -> b""

``updated_at`` is the task's stream time when the key was last written. The index orders the
keys by it, so the keys that expired first are the first index rows: finding them reads the
index from its start, never the whole store. Both rows of a write go in one ``write_batch``,
and, being ordinary rows, both are changelogged and restored together: a restored store has
its expiry index, and with the task's restored stream time it expires exactly the keys it
would have expired without the restart.

Invariants:

* A key **expires** once stream time reaches ``updated_at + ttl_ms``. Reads (``get``,
  ``items``, ``range``, ``prefix``, ``in``) never return an expired key, whether or not
  :meth:`TtlKeyValueStore.purge_expired` has deleted it yet.
* Each primary row has exactly one index row, at its own ``updated_at``. An index row whose
  primary row is missing or has another ``updated_at`` is *stale* (only a crash under
  at-least-once, with a changelog written in part, leaves one); it is deleted when the purge
  reaches it.
* A write happens at the current stream time, which is above the ``updated_at`` of every key
  purged so far (they expired, and ``ttl_ms > 0``): new index rows always sort after the
  purged ones. The purge therefore resumes where it stopped, and its cost is bounded by the
  rows it examines. It also remembers a lower bound of the next row's ``updated_at`` (the
  first row it saw past the expiry threshold, lowered by every write), so while no key can
  have expired it reads nothing. After :meth:`~streamer.state.cache.CachingStore.discard`
  (an aborted transaction brings purged keys back) it starts from the first index row again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, NamedTuple, TypeVar

from streamer.errors import StateError
from streamer.serde import Serde
from streamer.state import layout
from streamer.state.base import BytesStore, prefix_upper_bound
from streamer.state.encoding import encode_for_store

K = TypeVar("K")
V = TypeVar("V")

_PRIMARY = layout.PRIMARY
_INDEX = layout.INDEX
_PRIMARY_END = prefix_upper_bound(_PRIMARY)
_INDEX_END = prefix_upper_bound(_INDEX)
_NO_ROWS = layout.MAX_TIME
"""``_earliest`` of an index with no rows: above every time a purge can ask about."""
_EMPTY = b""


class TtlEntry(NamedTuple, Generic[V]):
    """A key's value and the stream time it was last written at, live or expired."""

    value: V
    updated_at: int


class TtlKeyValueStore(Generic[K, V]):
    """A typed key-value store with a time to live; see the module docstring.

    ``stream_time()`` gives the task's stream time; ``put(key, None)`` deletes, as in
    :class:`~streamer.state.typed.KeyValueStore`.
    """

    def __init__(
        self,
        store: BytesStore,
        key_serde: Serde[K],
        value_serde: Serde[V],
        ttl_ms: int,
        stream_time: Callable[[], int],
    ) -> None:
        if ttl_ms <= 0:
            msg = f"state store {store.name!r}: the time to live must be positive, got {ttl_ms}"
            raise StateError(msg)
        self._store = store
        self._key_serde = key_serde
        self._value_serde = value_serde
        self.ttl_ms = ttl_ms
        self._stream_time = stream_time
        self._scan_from = _INDEX
        # A lower bound of every index row's updated_at at or after _scan_from (None:
        # unknown): no key can have expired while it is >= the expiry threshold.
        self._earliest: int | None = None
        self._discards_seen = self._discards()

    @property
    def name(self) -> str:
        return self._store.name

    @property
    def store(self) -> BytesStore:
        """The bytes store underneath."""
        return self._store

    # --- encoding ---------------------------------------------------------------------------

    def _key(self, key: K) -> bytes:
        return encode_for_store(self._store.name, "key", self._key_serde, key)

    def _row(self, key_bytes: bytes) -> tuple[int, bytes] | None:
        data = self._store.get(_PRIMARY + key_bytes)
        return None if data is None else (layout.decode_time(data), data[8:])

    def _live(self, updated_at: int) -> bool:
        return self._stream_time() < updated_at + self.ttl_ms

    # --- reads ------------------------------------------------------------------------------

    def entry(self, key: K) -> TtlEntry[V] | None:
        """The key's row, expired or not: None only when the store has no row for it."""
        row = self._row(self._key(key))
        if row is None:
            return None
        return TtlEntry(self._value_serde.decode(row[1]), row[0])

    def is_live(self, entry: TtlEntry[V]) -> bool:
        """Whether ``entry`` has not expired at the current stream time."""
        return self._live(entry.updated_at)

    def get(self, key: K) -> V | None:
        """The key's value, or None when it is absent or expired."""
        row = self._row(self._key(key))
        if row is None or not self._live(row[0]):
            return None
        return self._value_serde.decode(row[1])

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def range(
        self, start_key: K | None, end_key: K | None, *, reverse: bool = False
    ) -> Iterator[tuple[K, V]]:
        """Live entries with ``start_key <= key < end_key`` by encoded-key order."""
        start = _PRIMARY if start_key is None else _PRIMARY + self._key(start_key)
        end = _PRIMARY_END if end_key is None else _PRIMARY + self._key(end_key)
        return self._decoded(self._store.range(start, end, reverse=reverse))

    def prefix(self, prefix: K) -> Iterator[tuple[K, V]]:
        """Live entries whose encoded key starts with the encoding of ``prefix``."""
        return self._decoded(self._store.prefix(_PRIMARY + self._key(prefix)))

    def items(self) -> Iterator[tuple[K, V]]:
        """Every live entry, in encoded-key order."""
        return self._decoded(self._store.range(_PRIMARY, _PRIMARY_END))

    def _decoded(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, V]]:
        decode_key = self._key_serde.decode
        decode_value = self._value_serde.decode
        for row, data in rows:
            if self._live(layout.decode_time(data)):
                yield decode_key(row[1:]), decode_value(data[8:])

    # --- writes -----------------------------------------------------------------------------

    def put(self, key: K, value: V | None) -> None:
        """Store ``value`` for ``key`` as written now (stream time); None deletes the key."""
        key_bytes = self._key(key)
        old = self._row(key_bytes)
        batch: list[tuple[bytes, bytes | None]] = []
        if value is None:
            if old is None:
                return
            batch = [(_PRIMARY + key_bytes, None), (_index_key(old[0], key_bytes), None)]
        else:
            now = self._stream_time()
            data = encode_for_store(self._store.name, "value", self._value_serde, value)
            if old is not None and old[0] != now:
                batch.append((_index_key(old[0], key_bytes), None))
            batch.append((_PRIMARY + key_bytes, layout.encode_time(now) + data))
            batch.append((_index_key(now, key_bytes), _EMPTY))
            if self._earliest is not None and now < self._earliest:
                self._earliest = now
        self._store.write_batch(batch)

    def delete(self, key: K) -> None:
        self.put(key, None)

    def purge_expired(self, limit: int) -> list[tuple[K, int]]:
        """Delete expired keys, oldest write first; returns ``(key, updated_at)`` of each.

        Examines at most ``limit`` index rows (stale ones are deleted and not returned), so
        its cost per call is bounded whatever the store holds; while no key can have expired
        (see ``_earliest``), it reads nothing at all.
        """
        if self._discards() != self._discards_seen:
            self._discards_seen = self._discards()
            self._scan_from, self._earliest = _INDEX, None
        # Expired: updated_at + ttl_ms <= now, that is updated_at < now - ttl_ms + 1.
        threshold = self._stream_time() - self.ttl_ms + 1
        if threshold <= layout.MIN_TIME:
            return []
        if self._earliest is not None and self._earliest >= threshold:
            return []
        bound = _INDEX + layout.encode_time(threshold)
        examined: list[bytes] = []
        self._earliest = _NO_ROWS
        for index_row, _ in self._store.range(self._scan_from, _INDEX_END):
            if index_row >= bound:
                self._earliest = layout.decode_time(index_row, 1)
                break
            if len(examined) == limit:
                self._earliest = None  # more expired rows: scan again at the next call
                break
            examined.append(index_row)
        return self._purge(examined)

    def _purge(self, examined: list[bytes]) -> list[tuple[K, int]]:
        """Delete the index rows ``examined`` and, where they are current, their keys."""
        purged: list[tuple[K, int]] = []
        batch: list[tuple[bytes, bytes | None]] = []
        for index_row in examined:
            updated_at = layout.decode_time(index_row, 1)
            key_bytes = index_row[9:]
            batch.append((index_row, None))
            row = self._row(key_bytes)
            if row is not None and row[0] == updated_at:
                batch.append((_PRIMARY + key_bytes, None))
                purged.append((self._key_serde.decode(key_bytes), updated_at))
        if examined:
            self._store.write_batch(batch)
            self._scan_from = examined[-1] + b"\x00"
        return purged

    def _discards(self) -> int:
        discards: int = getattr(self._store, "discards", 0)
        return discards

    def __repr__(self) -> str:
        return f"TtlKeyValueStore({self._store!r}, ttl {self.ttl_ms} ms)"


def _index_key(updated_at: int, key_bytes: bytes) -> bytes:
    return _INDEX + layout.encode_time(updated_at) + key_bytes


__all__ = ["TtlEntry", "TtlKeyValueStore"]
