"""Suppressing a table's updates: per key, hold the latest value for a time limit.

``Table.suppress(until_time_limit=..., name=...)`` rate-limits a (non-windowed) table's
updates downstream, as Kafka Streams' ``suppress(untilTimeLimit(...))``:

* the first update of a key that is not buffered starts its *buffer time* (the update's
  timestamp); later updates of the key replace the buffered value and keep the buffer time;
* a key is emitted (its latest value, with that value's timestamp, deletions included) once
  the step's observed time reaches buffer time + limit. Observed time is the largest
  timestamp of the updates this step has seen, so emission follows stream time, never the
  wall clock, and happens when an update arrives;
* keys due at the same time are emitted in buffer-time order, then key-byte order;
* with ``max_records`` or ``max_bytes`` (the encoded keys and values held), a buffer past
  its bound either emits its oldest keys early (``"emit-early"``) or stops the app with
  :class:`BufferFullError` (``"shutdown"``).

The buffer is a key-value store of its own (changelogged and restored like any store), so
after a crash under exactly-once the emitted records and the buffer's contents are those
of the last committed transaction: nothing is lost or emitted twice. Its layout, in encoded
key order::

    b"\\x00"                              -> count, bytes, observed time, earliest held
                                            buffer time (4 x 8 bytes)
    b"k" + key                            -> buffer time, timestamp, flag, value
    b"t" + buffer time (8 bytes) + key    -> b"\\x01"  (the time index)

Headers of buffered updates are not kept: emitted records have none.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from streamer.errors import StateError
from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.serde import Serde

WhenFull = Literal["emit-early", "shutdown"]

_META = b"\x00"
_KEYS = b"k"
_TIMES = b"t"
_INDEXED = b"\x01"
_TIMES_END = b"u"
_TIME = struct.Struct(">q")
_ENTRY = struct.Struct(">qqB")
_NO_TIME = -1
_NONE_HELD = 2**62


@dataclass(slots=True)
class _BufferState:
    """The buffer's totals, kept in its store under ``_META``.

    ``earliest`` is at most the buffer time of every held key (``_NONE_HELD`` when none
    is), so no key is due while the observed time is below ``earliest`` + limit.
    """

    count: int = 0
    size: int = 0
    observed: int = _NO_TIME
    earliest: int = _NONE_HELD

    _FIELDS = struct.Struct(">qqqq")

    def encode(self) -> bytes:
        return self._FIELDS.pack(self.count, self.size, self.observed, self.earliest)

    @classmethod
    def decode(cls, data: bytes) -> _BufferState:
        return cls(*cls._FIELDS.unpack(data))


class BufferFullError(StateError):
    """A suppress buffer with ``when_full="shutdown"`` went past its bound."""


class SuppressProcessor(Processor):
    """Buffers table updates per key and forwards them after ``limit_ms`` (see module doc).

    The store holds bytes; keys and values go through the table's serdes.
    """

    def __init__(
        self,
        store: str,
        limit_ms: int,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        *,
        max_records: int | None,
        max_bytes: int | None,
        when_full: WhenFull,
    ) -> None:
        self.store_name = store
        self.limit_ms = limit_ms
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.when_full = when_full

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        if record.key is None:
            self.context.count("null-key-dropped")
            return
        state = self._state()
        key = self.key_serde.encode(record.key)
        value = None if record.value is None else self.value_serde.encode(record.value)
        previous = self.store.get(_KEYS + key)
        if previous is None:
            buffer_time = record.timestamp
            state.count += 1
            state.earliest = min(state.earliest, buffer_time)
            self.store.put(_TIMES + _TIME.pack(buffer_time) + key, _INDEXED)
        else:
            buffer_time = _ENTRY.unpack_from(previous)[0]
            state.size -= len(key) + len(previous) - _ENTRY.size
        entry = _ENTRY.pack(buffer_time, record.timestamp, value is not None) + (value or b"")
        self.store.put(_KEYS + key, entry)
        state.size += len(key) + len(value or b"")
        state.observed = max(state.observed, record.timestamp)
        self._emit_due(state)
        self._enforce_bounds(state)
        self.store.put(_META, state.encode())

    def _state(self) -> _BufferState:
        data = self.store.get(_META)
        return _BufferState() if data is None else _BufferState.decode(data)

    def _held_oldest_first(self, state: _BufferState) -> Iterator[bytes]:
        """Time-index keys from the earliest held buffer time on; the seek skips the
        deletions of emitted entries, which all lie before it."""
        start = _TIMES + _TIME.pack(state.earliest)
        return (index_key for index_key, _ in self.store.range(start, _TIMES_END))

    def _emit_due(self, state: _BufferState) -> None:
        """Emit every key whose buffer time + limit is at most the observed time."""
        cutoff = state.observed - self.limit_ms
        if cutoff < state.earliest:
            return
        due: list[bytes] = []
        held = self._held_oldest_first(state)
        state.earliest = _NONE_HELD  # unless a key that is not due is held
        for index_key in held:
            buffer_time = _TIME.unpack_from(index_key, 1)[0]
            if buffer_time > cutoff:
                state.earliest = buffer_time
                break
            due.append(index_key)
        for index_key in due:
            state.size -= self._emit(index_key)
            state.count -= 1

    def _enforce_bounds(self, state: _BufferState) -> None:
        """Emit the oldest keys early, or stop, while the buffer is past a bound."""
        while self._past_bound(state):
            if self.when_full == "shutdown":
                msg = (
                    f"the suppress buffer of step {self.context.step_name!r} is full "
                    f"({state.count} records, {state.size} bytes; "
                    f"max_records={self.max_records}, max_bytes={self.max_bytes}) and "
                    "when_full='shutdown': raise the bounds, shorten until_time_limit, or "
                    "use when_full='emit-early'"
                )
                raise BufferFullError(msg)
            state.size -= self._emit(next(self._held_oldest_first(state)))
            state.count -= 1

    def _past_bound(self, state: _BufferState) -> bool:
        return (self.max_records is not None and state.count > self.max_records) or (
            self.max_bytes is not None and state.size > self.max_bytes
        )

    def _emit(self, index_key: bytes) -> int:
        """Forward and forget the key of time-index entry ``index_key``; returns its size."""
        key = index_key[1 + _TIME.size :]
        entry = self.store.get(_KEYS + key)
        if entry is None:
            msg = f"suppress buffer {self.store_name!r} has a time-index entry without its key"
            raise StateError(msg)
        _buffer_time, timestamp, present = _ENTRY.unpack_from(entry)
        raw = entry[_ENTRY.size :]
        self.store.delete(index_key)
        self.store.delete(_KEYS + key)
        value = self.value_serde.decode(raw) if present else None
        self.context.forward(Record(self.key_serde.decode(key), value, timestamp))
        return len(key) + len(raw)
