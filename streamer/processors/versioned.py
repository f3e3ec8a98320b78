"""Versioned tables and point-in-time (as-of) stream-table joins.

A versioned table (``builder.table(topic, versioned=HistoryRetention(ms))``) writes each
update into a :class:`~streamer.state.versioned.VersionedKeyValueStore` at the record's
timestamp. Only an update that becomes its key's latest version is forwarded downstream;
an out-of-order update goes into the history silently (counted,
``table-update-out-of-order``), and one older than the history retention is not applied
(counted, ``table-update-expired-dropped``).

A stream joined with a versioned table (:class:`AsOfJoinProcessor`) joins each record with
the table's value **as of the record's timestamp**, not the value at processing time.

* Without a grace period, a record joins when it arrives. A table update that arrives
  later, even one timestamped before the record, is not taken into account.
* With ``grace=g``, a record at ``ts`` waits in a changelogged buffer store until the task's
  stream time reaches ``ts + g``, so table updates up to ``g`` late are taken into account.
  Stream time is the task's (table records move it too); the buffer is emptied after every
  record that moves it, in timestamp order (ties: by encoded key, then arrival). A record
  already ``g`` behind stream time on arrival joins at once.
* A record whose timestamp is older than the table's history start (its stream time minus
  the history retention) when it joins cannot be answered exactly: it is dropped and
  counted (``join-outside-history-dropped``), for left joins too, since a left join's
  ``None`` would claim the table had no row then.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

from streamer.errors import SerializationError
from streamer.processors.api import Headers, Processor, ProcessorContext, PunctuationType, Record
from streamer.processors.drops import (
    JOIN_OUTSIDE_HISTORY,
    TABLE_UPDATE_EXPIRED,
    TABLE_UPDATE_OUT_OF_ORDER,
)
from streamer.processors.tables import AsOfLookup, TableView
from streamer.serde import Serde

Buffered = list[tuple[Any, Headers]]
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_NO_VALUE = 0xFFFFFFFF


class VersionedMaterializeProcessor(Processor):
    """Puts each update into the versioned store at its timestamp; forwards the latest."""

    def __init__(self, store: str) -> None:
        self.store_name = store

    def init(self, context: ProcessorContext) -> None:
        # Imported here: the state package loads the RocksDB module, which building a
        # topology (``import streamer``) must not.
        from streamer.state.versioned import PutOutcome

        super().init(context)
        self.store = context.store(self.store_name)
        self.latest, self.history = PutOutcome.LATEST, PutOutcome.HISTORY

    def process(self, record: Record) -> None:
        if record.key is None:
            self.context.count("null-key-dropped")
            return
        outcome = self.store.put(record.key, record.value, record.timestamp)
        if outcome is self.latest:
            self.context.forward(record)
        elif outcome is self.history:
            self.context.count(TABLE_UPDATE_OUT_OF_ORDER)
        else:
            self.context.count(TABLE_UPDATE_EXPIRED)


class AsOfJoinProcessor(Processor):
    """A stream-table join that looks the table up as of each record's timestamp.

    ``view`` answers ``get(key, as_of=ts)``; ``history_store`` is the versioned store under
    it, whose ``history_start`` bounds the lookups. With ``grace > 0`` records wait in
    ``buffer_store`` (a window store of :class:`BufferedRecordsSerde` lists); see the
    module docstring for the order of emission.
    """

    def __init__(
        self,
        view: TableView,
        history_store: str,
        joiner: Callable[[Any, Any], Any],
        *,
        left: bool,
        grace: int = 0,
        buffer_store: str | None = None,
    ) -> None:
        self.view = view
        self.history_store = history_store
        self.joiner = joiner
        self.left = left
        self.grace = grace
        self.buffer_store = buffer_store

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.table = cast("AsOfLookup", self.view.bind(context))
        self.history = context.store(self.history_store)
        self.buffer = None if self.buffer_store is None else context.store(self.buffer_store)
        self._released_to: int | None = None  # every record before it has left the buffer
        if self.buffer is not None:
            # Table records move stream time too: each move may release buffered records.
            context.schedule(1, PunctuationType.STREAM_TIME, self._release)

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            self.context.count("join-null-key-or-value-skipped")
            return
        if self.buffer is None:
            self._join(record)
            return
        stream_time = self.context.stream_time
        self._release(stream_time)
        if record.timestamp <= stream_time - self.grace:
            self._join(record)
            return
        waiting = self.buffer.fetch(record.key, record.timestamp) or []
        waiting.append((record.value, tuple(record.headers)))
        self.buffer.put(record.key, record.timestamp, waiting)

    def _release(self, stream_time: int) -> None:
        """Join every buffered record with ``ts <= stream_time - grace``, oldest first."""
        buffer = self.buffer
        if buffer is None:
            return
        bound = stream_time - self.grace + 1
        # Nothing waits before the last bound: later records before it join at once. So the
        # scan starts there, not at the rows deleted before (a rollback rebuilds the step).
        due = list(buffer.windows_starting_before(bound, since=self._released_to))
        self._released_to = max(bound, self._released_to or bound)
        for key, ts, waiting in due:
            buffer.delete(key, ts)
            for value, headers in waiting:
                self._join(Record(key, value, ts, headers))

    def _join(self, record: Record) -> None:
        if record.timestamp < self.history.history_start:
            self.context.count(JOIN_OUTSIDE_HISTORY)
            return
        row = self.table.get(record.key, as_of=record.timestamp)
        if row is None and not self.left:
            self.context.count("join-unmatched-dropped")
            return
        self.context.forward(record.with_value(self.joiner(record.value, row)))


class BufferedRecordsSerde:
    """The records waiting in an as-of join's buffer under one ``(key, timestamp)``: values
    (through ``value_serde``) with their headers, in arrival order.

    Layout: a 4-byte count, then per record its value (4-byte length + bytes) and headers
    (2-byte count; each a 2-byte name length, UTF-8 name, 4-byte value length with
    ``0xFFFFFFFF`` for a None value, value bytes). Integers are big-endian.
    """

    def __init__(self, value_serde: Serde[Any]) -> None:
        self.value_serde = value_serde

    def encode(self, value: Buffered) -> bytes:
        parts = [_U32.pack(len(value))]
        for item, headers in value:
            data = self.value_serde.encode(item)
            parts += [_U32.pack(len(data)), data, _U16.pack(len(headers))]
            for name, header in headers:
                raw = name.encode()
                parts += [_U16.pack(len(raw)), raw]
                if header is None:
                    parts.append(_U32.pack(_NO_VALUE))
                else:
                    parts += [_U32.pack(len(header)), header]
        return b"".join(parts)

    def decode(self, data: bytes) -> Buffered:
        reader = _Reader(data)
        records: Buffered = []
        for _ in range(reader.u32()):
            item = self.value_serde.decode(reader.take(reader.u32()))
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(reader.u16()):
                name = reader.take(reader.u16()).decode()
                size = reader.u32()
                headers.append((name, None if size == _NO_VALUE else reader.take(size)))
            records.append((item, tuple(headers)))
        if reader.pos != len(data):
            msg = f"a join buffer entry has {len(data) - reader.pos} trailing bytes"
            raise SerializationError(msg)
        return records


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            msg = f"a join buffer entry of {len(self.data)} bytes is truncated at byte {self.pos}"
            raise SerializationError(msg)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def u16(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        return value


__all__ = ["AsOfJoinProcessor", "BufferedRecordsSerde", "VersionedMaterializeProcessor"]
