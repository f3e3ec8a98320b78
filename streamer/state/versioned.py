"""A versioned key-value store: every key keeps its values over time, within a history.

A version is a value (or a tombstone) with the timestamp it became valid at; it stays valid
until the next version of the same key (``valid_to``, exclusive), or for ever when it is the
latest. Versions are rows of the bytes store underneath, laid out like window rows (see
:mod:`streamer.state.layout`)::

    version  b"k" + len(key) + key + valid_from   -> b"\\x01" + value, or b"\\x00" (tombstone)
    purge    b"t" + valid_from + len(key) + key   -> b""  (this version may become purgeable)
    latest   b"l" + len(key) + key                -> valid_from of the key's latest version
    meta     b"m" + b"stream-time"                -> the largest timestamp put (8 bytes)

Being ordinary rows, all four are changelogged and restored like any other entry: a
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
* **Purging is bounded by stream time, not by scans of the store.** A purge at cutoff
  ``c = history_start - 1`` deletes every version that began at or before ``c`` except each
  key's last one there, and that one too when it is a tombstone: no query at or after the
  history start can need them. Purges run each time the history start has moved by
  :attr:`VersionedKeyValueStore.purge_step` (a twentieth of the retention), so at most one
  version of a key begins more than that before the history start. Each version's purge
  row is read once; handling it reads only that key's versions back to the previous purge's
  cutoff. The latest value of a key is never purged.
* **Latest lookups are point reads**: the latest row names the key's latest version, so
  ``get(key)``, and ``get(key, as_of=t)`` for ``t`` at or after that version, read two rows
  and open no iterator. Older ``as_of`` lookups seek backwards from ``t``.
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
_LATEST = b"l"
PURGE_STEPS_PER_RETENTION = 20
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
        self.purge_step = max(1, history_retention // PURGE_STEPS_PER_RETENTION)
        self._stream_time = -1
        # The cutoff of the last purge this object made (None: none yet, or undone by a
        # discarded write cache): see _purge for what holds up to it.
        self._purged_to: int | None = None
        self._refresh_stream_time()

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
        stream_time = -1 if raw is None else layout.decode_time(raw)
        if stream_time < self._stream_time:  # discarded writes may have held purges
            self._purged_to = None
        self._stream_time = stream_time

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
        latest = self._latest_from(key_bytes)
        outcome = PutOutcome.HISTORY if latest is not None and latest > timestamp else None
        if outcome is None:
            rows.append((_latest_row(key_bytes), layout.encode_time(timestamp)))
        if timestamp > self._stream_time:
            rows.append((_STREAM_TIME_ROW, layout.encode_time(timestamp)))
        self._store.write_batch(rows)
        if timestamp > self._stream_time:
            self._stream_time = timestamp
            cutoff = timestamp - self.history_retention - 1
            if self._purged_to is None or cutoff - self._purged_to >= self.purge_step:
                self._purge(cutoff)
        return outcome or PutOutcome.LATEST

    def _latest_from(self, key_bytes: bytes) -> int | None:
        raw = self._store.get(_latest_row(key_bytes))
        return None if raw is None else layout.decode_time(raw)

    def delete(self, key: K, timestamp: int) -> PutOutcome:
        """A tombstone for ``key`` as of ``timestamp``; a tombstone is a version too."""
        return self.put(key, None, timestamp)

    def _purge(self, cutoff: int) -> None:
        """Delete every version that began at or before ``cutoff`` (``history_start - 1``)
        except each key's last one there when it holds a value: that one may still be valid
        at the history start. A key left with no version loses its latest row too.

        After it, at most one version of a key begins at or before ``cutoff``, and no purge
        row does: puts before the history start are refused, so none can come back while
        the stream time stands.
        """
        lower = layout.INDEX
        if self._purged_to is not None:
            lower = _index_upper(self._purged_to + 1) or lower
        due = self._store.range(lower, _index_upper(cutoff + 1))
        keys = dict.fromkeys(layout.parse_window_index_key(row)[0] for row, _ in due)
        deletes = [row for key in keys for row in self._purgeable(key, cutoff)]
        if deletes:
            self._store.write_batch([(row, None) for row in deletes])
        self._purged_to = cutoff

    def _purgeable(self, key_bytes: bytes, cutoff: int) -> list[bytes]:
        """The rows of ``key_bytes`` that :meth:`_purge` deletes."""
        old = self._versions_up_to(key_bytes, cutoff)
        if not old:
            return []
        last_row, last_value = old[-1]
        keep = last_value != _TOMBSTONE
        rows: list[bytes] = []
        for row, _ in old:
            rows.append(layout.window_index_key(key_bytes, layout.decode_time(row, len(row) - 8)))
            if not (keep and row == last_row):
                rows.append(row)
        last_from = layout.decode_time(last_row, len(last_row) - 8)
        if not keep and self._latest_from(key_bytes) == last_from:
            rows.append(_latest_row(key_bytes))  # the key is gone altogether
        return rows

    def _versions_up_to(self, key_bytes: bytes, time: int) -> list[tuple[bytes, bytes]]:
        """The key's version rows that begin at or before ``time``, oldest first.

        Read backwards from ``time``, stopping at the first version that begins at or
        before the last purge's cutoff: there is at most one. So the scan does not pass the
        versions deleted before it (RocksDB keeps their tombstones until it compacts them
        away), unless the key has no version left there at all.
        """
        lower = layout.key_prefix(key_bytes)
        upper = layout.window_key(key_bytes, time) + b"\x00"
        floor = self._purged_to
        rows: list[tuple[bytes, bytes]] = []
        for row, data in self._store.range(lower, upper, reverse=True):
            rows.append((row, data))
            if floor is not None and layout.decode_time(row, len(row) - 8) <= floor:
                break
        rows.reverse()
        return rows

    # --- reads -----------------------------------------------------------------------------

    def get(self, key: K, *, as_of: int | None = None) -> V | None:
        """The latest value, or with ``as_of`` the value valid at that time (None when the
        key had none, or ``as_of`` is older than :attr:`history_start`)."""
        version = self._version(key, as_of, valid_to=False)
        return None if version is None else version.value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def get_version(self, key: K, *, as_of: int | None = None) -> Version[V] | None:
        """The version valid at ``as_of`` (default: the latest one), tombstones included."""
        return self._version(key, as_of, valid_to=True)

    def _version(self, key: K, as_of: int | None, *, valid_to: bool) -> Version[V] | None:
        """As :meth:`get_version`; without ``valid_to`` an older version's end is left
        unread (set to its start), which saves a seek."""
        if as_of is not None and as_of < self.history_start:
            return None
        key_bytes = self._key_serde.encode(key)
        latest = self._latest_from(key_bytes)
        if latest is None:
            return None
        if as_of is None or as_of >= latest:
            data = self._store.get(layout.window_key(key_bytes, latest))
            if data is None:
                msg = f"versioned store {self.name!r}: a key's latest version row is missing"
                raise StateError(msg)
            return Version(self._decode(data), latest, None)
        prefix = layout.key_prefix(key_bytes)
        upper = layout.window_key(key_bytes, as_of) + b"\x00"
        found = next(self._store.range(prefix, upper, reverse=True), None)
        if found is None:
            return None
        row, data = found
        valid_from = layout.decode_time(row, len(row) - 8)
        end: int | None = valid_from
        if valid_to:
            later = next(self._store.range(row + b"\x00", prefix_upper_bound(prefix)), None)
            end = None if later is None else layout.decode_time(later[0], len(row) - 8)
        return Version(self._decode(data), valid_from, end)

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


def _latest_row(key_bytes: bytes) -> bytes:
    return _LATEST + layout.length_prefixed(key_bytes)


def _index_upper(time: int) -> bytes | None:
    """Exclusive upper bound of purge rows whose ``valid_from`` is ``< time``."""
    if time > layout.MAX_TIME:
        return prefix_upper_bound(layout.INDEX)
    return layout.INDEX + layout.encode_time(max(time, layout.MIN_TIME))


__all__ = ["PutOutcome", "Version", "VersionedKeyValueStore"]
