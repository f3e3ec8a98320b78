"""A task's punctuators: callbacks due on a grid of stream or wall-clock times.

Due times are a grid ``interval`` apart: for stream time, the multiples of ``interval`` (the
first one above the stream time when scheduled); for the wall clock, ``interval`` after the
time of scheduling, then every ``interval``. A clock that jumps over several due times fires
a punctuator once. Punctuators fire in the order they were scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamer.errors import StreamerError
from streamer.processors.api import PunctuationType, Punctuator


@dataclass(slots=True)
class _Punctuation:
    interval: int
    kind: PunctuationType
    callback: Punctuator
    next_time: int


class Punctuations:
    """The punctuators of one task; ``on_stream_time`` is True once one follows stream time."""

    def __init__(self) -> None:
        self._all: list[_Punctuation] = []
        self.on_stream_time = False

    def schedule(
        self,
        interval: int,
        kind: PunctuationType,
        callback: Punctuator,
        *,
        stream_time: int,
        wall_time: int,
    ) -> None:
        """Call ``callback(now)`` each time its clock reaches the next due time."""
        if interval <= 0:
            msg = f"punctuation interval must be positive, got {interval}"
            raise StreamerError(msg)
        if kind is PunctuationType.WALL_CLOCK:
            first = wall_time + interval
        else:
            first = (max(stream_time, 0) // interval + 1) * interval
            self.on_stream_time = True
        self._all.append(_Punctuation(interval, kind, callback, first))

    def fire(self, kind: PunctuationType, now: int) -> None:
        """Call the punctuators of clock ``kind`` that are due at ``now``."""
        for punctuation in self._all:
            if punctuation.kind is kind and now >= punctuation.next_time:
                missed = (now - punctuation.next_time) // punctuation.interval
                punctuation.next_time += (missed + 1) * punctuation.interval
                punctuation.callback(now)


__all__ = ["Punctuations"]
