"""Typed stores: keys and values go through serdes on the way to a :class:`BytesStore`.

:class:`KeyValueStore` is defined here; :class:`~streamer.state.windowed.WindowStore` and
:class:`~streamer.state.windowed.SessionStore` live in :mod:`streamer.state.windowed` and are
re-exported from here.

Ordering: typed iteration follows the byte order of the *encoded* keys. That matches the
natural order of the keys only when the key serde is order-preserving: ``BytesSerde`` and
``StringSerde`` (UTF-8 preserves code-point order) are; ``LongSerde`` and ``IntegerSerde``
are for non-negative numbers only (two's complement puts negatives after positives);
``JsonSerde`` is not. With any other serde, ``range`` bounds still select a contiguous run of
encoded keys, just not a meaningful one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from streamer.serde import Serde
from streamer.state.base import BytesStore
from streamer.state.encoding import IMMUTABLE_KEYS, NO_KEY, store_encode_error
from streamer.state.windowed import SessionStore, WindowStore

K = TypeVar("K")
V = TypeVar("V")


class KeyValueStore(Generic[K, V]):
    """A typed key-value view of ``store``; adds no state of its own.

    A ``None`` value is never stored: ``put(key, None)`` deletes, exactly like a Kafka
    tombstone, so ``get`` returning ``None`` always means "absent".
    """

    def __init__(self, store: BytesStore, key_serde: Serde[K], value_serde: Serde[V]) -> None:
        self._store = store
        self._key_serde = key_serde
        self._value_serde = value_serde
        self._last_key: object = NO_KEY
        self._last_bytes = b""

    @property
    def name(self) -> str:
        return self._store.name

    @property
    def store(self) -> BytesStore:
        """The bytes store underneath."""
        return self._store

    def _key(self, key: K) -> bytes:
        """The key's bytes. The last key of an immutable type is remembered, so a step's
        read-modify-write of one key (``get``, then ``put``) encodes it once."""
        if key is self._last_key:
            return self._last_bytes
        try:
            data = self._key_serde.encode(key)
        except Exception as exc:
            raise store_encode_error(self._store.name, "key", self._key_serde, key, exc) from exc
        if type(key) in IMMUTABLE_KEYS:
            self._last_key, self._last_bytes = key, data
        return data

    def _value(self, value: V) -> bytes:
        try:
            return self._value_serde.encode(value)
        except Exception as exc:
            name = self._store.name
            raise store_encode_error(name, "value", self._value_serde, value, exc) from exc

    def get(self, key: K) -> V | None:
        data = self._store.get(self._key(key))
        return None if data is None else self._value_serde.decode(data)

    def __contains__(self, key: K) -> bool:
        return self._store.get(self._key(key)) is not None

    def put(self, key: K, value: V | None) -> None:
        """Store ``value`` for ``key``; ``None`` deletes the key."""
        key_bytes = self._key(key)
        if value is None:
            self._store.delete(key_bytes)
        else:
            self._store.put(key_bytes, self._value(value))

    def put_all(self, entries: Iterable[tuple[K, V | None]]) -> None:
        """Apply all entries in one atomic batch, in order; ``None`` values delete."""
        batch = [
            (self._key(key), None if value is None else self._value(value))
            for key, value in entries
        ]
        self._store.write_batch(batch)

    def delete(self, key: K) -> None:
        self._store.delete(self._key(key))

    def range(
        self, start_key: K | None, end_key: K | None, *, reverse: bool = False
    ) -> Iterator[tuple[K, V]]:
        """Entries with ``start_key <= key < end_key`` by encoded-key order (see module doc)."""
        start = None if start_key is None else self._key_serde.encode(start_key)
        end = None if end_key is None else self._key_serde.encode(end_key)
        return self._decoded(self._store.range(start, end, reverse=reverse))

    def prefix(self, prefix: K) -> Iterator[tuple[K, V]]:
        """Entries whose *encoded* key starts with the encoding of ``prefix``.

        Meaningful when encoding preserves prefixes, e.g. ``StringSerde`` or ``BytesSerde``:
        ``prefix("user:")`` yields every key that starts with ``"user:"``.
        """
        return self._decoded(self._store.prefix(self._key_serde.encode(prefix)))

    def items(self) -> Iterator[tuple[K, V]]:
        """Every entry, in encoded-key order."""
        return self._decoded(self._store.range(None, None))

    def _decoded(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, V]]:
        decode_key = self._key_serde.decode
        decode_value = self._value_serde.decode
        for key, value in rows:
            yield decode_key(key), decode_value(value)

    def __repr__(self) -> str:
        return f"KeyValueStore({self._store!r})"


__all__ = ["KeyValueStore", "SessionStore", "WindowStore"]
