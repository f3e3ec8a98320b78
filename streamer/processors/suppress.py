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

    b"\\x00"                              -> count, bytes, observed time (3 x 8 bytes)
    b"k" + key                            -> buffer time, timestamp, flag, value
    b"t" + buffer time (8 bytes) + key    -> b"\\x01"  (the time index)

Headers of buffered updates are not kept: emitted records have none.
"""

from __future__ import annotations

import struct
from typing import Any, Literal

from streamer.errors import StateError
from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.serde import Serde

WhenFull = Literal["emit-early", "shutdown"]

_META = b"\x00"
_KEYS = b"k"
_TIMES = b"t"
_INDEXED = b"\x01"
_META_FIELDS = struct.Struct(">qqq")
_TIME = struct.Struct(">q")
_ENTRY = struct.Struct(">qqB")
_NO_TIME = -1


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
        count, size, observed = self._meta()
        key = self.key_serde.encode(record.key)
        value = None if record.value is None else self.value_serde.encode(record.value)
        previous = self.store.get(_KEYS + key)
        if previous is None:
            buffer_time = record.timestamp
            count += 1
            self.store.put(_TIMES + _TIME.pack(buffer_time) + key, _INDEXED)
        else:
            buffer_time = _ENTRY.unpack_from(previous)[0]
            size -= len(key) + len(previous) - _ENTRY.size
        entry = _ENTRY.pack(buffer_time, record.timestamp, value is not None) + (value or b"")
        self.store.put(_KEYS + key, entry)
        size += len(key) + len(value or b"")
        observed = max(observed, record.timestamp)
        count, size = self._emit_due(count, size, observed)
        count, size = self._enforce_bounds(count, size)
        self.store.put(_META, _META_FIELDS.pack(count, size, observed))

    def _meta(self) -> tuple[int, int, int]:
        data = self.store.get(_META)
        if data is None:
            return 0, 0, _NO_TIME
        count, size, observed = _META_FIELDS.unpack(data)
        return count, size, observed

    def _emit_due(self, count: int, size: int, observed: int) -> tuple[int, int]:
        """Emit every key whose buffer time + limit is at most ``observed``."""
        cutoff = observed - self.limit_ms
        if cutoff < 0:
            return count, size
        due = list(self.store.range(_TIMES, _TIMES + _TIME.pack(cutoff + 1)))
        for index_key, _ in due:
            size -= self._emit(index_key)
            count -= 1
        return count, size

    def _enforce_bounds(self, count: int, size: int) -> tuple[int, int]:
        """Emit the oldest keys early, or stop, while the buffer is past a bound."""
        while self._past_bound(count, size):
            if self.when_full == "shutdown":
                msg = (
                    f"the suppress buffer of step {self.context.step_name!r} is full "
                    f"({count} records, {size} bytes; max_records={self.max_records}, "
                    f"max_bytes={self.max_bytes}) and when_full='shutdown': raise the bounds, "
                    "shorten until_time_limit, or use when_full='emit-early'"
                )
                raise BufferFullError(msg)
            oldest = next(self.store.prefix(_TIMES))[0]
            size -= self._emit(oldest)
            count -= 1
        return count, size

    def _past_bound(self, count: int, size: int) -> bool:
        return (self.max_records is not None and count > self.max_records) or (
            self.max_bytes is not None and size > self.max_bytes
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
