"""Brute-force reference models of the window semantics in :mod:`streamer.topology.windows`,
and a harness that runs the same random stream through the TopologyTestDriver.

The models keep every record with the stream time right after it arrived and compute each
window's content from scratch with the documented rules: a window holds the records whose
timestamps it covers and that arrived while it was open. Nothing here is incremental except
the session model, where closing decides which sessions a record may still merge with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import strategies as st

from streamer import StreamsBuilder, Windowed
from streamer.testing import TestRecord, TopologyTestDriver

KEYS = "abc"
FLUSH_KEY = "~flush"
Event = tuple[str, int, int]  # key, value, timestamp


@dataclass(frozen=True, slots=True)
class Arrival:
    """A piped record and the task's stream time right after it arrived."""

    key: str
    value: int
    ts: int
    time: int


def arrivals(events: Sequence[Event]) -> list[Arrival]:
    out: list[Arrival] = []
    time = -1
    for key, value, ts in events:
        time = max(time, ts)
        out.append(Arrival(key, value, ts, time))
    return out


# --- aggregations --------------------------------------------------------------------------

AGGREGATIONS: dict[str, Callable[[list[int]], int]] = {
    "count": len,
    "sum": sum,
    "max": max,
}


def aggregate_table(windowed: Any, agg: str, emit: str, late_topic: str | None) -> Any:
    """Apply ``agg`` through the DSL: count, aggregate (sum) or reduce (max)."""
    options = {"name": "agg", "emit": emit, "late_topic": late_topic}
    if agg == "count":
        return windowed.count(**options)
    if agg == "sum":
        return windowed.aggregate(
            lambda: 0, lambda _k, v, a: a + v, merger=lambda _k, a, b: a + b, **options
        )
    return windowed.reduce(max, **options)


# --- random input --------------------------------------------------------------------------


@st.composite
def events(draw: st.DrawFn, pivots: Sequence[int] = (), max_size: int = 24) -> list[Event]:
    """Mostly advancing timestamps, some of them pulled back: out-of-order and late records.

    ``pivots`` are distances worth hitting exactly (a size plus grace, ...): some records are
    pulled back by a pivot or one ms either side of it, right on a window's closing edge.
    """
    edges = sorted({max(0, p + d) for p in pivots for d in (-1, 0, 1)})
    backs = [st.just(0), st.integers(0, 70)] + ([st.sampled_from(edges)] if edges else [])
    n = draw(st.integers(0, max_size))
    out: list[Event] = []
    base = draw(st.integers(0, 30))
    for _ in range(n):
        base += draw(st.integers(0, 12))
        back = draw(st.one_of(*backs))
        out.append((draw(st.sampled_from(KEYS)), draw(st.integers(-5, 20)), max(0, base - back)))
    return out


# --- the driver side -------------------------------------------------------------------------


@dataclass
class Run:
    """What the driver emitted after each piped record (the last entry: the flush record)."""

    steps: list[list[TestRecord]]
    late: int
    late_records: list[Event] | None  # None without a late topic
    store_keys: set[Any] = field(default_factory=set)

    def real(self, step: int) -> list[TestRecord]:
        return [r for r in self.steps[step] if r.key.key != FLUSH_KEY]


def run_driver(
    windows: Any,
    stream: Sequence[Event],
    *,
    agg: str,
    emit: str,
    flush_ts: int,
    late_topic: bool,
) -> Run:
    """Pipe ``stream`` record by record, then one far-future record on another key. With
    ``late_topic``, late records go to the topic "late"."""
    builder = StreamsBuilder()
    windowed = builder.stream("in").group_by_key().windowed_by(windows)
    aggregate_table(windowed, agg, emit, "late" if late_topic else None).to_stream().to("out")
    steps: list[list[TestRecord]] = []
    with TopologyTestDriver(builder.build()) as driver:
        for key, value, ts in [*stream, (FLUSH_KEY, 0, flush_ts)]:
            driver.pipe("in", key, value, timestamp=ts)
            steps.append(driver.read_output("out"))
        late = driver.counters().get("late-records", 0)
        late_records = (
            [(r.key, r.value, r.timestamp) for r in driver.read_output("late")]
            if late_topic
            else None
        )
        store_keys: set[Any] = set()
        for name in ("agg", "agg-records", "agg-pending"):
            try:
                store = driver.store(name)
            except Exception:
                continue
            store_keys |= {row[0] for row in store.all()}
    return Run(steps, late, late_records, store_keys)


# --- window models ---------------------------------------------------------------------------


class WindowModel(Protocol):
    grace: int

    def windowed(self, key: str, ident: int) -> Windowed: ...

    def open(self, ident: int, time: int) -> bool:
        """Whether the window identified by ``ident`` is open at stream time ``time``."""
        ...

    def members(self, key: str, ident: int, seen: Sequence[Arrival]) -> list[Arrival]:
        """The records the window holds, out of those that arrived so far."""
        ...

    def containing(self, a: Arrival, seen: Sequence[Arrival]) -> list[int]:
        """Windows that exist once ``a`` arrived and whose span covers ``a.ts``."""
        ...

    def existing(self, key: str, seen: Sequence[Arrival]) -> list[int]: ...

    def late(self, a: Arrival) -> bool: ...

    def last_timestamp(self, ident: int) -> int:
        """The last timestamp the window covers (its emit-final record's timestamp)."""
        ...


@dataclass(frozen=True)
class FixedModel:
    """Tumbling (``advance == size``) and hopping windows ``[s, s + size)``, ``s = k*advance``."""

    size: int
    advance: int
    grace: int

    def windowed(self, key: str, ident: int) -> Windowed:
        return Windowed(key, ident, ident + self.size)

    def starts(self, ts: int) -> list[int]:
        return [s for s in range(0, ts + 1, self.advance) if s <= ts < s + self.size]

    def open(self, ident: int, time: int) -> bool:
        # Closed once stream time reaches the exclusive end plus grace.
        return time < ident + self.size + self.grace

    def members(self, key: str, ident: int, seen: Sequence[Arrival]) -> list[Arrival]:
        return [
            b
            for b in seen
            if b.key == key and ident <= b.ts < ident + self.size and self.open(ident, b.time)
        ]

    def containing(self, a: Arrival, seen: Sequence[Arrival]) -> list[int]:
        return self.starts(a.ts)

    def existing(self, key: str, seen: Sequence[Arrival]) -> list[int]:
        starts = {s for b in seen if b.key == key for s in self.starts(b.ts)}
        return sorted(s for s in starts if self.members(key, s, seen))

    def late(self, a: Arrival) -> bool:
        return not any(self.open(s, a.time) for s in self.starts(a.ts))

    def last_timestamp(self, ident: int) -> int:
        return ident + self.size - 1


@dataclass(frozen=True)
class SlidingModel:
    """One window ``[t - size, t]`` per timestamp ``t`` of a record accepted while it was open."""

    size: int
    grace: int

    def windowed(self, key: str, ident: int) -> Windowed:
        return Windowed(key, ident - self.size, ident)

    def open(self, ident: int, time: int) -> bool:
        # Closed once stream time passes the inclusive end plus grace.
        return time <= ident + self.grace

    def members(self, key: str, ident: int, seen: Sequence[Arrival]) -> list[Arrival]:
        return [
            b
            for b in seen
            if b.key == key and ident - self.size <= b.ts <= ident and self.open(ident, b.time)
        ]

    def existing(self, key: str, seen: Sequence[Arrival]) -> list[int]:
        return sorted({b.ts for b in seen if b.key == key and self.open(b.ts, b.time)})

    def containing(self, a: Arrival, seen: Sequence[Arrival]) -> list[int]:
        return [t for t in self.existing(a.key, seen) if t - self.size <= a.ts <= t]

    def late(self, a: Arrival) -> bool:
        # Every window that could ever hold it (ends in [ts, ts + size]) is closed.
        return not self.open(a.ts + self.size, a.time)

    def last_timestamp(self, ident: int) -> int:
        return ident


def expected_update(model: WindowModel, seen: Sequence[Arrival], agg: str) -> list[Any]:
    """Emit-update output of the last record of ``seen``: each open window it lands in."""
    a = seen[-1]
    if model.late(a):
        return []
    fold = AGGREGATIONS[agg]
    return sorted(
        (
            (model.windowed(a.key, w), fold([b.value for b in model.members(a.key, w, seen)]))
            for w in model.containing(a, seen)
            if model.open(w, a.time)
        ),
        key=order,
    )


def expected_final(
    model: WindowModel, seen: Sequence[Arrival], before: int, now: int, agg: str
) -> list[Any]:
    """Emit-final output when stream time moves from ``before`` to ``now``."""
    fold = AGGREGATIONS[agg]
    out = []
    for key in KEYS:
        for w in model.existing(key, seen):
            if model.open(w, before) and not model.open(w, now):
                values = [b.value for b in model.members(key, w, seen)]
                out.append((model.windowed(key, w), fold(values), model.last_timestamp(w)))
    return sorted(out, key=order)


def order(item: tuple[Any, ...]) -> tuple[Any, ...]:
    w = item[0]
    return (w.start, w.end, str(w.key), *(repr(x) for x in item[1:]))


# --- session model -------------------------------------------------------------------------


@dataclass
class Session:
    key: str
    records: list[Arrival]
    closed: bool = False

    @property
    def start(self) -> int:
        return min(b.ts for b in self.records)

    @property
    def end(self) -> int:
        return max(b.ts for b in self.records)

    def windowed(self) -> Windowed:
        return Windowed(self.key, self.start, self.end)


@dataclass
class SessionStep:
    late: bool
    removed: list[Session]
    created: Session | None
    closed: list[Session]


class SessionModel:
    """Sessions: records of a key at most ``gap`` apart, chained. A record merges every open
    session of its key within ``gap`` of it; a session closes once stream time passes its last
    timestamp plus gap plus grace, and never changes again."""

    def __init__(self, gap: int, grace: int) -> None:
        self.gap = gap
        self.grace = grace
        self.sessions: list[Session] = []

    def step(self, a: Arrival) -> SessionStep:
        close_before = a.time - self.gap - self.grace  # sessions ending before it are closed
        touching = [
            s
            for s in self.sessions
            if s.key == a.key
            and not s.closed
            and s.end >= close_before
            and s.start - self.gap <= a.ts <= s.end + self.gap
        ]
        end = max([a.ts] + [s.end for s in touching])
        created = None
        if end >= close_before:
            created = Session(a.key, [a] + [b for s in touching for b in s.records])
            self.sessions = [s for s in self.sessions if s not in touching] + [created]
        closed = []
        for s in self.sessions:
            if not s.closed and s.end < close_before:
                s.closed = True
                closed.append(s)
        return SessionStep(created is None, touching if created else [], created, closed)
