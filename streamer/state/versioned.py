"""A versioned key-value store: every key keeps its values over time, within a history.

A version is a value (or a tombstone) with the timestamp it became valid at; it stays valid
until the next version of the same key (``valid_to``, exclusive), or for ever when it is the
latest. Versions are rows of the bytes store underneath, laid out like window rows (see
:mod:`streamer.state.layout`)::

    version  b"k" + len(key) + key + valid_from   -> b"\\x01" + value, or b"\\x00" (tombstone)
    purge    b"t" + valid_from + len(key) + key   -> b""  (this version may become purgeable)
    meta     b"m" + b"stream-time"                -> valid_from of the newest put (8 bytes)

Being ordinary rows, all three are changelogged and restored like any other entry: a
changelog record's key carries the key *and* the version's timestamp, so a restore rebuilds
the whole history and the store's stream time exactly, not only the latest values.

Invariants:

* **Stream time** is the largest timestamp ever put (``-1`` before the first put). It only
  grows. ``history_start = stream_time - history_retention``.
* **Answers within the history are exact.** ``get(key, as_of=t)`` for ``t >= history_start``
  returns the value of the version with the greatest ``valid_from <= t`` (None for a
  tombstone or no version). For ``t < history_start`` it returns None: that history may be
  gone.
* **Late puts are refused.** A put with ``timestamp < history_start`` changes nothing and
  returns :attr:`PutOutcome.EXPIRED`. A put at a timestamp that already has a version
  replaces that version.
* **Purging is bounded by stream time, not by scans of the store.** A version whose
  ``valid_to <= history_start`` can no longer answer any allowed query and is deleted, and so
  is a tombstone with ``valid_from <= history_start``. Each version's purge row is read once,
  after stream time passes its ``valid_from + history_retention``; handling it scans only
  that key's versions up to ``history_start``. The latest value of a key is never purged.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from streamer.errors import StateError
from streamer.serde import Serde
from streamer.state import layout
from streamer.state.base import BytesStore, prefix_upper_bound

K = TypeVar("K")
V = TypeVar("V")

_STREAM_TIME_ROW = b"m" + b"stream-time"
_PRESENT = b"\x01"
_TOMBSTONE = b"\x00"
_EMPTY = b""


class PutOutcome(enum.Enum):
    """What a :meth:`VersionedKeyValueStore.put` did."""

    LATEST = "latest"
    """Stored, and it is now the key's latest version."""
    HISTORY = "history"
    """Stored into the key's history: the key already has a later version."""
    EXPIRED = "expired"
    """Not stored: the timestamp is older than the history retention allows."""


@dataclass(frozen=True, slots=True)
class Version(Generic[V]):
    """One version of a key: ``value`` (None for a tombstone) valid in
    ``[valid_from, valid_to)``; ``valid_to`` is None for the latest version."""

    value: V | None
    valid_from: int
    valid_to: int | None


class VersionedKeyValueStore(Generic[K, V]):
    """Typed versioned view of ``store``; see the module docstring for the invariants.

    ``history_retention`` (ms, positive) is how far behind stream time ``as_of`` lookups are
    answered. Reads cost one reverse seek per lookup; a put costs a few row writes plus the
    purge work stream time has made due.
    """

    def __init__(
        self,
        store: BytesStore,
        key_serde: Serde[K],
        value_serde: Serde[V],
        history_retention: int,
    ) -> None:
        if history_retention <= 0:
            msg = f"versioned store {store.name!r}: history retention must be positive"
            raise StateError(msg)
        self._store = store
        self._key_serde = key_serde
        self._value_serde = value_serde
        self.history_retention = history_retention
        raw = store.get(_STREAM_TIME_ROW)
        self._stream_time = -1 if raw is None else layout.decode_time(raw)

    @property
    def name(self) -> str:
        return self._store.name

    @property
    def store(self) -> BytesStore:
        """The bytes store underneath."""
        return self._store

    @property
    def stream_time(self) -> int:
        """The largest timestamp put so far, or -1."""
        self._refresh_stream_time()
        return self._stream_time

    @property
    def history_start(self) -> int:
        """The oldest ``as_of`` timestamp answered exactly."""
        return self.stream_time - self.history_retention

    def _refresh_stream_time(self) -> None:
        # A write cache may have been discarded (aborted transaction) or the bytes store
        # restored underneath: the stored row, not this object, is the truth.
        raw = self._store.get(_STREAM_TIME_ROW)
        self._stream_time = -1 if raw is None else layout.decode_time(raw)

    # --- writes ----------------------------------------------------------------------------

    def put(self, key: K, value: V | None, timestamp: int) -> PutOutcome:
        """Record ``value`` (None: a tombstone) for ``key`` as of ``timestamp``."""
        self._refresh_stream_time()
        if timestamp < self._stream_time - self.history_retention:
            return PutOutcome.EXPIRED
        key_bytes = self._key_serde.encode(key)
        encoded = _TOMBSTONE if value is None else _PRESENT + self._value_serde.encode(value)
        rows: list[tuple[bytes, bytes | None]] = [
            (layout.window_key(key_bytes, timestamp), encoded),
            (layout.window_index_key(key_bytes, timestamp), _EMPTY),
        ]
        if timestamp > self._stream_time:
            rows.append((_STREAM_TIME_ROW, layout.encode_time(timestamp)))
        later = self._store.range(
            layout.window_key(key_bytes, timestamp) + b"\x00",
            prefix_upper_bound(layout.key_prefix(key_bytes)),
        )
        outcome = PutOutcome.HISTORY if next(later, None) is not None else PutOutcome.LATEST
        self._store.write_batch(rows)
        if timestamp > self._stream_time:
            self._stream_time = timestamp
            self._purge(self._stream_time - self.history_retention)
        return outcome

    def delete(self, key: K, timestamp: int) -> PutOutcome:
        """A tombstone for ``key`` as of ``timestamp``; a tombstone is a version too."""
        return self.put(key, None, timestamp)

    def _purge(self, history_start: int) -> None:
        """Delete what no query at or after ``history_start`` can need (module docstring)."""
        due = self._store.range(layout.INDEX, _index_upper(history_start))
        keys = dict.fromkeys(layout.parse_window_index_key(row)[0] for row, _ in due)
        for key_bytes in keys:
            self._purge_key(key_bytes, history_start)

    def _purge_key(self, key_bytes: bytes, history_start: int) -> None:
        lower = layout.key_prefix(key_bytes)
        upper = layout.window_key(key_bytes, history_start) + b"\x00"
        old = list(self._store.range(lower, upper))  # versions valid from <= history_start
        if not old:
            return
        last_row, last_value = old[-1]
        keep = last_value != _TOMBSTONE  # still valid at history_start
        rows: list[tuple[bytes, bytes | None]] = []
        for row, _ in old:
            valid_from = layout.decode_time(row, len(row) - 8)
            if valid_from < history_start or not (keep and row == last_row):
                rows.append((layout.window_index_key(key_bytes, valid_from), None))
            if not (keep and row == last_row):
                rows.append((row, None))
        self._store.write_batch(rows)

    # --- reads -----------------------------------------------------------------------------

    def get(self, key: K, *, as_of: int | None = None) -> V | None:
        """The latest value, or with ``as_of`` the value valid at that time (None when the
        key had none, or ``as_of`` is older than :attr:`history_start`)."""
        version = self.get_version(key, as_of=as_of)
        return None if version is None else version.value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def get_version(self, key: K, *, as_of: int | None = None) -> Version[V] | None:
        """The version valid at ``as_of`` (default: the latest one), tombstones included."""
        if as_of is not None and as_of < self.history_start:
            return None
        key_bytes = self._key_serde.encode(key)
        prefix = layout.key_prefix(key_bytes)
        upper = (
            prefix_upper_bound(prefix)
            if as_of is None or as_of >= layout.MAX_TIME
            else layout.window_key(key_bytes, as_of) + b"\x00"
        )
        found = next(self._store.range(prefix, upper, reverse=True), None)
        if found is None:
            return None
        row, data = found
        valid_to = None
        if as_of is not None:
            later = next(self._store.range(row + b"\x00", prefix_upper_bound(prefix)), None)
            valid_to = None if later is None else layout.decode_time(later[0], len(row) - 8)
        return Version(self._decode(data), layout.decode_time(row, len(row) - 8), valid_to)

    def history(self, key: K) -> list[Version[V]]:
        """Every version the store holds for ``key``, oldest first, tombstones included."""
        key_bytes = self._key_serde.encode(key)
        rows = list(self._store.prefix(layout.key_prefix(key_bytes)))
        starts = [layout.decode_time(row, len(row) - 8) for row, _ in rows]
        ends: list[int | None] = [*starts[1:], None] if starts else []
        return [
            Version(self._decode(data), start, end)
            for (_, data), start, end in zip(rows, starts, ends, strict=True)
        ]

    def items(self) -> Iterator[tuple[K, V]]:
        """Each key's latest value (keys whose latest version is a tombstone are left out),
        in encoded-key order. Reads every version: for tests and tools, not per record."""
        decode_key = self._key_serde.decode
        current: tuple[bytes, bytes] | None = None
        for row, data in self._store.prefix(layout.PRIMARY):
            key_bytes, _ = layout.parse_window_key(row)
            if current is not None and current[0] != key_bytes and current[1] != _TOMBSTONE:
                yield decode_key(current[0]), self._value_serde.decode(current[1][1:])
            current = (key_bytes, data)
        if current is not None and current[1] != _TOMBSTONE:
            yield decode_key(current[0]), self._value_serde.decode(current[1][1:])

    def _decode(self, data: bytes) -> V | None:
        if data == _TOMBSTONE:
            return None
        if data[:1] != _PRESENT:
            msg = f"versioned store {self.name!r}: a version row has an unknown marker"
            raise StateError(msg)
        return self._value_serde.decode(data[1:])

    def __repr__(self) -> str:
        return f"VersionedKeyValueStore({self._store!r}, history {self.history_retention} ms)"


def _index_upper(time: int) -> bytes | None:
    """Exclusive upper bound of purge rows whose ``valid_from`` is ``< time``."""
    if time > layout.MAX_TIME:
        return prefix_upper_bound(layout.INDEX)
    return layout.INDEX + layout.encode_time(max(time, layout.MIN_TIME))


__all__ = ["PutOutcome", "Version", "VersionedKeyValueStore"]
