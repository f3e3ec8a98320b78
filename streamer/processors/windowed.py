"""Windowed aggregations: tumbling, hopping, sliding and session windows.

Exact semantics are in :mod:`streamer.topology.windows`. Common to all kinds:

* ``observed_time`` is the task's stream time, pushed further by wall-clock idle closing
  (see ``idle_close_ms``); it never goes back.
* A record without a key or value is skipped and counted; one without a key is also reported
  (see :mod:`streamer.processors.drops`).
* A window is updated only while open. A record that reaches no open window is late: it is
  counted as ``late-records`` and, if a late branch is configured, forwarded to it.
* In ``emit_final`` mode a window's result is forwarded once, when it closes; in update mode
  every change is forwarded at once. Either way a closed window is deleted from the store, so
  state is bounded by the windows that can still change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamer.processors.api import Processor, ProcessorContext, PunctuationType, Record
from streamer.processors.drops import NullKeyDrops
from streamer.topology.windows import (
    FixedWindows,
    SessionWindows,
    SlidingWindows,
    TumblingWindows,
    Windowed,
)

Initializer = Callable[[], Any]
Adder = Callable[[Any, Any, Any], Any]
Merger = Callable[[Any, Any, Any], Any]

NO_TIME = -(2**62)
NO_WINDOW = 2**62
"""Above every window start: the earliest start of an empty window store."""


class _WindowedBase(Processor):
    """Shared time keeping: observed time, wall-clock idle closing and late records."""

    def __init__(
        self,
        *,
        emit_final: bool,
        late_branch: str | None,
        idle_close_ms: int | None,
    ) -> None:
        self.emit_final = emit_final
        self.late_branch = late_branch
        self.idle_close_ms = idle_close_ms
        self.drops = NullKeyDrops()
        self.observed_time = NO_TIME
        # Idle clock: the wall time of the last sign of activity (a record reaching this step,
        # or stream time moving through records that other steps of the task consumed).
        self._idle_since = 0
        self._idle_stream_time = NO_TIME

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        if self.idle_close_ms is not None:
            interval = max(1, self.idle_close_ms // 2)
            context.schedule(interval, PunctuationType.WALL_CLOCK, self._on_wall_clock)

    def _advance(self) -> int:
        """Move observed time up to stream time; returns it."""
        stream_time = self.context.stream_time
        if self.idle_close_ms is not None:  # the idle clock is read by idle closing only
            self._idle_since = self.context.wall_clock_time
            self._idle_stream_time = stream_time
        if stream_time > self.observed_time:
            self.observed_time = stream_time
        return self.observed_time

    def _on_wall_clock(self, now: int) -> None:
        assert self.idle_close_ms is not None
        if self.observed_time == NO_TIME:
            return  # no record yet, so no window
        stream_time = self.context.stream_time
        if stream_time != self._idle_stream_time:
            # Records this step never saw moved stream time: the task is not idle, but
            # windows that stream time closed can go now rather than at this step's next record.
            self._idle_stream_time = stream_time
            self._idle_since = now
            target = stream_time
        else:
            idle = now - self._idle_since
            target = stream_time + idle if idle >= self.idle_close_ms else stream_time
        if target > self.observed_time:
            self.observed_time = target
            self._close_windows(target)

    def _late(self, record: Record) -> None:
        self.context.count("late-records")
        if self.late_branch is not None:
            self.context.forward(record, to=self.late_branch)

    def _emit(self, record: Record) -> None:
        """Forward a window result to every child except the late branch."""
        if self.late_branch is None:
            self.context.forward(record)
            return
        for child in self.context.child_names:
            if child != self.late_branch:
                self.context.forward(record, to=child)

    def _close_windows(self, observed_time: int) -> None:
        raise NotImplementedError


class FixedWindowAggregateProcessor(_WindowedBase):
    """Tumbling and hopping windows. Store: a window store keyed by (key, window start)."""

    def __init__(
        self,
        store: str,
        windows: FixedWindows,
        initializer: Initializer,
        adder: Adder,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.store_name = store
        self.windows = windows
        self.initializer = initializer
        self.adder = adder
        self._closed_bound = NO_TIME
        """No window starts before it (all such were deleted, none can be written)."""
        self._earliest: int | None = None
        """The earliest start of a window in the store (NO_WINDOW: none); None: unknown."""
        self._size = windows.end_of(0)
        self._tumbling = isinstance(windows, TumblingWindows)
        self._retention = windows.retention

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        key, value = record.key, record.value
        if key is None or value is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        observed = self._advance()
        close_time = observed - self.windows.grace
        size, ts = self._size, record.timestamp
        store, emit = self.store, not self.emit_final
        accepted = False
        starts = (ts - ts % size,) if self._tumbling else self.windows.windows_for(ts)
        for start in starts:
            end = start + size
            if end <= close_time:
                continue
            accepted = True
            current = store.fetch(key, start)
            exists = current is not None
            updated = self.adder(key, value, current if exists else self.initializer())
            store.put(key, start, updated, exists=exists)
            if not exists and self._earliest is not None and start < self._earliest:
                self._earliest = start
            if emit:
                self._emit(Record(Windowed(key, start, end), updated, record.timestamp, ()))
        if not accepted:
            self._late(record)
        # _close_windows, with its common case (no window to close) inline.
        bound = observed - self._retention + 1
        if bound > self._closed_bound:
            if self._earliest is not None and bound <= self._earliest:
                self._closed_bound = bound
            else:
                self._close_windows(observed)

    def _close_windows(self, observed_time: int) -> None:
        # Window [s, s + size) is closed once observed >= s + size + grace.
        bound = observed_time - self._retention + 1
        previous = self._closed_bound
        if bound <= previous:
            return
        self._closed_bound = bound
        if self._earliest is not None and bound <= self._earliest:
            return  # no window in the store starts before the bound: nothing to scan
        size = self._size
        # No window starts before the previous bound: they were deleted by the last close
        # (and no record reopens a closed window), so the scans start there.
        since = None if previous == NO_TIME else previous
        for key, start, value in list(self.store.windows_starting_before(bound, since=since)):
            if self.emit_final:
                self._emit(Record(Windowed(key, start, start + size), value, start + size - 1, ()))
            self.store.delete(key, start)
        first = next(iter(self.store.windows_starting_before(NO_WINDOW, since=bound)), None)
        self._earliest = NO_WINDOW if first is None else first[1]


class SlidingWindowAggregateProcessor(_WindowedBase):
    """Sliding windows ``[t - size, t]``, one per distinct record timestamp ``t`` of a key.

    Stores: ``records`` holds the values seen per (key, timestamp), kept until no open window
    can contain them; ``pending`` (emit-final only) marks windows not yet emitted. A window's
    aggregate is folded from the records in its range when it is emitted.
    """

    def __init__(
        self,
        records_store: str,
        pending_store: str | None,
        windows: SlidingWindows,
        initializer: Initializer,
        adder: Adder,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.records_name = records_store
        self.pending_name = pending_store
        self.windows = windows
        self.initializer = initializer
        self.adder = adder

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.records = context.store(self.records_name)
        self.pending = context.store(self.pending_name) if self.pending_name else None

    def _fold(self, key: Any, end: int) -> Any:
        aggregate = self.initializer()
        for _, values in self.records.fetch_range(key, end - self.windows.size, end):
            for value in values:
                aggregate = self.adder(key, value, aggregate)
        return aggregate

    def process(self, record: Record) -> None:
        key = record.key
        if key is None or record.value is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        observed = self._advance()
        grace, size, ts = self.windows.grace, self.windows.size, record.timestamp
        if observed > ts + size + grace:
            # Every window that could hold it, those ending in [ts, ts + size], is closed.
            self._late(record)
            self._close_windows(observed)
            return
        own_open = observed <= ts + grace
        later_open = [
            t for t, _ in self.records.fetch_range(key, ts + 1, ts + size) if observed <= t + grace
        ]
        values = self.records.fetch(key, ts) or []
        values.append(record.value)
        self.records.put(key, ts, values)
        ends = ([ts] if own_open else []) + later_open
        if self.pending is not None:
            if own_open:
                self.pending.put(key, ts, 1)
        else:
            for end in ends:
                aggregate = self._fold(key, end)
                self._emit(Record(Windowed(key, end - size, end), aggregate, record.timestamp))
        self._close_windows(observed)

    def _close_windows(self, observed_time: int) -> None:
        grace, size = self.windows.grace, self.windows.size
        if self.pending is not None:
            # Window t is closed once observed > t + grace.
            for key, end, _ in list(self.pending.windows_starting_before(observed_time - grace)):
                aggregate = self._fold(key, end)
                self._emit(Record(Windowed(key, end - size, end), aggregate, end))
                self.pending.delete(key, end)
        # A record at r is only in windows t <= r + size; all closed past r + size + grace.
        for key, ts, _ in list(self.records.windows_starting_before(observed_time - size - grace)):
            self.records.delete(key, ts)


class SessionWindowAggregateProcessor(_WindowedBase):
    """Session windows. Store: a session store keyed by (key, start, end).

    A session closes once observed time passes ``end + gap + grace`` (until then an in-order
    record could still extend it); a closed session is final and never merges with a later
    record, which starts a new session instead.
    """

    def __init__(
        self,
        store: str,
        windows: SessionWindows,
        initializer: Initializer,
        adder: Adder,
        merger: Merger,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.store_name = store
        self.windows = windows
        self.initializer = initializer
        self.adder = adder
        self.merger = merger

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.store(self.store_name)

    def process(self, record: Record) -> None:
        key = record.key
        if key is None or record.value is None:
            self.drops.skipped(self.context, key_missing=key is None)
            return
        observed = self._advance()
        ts, gap = record.timestamp, self.windows.gap
        close_time = observed - self.windows.grace - gap  # sessions ending before are closed
        overlapping = [
            (start, end, value)
            for start, end, value in self.store.find_sessions(key, ts - gap, ts + gap)
            if end >= close_time
        ]
        start = min([ts] + [s for s, _, _ in overlapping])
        end = max([ts] + [e for _, e, _ in overlapping])
        if end < close_time:
            self._late(record)
            self._close_windows(observed)
            return
        aggregate = self.adder(key, record.value, self.initializer())
        for old_start, old_end, old_value in overlapping:
            aggregate = self.merger(key, old_value, aggregate)
            self.store.remove(key, old_start, old_end)
            if not self.emit_final and (old_start, old_end) != (start, end):
                self._emit(Record(Windowed(key, old_start, old_end), None, record.timestamp))
        self.store.put(key, start, end, aggregate)
        if not self.emit_final:
            self._emit(Record(Windowed(key, start, end), aggregate, record.timestamp))
        self._close_windows(observed)

    def _close_windows(self, observed_time: int) -> None:
        close_time = observed_time - self.windows.grace - self.windows.gap
        for key, start, end, value in list(self.store.sessions_ending_before(close_time)):
            if self.emit_final:
                self._emit(Record(Windowed(key, start, end), value, end))
            self.store.remove(key, start, end)
