"""Property tests: windowed stream-stream joins (inner, left, outer) in the TopologyTestDriver
against a brute-force model of the rules in :mod:`streamer.processors.joins`.

The model keeps every record with the stream time right after it arrived:

* a record is late when that stream time is past ``ts + grace``; late records never join;
* two records join when their keys are equal and ``right.ts - left.ts`` lies in
  ``[-before, after]``; the pair is emitted when the second of them arrives, with the larger
  of the two timestamps;
* left and outer joins emit ``(left, None)`` for a left record without a partner, when stream
  time first passes ``ts + after + grace``; outer joins also emit ``(None, right)`` for a
  right record without a partner, when stream time first passes ``ts + before + grace``.

Every record carries a unique value, so each output names the exact pair it came from.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import JoinWindows, StreamsBuilder
from streamer.testing import TopologyTestDriver

EXAMPLES = int(os.environ.get("WINDOW_PROPERTY_EXAMPLES", "250"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FLUSH_KEY = "~flush"
FLUSH_AFTER = 1_000  # beyond any before/after + grace drawn below


def flush_ts(inputs: Sequence[tuple[str, str, int]]) -> int:
    """A far-future record on another key: every buffered record expires."""
    return max((ts for _, _, ts in inputs), default=0) + FLUSH_AFTER


@dataclass(frozen=True)
class Arrival:
    side: str  # "L" or "R"
    key: str
    value: str
    ts: int
    time: int  # stream time right after it arrived


Output = tuple[str, tuple[Any, Any], int]  # key, (left value, right value), timestamp


@st.composite
def join_inputs(draw: st.DrawFn, pivots: Sequence[int]) -> list[tuple[str, str, int]]:
    edges = sorted({max(0, p + d) for p in pivots for d in (-1, 0, 1)})
    back = st.one_of(st.just(0), st.integers(0, 60), st.sampled_from(edges))
    out = []
    base = draw(st.integers(0, 20))
    for _ in range(draw(st.integers(0, 24))):
        base += draw(st.integers(0, 10))
        side = draw(st.sampled_from("LR"))
        key = draw(st.sampled_from("ab"))
        out.append((side, key, max(0, base - draw(back))))
    return out


def model(
    inputs: Sequence[tuple[str, str, int]], kind: str, before: int, after: int, grace: int
) -> tuple[list[list[Output]], set[str]]:
    """Expected outputs after each record (the last entry: after the flush record), and the
    values of the records that were not late."""
    arrivals: list[Arrival] = []
    time = -1
    for i, (side, key, ts) in enumerate(inputs):
        time = max(time, ts)
        arrivals.append(Arrival(side, key, f"{side}{i}", ts, time))
    arrivals.append(Arrival("L", FLUSH_KEY, "flush", flush_ts(inputs), flush_ts(inputs)))

    def late(a: Arrival) -> bool:
        return a.time > a.ts + grace

    def pair(a: Arrival, b: Arrival) -> bool:
        left, right = (a, b) if a.side == "L" else (b, a)
        return left.key == right.key and -before <= right.ts - left.ts <= after

    def expires_at(a: Arrival) -> int:
        return a.ts + (after if a.side == "L" else before) + grace

    steps: list[list[Output]] = []
    for i, a in enumerate(arrivals):
        out: list[Output] = []
        if not late(a):
            for b in arrivals[:i]:
                if b.side != a.side and not late(b) and pair(a, b):
                    left, right = (a, b) if a.side == "L" else (b, a)
                    out.append((a.key, (left.value, right.value), max(a.ts, b.ts)))
        before_time = arrivals[i - 1].time if i else -1
        for b in arrivals[:i]:
            emits = kind == "outer" or (kind == "left" and b.side == "L")
            if not emits or late(b) or not before_time <= expires_at(b) < a.time:
                continue
            if any(c.side != b.side and not late(c) and pair(b, c) for c in arrivals):
                continue
            value = (b.value, None) if b.side == "L" else (None, b.value)
            out.append((b.key, value, b.ts))
        steps.append(out)
    on_time = {a.value for a in arrivals[:-1] if not late(a)}
    return steps, on_time


def run(
    inputs: Sequence[tuple[str, str, int]], kind: str, windows: JoinWindows, flush_at: int
) -> tuple[list[list[Output]], int]:
    builder = StreamsBuilder()
    left = builder.stream("left")
    right = builder.stream("right")
    join = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind]
    join(right, lambda lv, rv: [lv, rv], name="j", windows=windows).to("out")
    steps: list[list[Output]] = []
    with TopologyTestDriver(builder.build()) as driver:
        records = [(side, key, f"{side}{i}", ts) for i, (side, key, ts) in enumerate(inputs)] + [
            ("L", FLUSH_KEY, "flush", flush_at)
        ]
        for side, key, value, ts in records:
            driver.pipe("left" if side == "L" else "right", key, value, timestamp=ts)
            steps.append([(r.key, tuple(r.value), r.timestamp) for r in driver.read_output("out")])
        late = driver.counters().get("late-records", 0)
    return steps, late


@SETTINGS
@given(
    data=st.data(),
    kind=st.sampled_from(["inner", "left", "outer"]),
    before=st.integers(0, 30),
    after=st.integers(0, 30),
    grace=st.integers(0, 30),
)
def test_stream_stream_joins_match_the_model(
    data: st.DataObject, kind: str, before: int, after: int, grace: int
) -> None:
    pivots = [before, after, grace, before + grace, after + grace]
    inputs = data.draw(join_inputs(pivots), label="inputs")
    expected, on_time = model(inputs, kind, before, after, grace)
    got, late = run(inputs, kind, JoinWindows(before, after, grace), flush_ts(inputs))
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert Counter(g) == Counter(e), f"after record {i}"
    assert late == len(inputs) - len(on_time)
    if kind == "outer":
        # Every record that was not late shows up in the output, joined or not.
        joined = {v for step in got for _, pair, _ in step for v in pair}
        assert on_time <= joined
