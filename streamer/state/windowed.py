"""Window and session stores over a :class:`~streamer.state.base.BytesStore`.

Each store keeps two rows per window or session (see :mod:`streamer.state.layout`): a
primary row, ordered key-first, that holds the value and makes per-key scans cheap, and an
empty-valued index row, ordered time-first, that makes expiry and emit-final scans cheap.
Both rows are written and deleted together in one ``write_batch``, so they are always
consistent; being ordinary rows of the bytes store, both are changelogged and restored like
any other entry. Scans that go through the index look each value up in the primary row and
skip an index row whose primary row is missing.

Timestamps are signed 64-bit milliseconds; storing one outside that range raises
:class:`~streamer.errors.StateError`, while query bounds outside it are clamped. A ``None``
value is never stored: putting ``None`` deletes.

Deleting while iterating (the usual expiry loop: scan ``windows_starting_before``, emit,
``delete``) is supported: iterators never fail or repeat rows because of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from streamer.errors import StateError
from streamer.serde import Serde
from streamer.state import layout
from streamer.state.base import BytesStore, prefix_upper_bound
from streamer.state.encoding import IMMUTABLE_KEYS, NO_KEY, store_encode_error

K = TypeVar("K")
V = TypeVar("V")

_EMPTY = b""


def _index_upper(time: int) -> bytes | None:
    """Exclusive upper bound of index rows whose time is ``< time`` (any int ``time``)."""
    if time > layout.MAX_TIME:
        return prefix_upper_bound(layout.INDEX)
    return layout.INDEX + layout.encode_time(max(time, layout.MIN_TIME))


def _index_lower(time: int) -> bytes | None:
    """Inclusive lower bound of index rows whose time is ``>= time`` (any int ``time``)."""
    if time > layout.MAX_TIME:
        return prefix_upper_bound(layout.INDEX)
    return layout.INDEX + layout.encode_time(max(time, layout.MIN_TIME))


class _TimedStore(Generic[K, V]):
    def __init__(self, store: BytesStore, key_serde: Serde[K], value_serde: Serde[V]) -> None:
        self._store = store
        self._key_serde = key_serde
        self._value_serde = value_serde

    @property
    def name(self) -> str:
        return self._store.name

    @property
    def store(self) -> BytesStore:
        """The bytes store underneath."""
        return self._store

    def _encode_key(self, key: K) -> bytes:
        try:
            return self._key_serde.encode(key)
        except Exception as exc:
            raise store_encode_error(self._store.name, "key", self._key_serde, key, exc) from exc

    def _encode_value(self, value: V) -> bytes:
        try:
            return self._value_serde.encode(value)
        except Exception as exc:
            name = self._store.name
            raise store_encode_error(name, "value", self._value_serde, value, exc) from exc

    def _value(self, row: bytes) -> V | None:
        data = self._store.get(row)
        return None if data is None else self._value_serde.decode(data)


class WindowStore(_TimedStore[K, V]):
    """Values per ``(key, window_start)``.

    Orders: :meth:`fetch_range` yields one key's windows by ascending start;
    :meth:`windows_starting_before` yields all keys' windows by ascending start (ties by
    encoded key length, then encoded key bytes); :meth:`all` yields by encoded key length,
    encoded key bytes, then ascending start.

    The last key encoded is remembered (for keys of immutable types only), so the usual
    read-modify-write of one record (:meth:`fetch`, then :meth:`put` of the same key)
    encodes the key once.
    """

    def __init__(self, store: BytesStore, key_serde: Serde[K], value_serde: Serde[V]) -> None:
        super().__init__(store, key_serde, value_serde)
        self._last_key: object = NO_KEY
        self._last_prefixed = b""

    def _prefixed(self, key: K) -> bytes:
        """The key's encoding, length-prefixed (see :mod:`streamer.state.layout`)."""
        if key is self._last_key:
            return self._last_prefixed
        prefixed = layout.length_prefixed(self._encode_key(key))
        if type(key) in IMMUTABLE_KEYS:
            self._last_key, self._last_prefixed = key, prefixed
        return prefixed

    def put(self, key: K, window_start: int, value: V | None, *, exists: bool = False) -> None:
        """Store ``value`` for the window; ``None`` deletes it.

        ``exists=True`` says the window is stored already (the caller has just fetched its
        value from this store): its time-index row is in place, so only the value row is
        written. Passing it for a window that is not stored leaves a window that
        :meth:`windows_starting_before` never yields.
        """
        prefixed = self._prefixed(key)
        time = layout.encode_time(window_start)
        primary = layout.PRIMARY + prefixed + time
        if value is None:
            self._store.write_batch([(primary, None), (layout.INDEX + time + prefixed, None)])
        elif exists:
            self._store.put(primary, self._encode_value(value))
        else:
            row = self._encode_value(value)
            self._store.write_batch([(primary, row), (layout.INDEX + time + prefixed, _EMPTY)])

    def delete(self, key: K, window_start: int) -> None:
        self.put(key, window_start, None)

    def fetch(self, key: K, window_start: int) -> V | None:
        primary = layout.PRIMARY + self._prefixed(key) + layout.encode_time(window_start)
        data = self._store.get(primary)
        return None if data is None else self._value_serde.decode(data)

    def fetch_range(self, key: K, time_from: int, time_to: int) -> Iterator[tuple[int, V]]:
        """``(window_start, value)`` for the key's windows with start in ``[from, to]``."""
        time_from = max(time_from, layout.MIN_TIME)
        time_to = min(time_to, layout.MAX_TIME)
        if time_from > time_to:
            return iter(())
        key_bytes = self._encode_key(key)
        lower = layout.window_key(key_bytes, time_from)
        # Every row of this key is the same length, so the smallest row above the window
        # that starts at ``time_to`` is the one for ``time_to`` followed by a zero byte.
        upper = layout.window_key(key_bytes, time_to) + b"\x00"
        return self._fetch_range(self._store.range(lower, upper))

    def _fetch_range(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[int, V]]:
        decode = self._value_serde.decode
        for row, value in rows:
            yield layout.decode_time(row, len(row) - 8), decode(value)

    def windows_starting_before(
        self, time: int, *, since: int | None = None
    ) -> Iterator[tuple[K, int, V]]:
        """``(key, window_start, value)`` of every window with start ``< time`` (and
        ``>= since`` when given), by start. A caller that knows no window starts before
        ``since`` (it deleted them) passes it, so the scan does not pass their deleted rows."""
        lower = layout.INDEX if since is None else _index_lower(since)
        return self._indexed(self._store.range(lower, _index_upper(time)))

    def _indexed(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, int, V]]:
        decode_key = self._key_serde.decode
        for row, _ in rows:
            key_bytes, start = layout.parse_window_index_key(row)
            value = self._value(layout.window_key(key_bytes, start))
            if value is not None:
                yield decode_key(key_bytes), start, value

    def all(self) -> Iterator[tuple[K, int, V]]:
        """Every window as ``(key, window_start, value)``, by key then start."""
        return self._all(self._store.prefix(layout.PRIMARY))

    def _all(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, int, V]]:
        decode_key = self._key_serde.decode
        decode_value = self._value_serde.decode
        for row, value in rows:
            key_bytes, start = layout.parse_window_key(row)
            yield decode_key(key_bytes), start, decode_value(value)

    def __repr__(self) -> str:
        return f"WindowStore({self._store!r})"


class SessionStore(_TimedStore[K, V]):
    """Values per session ``(key, start, end)`` with ``start <= end`` (both inclusive).

    Orders: :meth:`find_sessions` yields one key's sessions by ascending end, then start;
    :meth:`sessions_ending_before` yields all keys' sessions by ascending end (ties by
    encoded key length, encoded key bytes, then start); :meth:`all` by encoded key length,
    encoded key bytes, end, start.
    """

    def put(self, key: K, start: int, end: int, value: V | None) -> None:
        """Store ``value`` for the session; ``None`` removes it."""
        if start > end:
            msg = f"session store {self.name!r}: session start {start} is after its end {end}"
            raise StateError(msg)
        key_bytes = self._encode_key(key)
        primary = layout.session_key(key_bytes, start, end)
        index = layout.session_index_key(key_bytes, start, end)
        if value is None:
            self._store.write_batch([(primary, None), (index, None)])
        else:
            self._store.write_batch([(primary, self._encode_value(value)), (index, _EMPTY)])

    def remove(self, key: K, start: int, end: int) -> None:
        self.put(key, start, end, None)

    def fetch(self, key: K, start: int, end: int) -> V | None:
        return self._value(layout.session_key(self._encode_key(key), start, end))

    def find_sessions(
        self, key: K, earliest_end: int, latest_start: int
    ) -> Iterator[tuple[int, int, V]]:
        """``(start, end, value)`` of the key's sessions with ``end >= earliest_end`` and
        ``start <= latest_start``: for a new record at ``t`` with inactivity gap ``g``, pass
        ``t - g`` and ``t + g`` to get the sessions it overlaps or touches (to merge)."""
        key_bytes = self._encode_key(key)
        earliest_end = max(earliest_end, layout.MIN_TIME)
        if earliest_end > layout.MAX_TIME:
            return iter(())
        lower = layout.key_prefix(key_bytes) + layout.encode_time(earliest_end)
        upper = prefix_upper_bound(layout.key_prefix(key_bytes))
        return self._find(self._store.range(lower, upper), latest_start)

    def _find(
        self, rows: Iterator[tuple[bytes, bytes]], latest_start: int
    ) -> Iterator[tuple[int, int, V]]:
        decode = self._value_serde.decode
        for row, value in rows:
            start = layout.decode_time(row, len(row) - 8)
            if start <= latest_start:
                yield start, layout.decode_time(row, len(row) - 16), decode(value)

    def sessions_ending_before(self, time: int) -> Iterator[tuple[K, int, int, V]]:
        """``(key, start, end, value)`` of every session with end ``< time``, by end."""
        return self._indexed(self._store.range(layout.INDEX, _index_upper(time)))

    def _indexed(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, int, int, V]]:
        decode_key = self._key_serde.decode
        for row, _ in rows:
            key_bytes, start, end = layout.parse_session_index_key(row)
            value = self._value(layout.session_key(key_bytes, start, end))
            if value is not None:
                yield decode_key(key_bytes), start, end, value

    def all(self) -> Iterator[tuple[K, int, int, V]]:
        """Every session as ``(key, start, end, value)``, by key, end, start."""
        return self._all(self._store.prefix(layout.PRIMARY))

    def _all(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, int, int, V]]:
        decode_key = self._key_serde.decode
        decode_value = self._value_serde.decode
        for row, value in rows:
            key_bytes, start, end = layout.parse_session_key(row)
            yield decode_key(key_bytes), start, end, decode_value(value)

    def __repr__(self) -> str:
        return f"SessionStore({self._store!r})"


__all__ = ["SessionStore", "WindowStore"]
