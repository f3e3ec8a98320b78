"""Windowed stream-stream joins.

Two records join when their keys are equal and ``right.ts - left.ts`` lies in
``[-before, after]``. Each side buffers its records in a window store keyed by
(key, timestamp), with a ``matched`` flag per record.

* A record is late, and dropped (counted), once stream time passes ``ts + grace``.
* A match is forwarded as soon as the second record of the pair arrives.
* A buffered record expires once no record that could still arrive can match it: a left
  record at ``l`` once stream time passes ``l + after + grace``, a right record at ``r`` once
  it passes ``r + before + grace``. Any later partner would be late, so expiry is final.
* Left and outer joins forward ``joiner(left, None)`` for a left record that expires
  unmatched; outer joins also forward ``joiner(None, right)``. Unmatched results are thus
  emitted once, when certain, never as a guess later contradicted.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from streamer.errors import SerializationError
from streamer.processors.api import Processor, ProcessorContext, Record
from streamer.serde import Serde

Joiner = Callable[[Any, Any], Any]
_LENGTH = struct.Struct(">I")


class StreamStreamJoinSide(Processor):
    """One input side of a stream-stream join. Both sides share the two stores."""

    def __init__(
        self,
        *,
        this_store: str,
        other_store: str,
        is_left: bool,
        before: int,
        after: int,
        grace: int,
        joiner: Joiner,
        kind: str,
    ) -> None:
        self.this_name = this_store
        self.other_name = other_store
        self.is_left = is_left
        self.before = before
        self.after = after
        self.grace = grace
        self.joiner = joiner
        self.kind = kind

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.this = context.store(self.this_name)
        self.other = context.store(self.other_name)
        # Window of timestamps on the other side that can match a record of this side.
        self.reach_back, self.reach_ahead = (
            (self.before, self.after) if self.is_left else (self.after, self.before)
        )
        emit_this = self.kind == "outer" or (self.kind == "left" and self.is_left)
        emit_other = self.kind == "outer" or (self.kind == "left" and not self.is_left)
        left_store, right_store = (
            (self.this, self.other) if self.is_left else (self.other, self.this)
        )
        self._expiry = (
            (left_store, self.after, emit_this if self.is_left else emit_other, True),
            (right_store, self.before, emit_other if self.is_left else emit_this, False),
        )

    def _join(self, mine: Any, theirs: Any) -> Any:
        return self.joiner(mine, theirs) if self.is_left else self.joiner(theirs, mine)

    def process(self, record: Record) -> None:
        key, ts = record.key, record.timestamp
        if key is None or record.value is None:
            self.context.count("join-null-key-or-value-skipped")
            return
        stream_time = self.context.stream_time
        if stream_time > ts + self.grace:
            self.context.count("late-records")
            self._expire(stream_time)
            return
        matched = False
        for other_ts, entries in list(
            self.other.fetch_range(key, ts - self.reach_back, ts + self.reach_ahead)
        ):
            changed = False
            for entry in entries:
                self.context.forward(
                    Record(key, self._join(record.value, entry[0]), max(ts, other_ts), ())
                )
                if not entry[1]:
                    entry[1] = True
                    changed = True
                matched = True
            if changed:
                self.other.put(key, other_ts, entries)
        mine = self.this.fetch(key, ts) or []
        mine.append([record.value, matched])
        self.this.put(key, ts, mine)
        self._expire(stream_time)

    def _expire(self, stream_time: int) -> None:
        for store, reach, emit_unmatched, store_is_left in self._expiry:
            bound = stream_time - reach - self.grace
            for key, ts, entries in list(store.windows_starting_before(bound)):
                if emit_unmatched:
                    for value, matched in entries:
                        if not matched:
                            joined = (
                                self.joiner(value, None)
                                if store_is_left
                                else self.joiner(None, value)
                            )
                            self.context.forward(Record(key, joined, ts, ()))
                store.delete(key, ts)


class JoinBufferSerde:
    """The buffer of one (key, timestamp) of a stream-stream join store, with the side's own
    value serde: ``[[value, matched], ...]`` as, per entry, a flag byte (1: matched), the
    value's length (4 bytes, big-endian) and the value encoded by ``inner``.

    Used when the join is given that side's value serde (``StreamJoined``); without one the
    buffer is stored as JSON.
    """

    def __init__(self, inner: Serde[Any]) -> None:
        self.inner = inner

    def encode(self, entries: list[list[Any]]) -> bytes:
        out = bytearray()
        for value, matched in entries:
            data = self.inner.encode(value)
            out += b"\x01" if matched else b"\x00"
            out += _LENGTH.pack(len(data))
            out += data
        return bytes(out)

    def decode(self, data: bytes) -> list[list[Any]]:
        entries: list[list[Any]] = []
        pos = 0
        while pos < len(data):
            if pos + 5 > len(data):
                msg = f"a join buffer of {len(data)} bytes is truncated at byte {pos}"
                raise SerializationError(msg)
            (length,) = _LENGTH.unpack_from(data, pos + 1)
            end = pos + 5 + length
            if end > len(data):
                msg = f"a join buffer of {len(data)} bytes is truncated at byte {pos}"
                raise SerializationError(msg)
            entries.append([self.inner.decode(data[pos + 5 : end]), data[pos] == 1])
            pos = end
        return entries

    def __repr__(self) -> str:
        return f"JoinBufferSerde({type(self.inner).__name__})"
