"""Window definitions and their exact semantics. All times are milliseconds.

* :class:`TumblingWindows` ``(size)``: windows ``[k*size, (k+1)*size)``; each record belongs
  to exactly one.
* :class:`HoppingWindows` ``(size, advance)``: windows ``[k*advance, k*advance + size)``; a
  record belongs to every such window that contains it (``size / advance`` of them). Windows
  never start before 0, as in Kafka Streams.
* :class:`SlidingWindows` ``(size)``: one window per distinct record timestamp ``t`` of a key,
  covering ``[t - size, t]`` (both ends inclusive). A record at ``r`` belongs to its own
  window and to every later window ``t`` with ``t - size <= r``. This is the window to ask
  "how many transactions in the last ``size`` ms, including this one".
* :class:`SessionWindows` ``(gap)``: records of one key closer than ``gap`` to each other
  form a session ``[first, last]``; a record that falls within ``gap`` of two sessions merges
  them.

Every kind has a ``grace`` period. A window is **closed** once stream time (the largest
event time the task has seen) reaches ``end + grace``, where ``end`` is the exclusive end for
tumbling and hopping windows and the inclusive last timestamp for sliding and session windows
(so those close when stream time passes ``end + grace``). A record whose windows are all
closed is *late*: it is dropped and counted, or sent to a side output.
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
