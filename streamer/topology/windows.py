"""Window definitions and their exact semantics. All times are milliseconds; record
timestamps are never negative.

Kinds, and the windows a record of a key belongs to:

* :class:`TumblingWindows` ``(size)``: windows ``[k*size, (k+1)*size)``; each record belongs
  to exactly one.
* :class:`HoppingWindows` ``(size, advance)``: windows ``[k*advance, k*advance + size)``,
  ``k >= 0``; a record belongs to every such window that contains it (``ceil(size / advance)``
  of them at most, fewer near time 0: windows never start before 0, as in Kafka Streams).
* :class:`SlidingWindows` ``(size)``: one window per distinct timestamp ``t`` of the key's
  records (accepted while that window was open, see below), covering ``[t - size, t]``
  (both ends inclusive; the start is negative when ``t < size``). A record at ``r`` belongs
  to every window ``t`` with ``r <= t <= r + size``: its own, and those of later records up
  to ``size`` after it. The window ending at a record answers "how many records in the last
  ``size`` ms, including this one". Unlike Kafka Streams, there are no windows *starting*
  just after a record: every window ends at one.
* :class:`SessionWindows` ``(gap)``: records of one key at most ``gap`` apart, chained, form a
  session ``[first, last]`` (both inclusive). A record within ``gap`` of a session (at most
  ``gap`` before its first or after its last record, or inside it) joins it; a record within
  ``gap`` of several sessions merges them into one.

Closing. Stream time is the largest event time the task has seen, this record included. A
window is *open* while stream time ``<= close_at`` and *closed* once stream time ``>
close_at``, where, as in Kafka Streams:

* tumbling and hopping: ``close_at = end - 1 + grace`` (``end`` is exclusive, so the window
  closes once stream time ``>= end + grace``);
* sliding: ``close_at = end + grace`` (``end`` is inclusive);
* session: ``close_at = end + gap + grace``: until stream time passes ``end + gap``, a record
  arriving in order could still extend the session, so grace only counts from there.

Contents and late records:

* A window holds exactly the records of its key whose timestamps it covers and that arrived
  while it was open. A closed window never changes again; in particular a closed session
  never merges: a later record within ``gap`` of it starts a new session.
* A sliding window ``t`` exists if a record at ``t`` arrived while it was open; it then holds
  the earlier-arrived records of ``[t - size, t]`` too.
* A record is *late* when it reaches no open window: for tumbling and hopping windows when
  every window containing it is closed; for sliding windows when every window that could ever
  hold it (those ending in ``[r, r + size]``) is closed, i.e. stream time ``> r + size +
  grace``; for sessions when the session it would form or extend is closed. A late record is
  dropped and counted (``late-records``), or sent to the late topic. (A sliding-window record
  whose own window is already closed but that is not late is kept for the later windows that
  hold it; it is not counted as late even if no such window ever appears.)

Emitting (``emit=`` on the windowed aggregations):

* ``"update"``: each record forwards, at once, the new value of every open window it changed,
  with the record's timestamp. When a record merges sessions, each merged session whose bounds
  differ from the new one is forwarded first with a ``None`` value (a tombstone).
* ``"final"``: each window is forwarded exactly once, when it closes, with its final value.
  Its record timestamp is the last timestamp the window covers: ``end - 1`` for tumbling and
  hopping windows, ``end`` for sliding and session windows. Windows that close together come
  in no particular order.

Either way a closed window leaves the store, so state is bounded by the windows still open.

Idle closing (``idle_close_ms``): stream time moves only with records, so on a quiet task
windows would stay open. With ``idle_close_ms``, the step checks the wall clock every
``idle_close_ms / 2`` ms; once the task has been quiet (no record reached the step and stream
time did not move) for at least ``idle_close_ms``, the step's time becomes stream time plus
the quiet time, and windows close by it as if a record of that timestamp had arrived. That
time never goes back: records arriving afterwards are judged against it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from streamer.errors import SerializationError, TopologyError
from streamer.serde import Serde


def _check_positive(what: str, value: int) -> None:
    if value <= 0:
        msg = f"{what} must be a positive number of milliseconds, got {value}"
        raise TopologyError(msg)


def _check_grace(grace: int) -> None:
    if grace < 0:
        msg = f"grace must be zero or positive, got {grace} ms"
        raise TopologyError(msg)


@dataclass(frozen=True, slots=True)
class TumblingWindows:
    size: int
    grace: int = 0

    def __post_init__(self) -> None:
        _check_positive("window size", self.size)
        _check_grace(self.grace)

    def windows_for(self, timestamp: int) -> list[int]:
        """Start times of the windows containing ``timestamp``."""
        return [timestamp - timestamp % self.size]

    def end_of(self, start: int) -> int:
        return start + self.size

    @property
    def retention(self) -> int:
        return self.size + self.grace

    def describe(self) -> str:
        return f"tumbling(size={self.size}ms, grace={self.grace}ms)"


@dataclass(frozen=True, slots=True)
class HoppingWindows:
    size: int
    advance: int
    grace: int = 0

    def __post_init__(self) -> None:
        _check_positive("window size", self.size)
        _check_positive("window advance", self.advance)
        _check_grace(self.grace)
        if self.advance > self.size:
            msg = f"window advance ({self.advance} ms) cannot exceed its size ({self.size} ms)"
            raise TopologyError(msg)

    def windows_for(self, timestamp: int) -> list[int]:
        first = max(0, timestamp - self.size + self.advance)
        first -= first % self.advance
        return list(range(first, timestamp + 1, self.advance))

    def end_of(self, start: int) -> int:
        return start + self.size

    @property
    def retention(self) -> int:
        return self.size + self.grace

    def describe(self) -> str:
        return f"hopping(size={self.size}ms, advance={self.advance}ms, grace={self.grace}ms)"


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    size: int
    grace: int = 0

    def __post_init__(self) -> None:
        _check_positive("window size", self.size)
        _check_grace(self.grace)

    def describe(self) -> str:
        return f"sliding(size={self.size}ms, grace={self.grace}ms)"


@dataclass(frozen=True, slots=True)
class SessionWindows:
    gap: int
    grace: int = 0

    def __post_init__(self) -> None:
        _check_positive("session gap", self.gap)
        _check_grace(self.grace)

    def describe(self) -> str:
        return f"session(gap={self.gap}ms, grace={self.grace}ms)"


FixedWindows = TumblingWindows | HoppingWindows
Windows = TumblingWindows | HoppingWindows | SlidingWindows | SessionWindows


@dataclass(frozen=True, slots=True)
class Windowed:
    """The key of a windowed aggregate: the record key and the window's bounds.

    ``end`` is exclusive for tumbling and hopping windows, inclusive for sliding and session
    windows (see the module docstring).
    """

    key: object
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class JoinWindows:
    """Records of two streams join when ``right.ts - left.ts`` lies in ``[-before, after]``."""

    before: int
    after: int
    grace: int = 0

    def __post_init__(self) -> None:
        if self.before < 0 or self.after < 0:
            msg = f"join window bounds must be >= 0, got before={self.before}, after={self.after}"
            raise TopologyError(msg)
        _check_grace(self.grace)

    @classmethod
    def of(cls, difference: int, *, grace: int = 0) -> JoinWindows:
        """A symmetric window: records at most ``difference`` ms apart join."""
        return cls(difference, difference, grace)

    def describe(self) -> str:
        return f"join(before={self.before}ms, after={self.after}ms, grace={self.grace}ms)"


class WindowedSerde:
    """Serialises :class:`Windowed` keys: the inner key's bytes, then start and end (8-byte BE)."""

    def __init__(self, inner: Serde[Any]) -> None:
        self.inner = inner

    def encode(self, value: Windowed) -> bytes:
        return self.inner.encode(value.key) + _TWO_LONGS.pack(value.start, value.end)

    def decode(self, data: bytes) -> Windowed:
        if len(data) < 16:
            msg = f"a windowed key needs at least 16 bytes, got {len(data)}"
            raise SerializationError(msg)
        start, end = _TWO_LONGS.unpack(data[-16:])
        return Windowed(self.inner.decode(data[:-16]), start, end)


_TWO_LONGS = struct.Struct(">qq")
