"""Property tests: windowed cogroups in the TopologyTestDriver against the window models.

Two inputs feed one windowed aggregate: an event with an even value goes to topic "evens",
an odd one to "odds", and each input has its own adder, so a window's aggregate
``[sum of evens, sum of odds, count of evens, count of odds]`` shows which adder saw which
record (sessions merge with an element-wise sum). The expected output after each record is
computed by the reference window models of ``window_models`` (the same ones plain windowed
aggregations are held to): tumbling, hopping, sliding and session windows, emitting updates
or final results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from window_models import (
    KEYS,
    Arrival,
    Event,
    FixedModel,
    SessionModel,
    SlidingModel,
    WindowModel,
    arrivals,
    events,
    order,
)

from streamer import (
    HoppingWindows,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    TumblingWindows,
)
from streamer.testing import TestRecord, TopologyTestDriver

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLUSH_AFTER = 10_000


def fold(values: Sequence[int]) -> list[int]:
    evens = [v for v in values if v % 2 == 0]
    odds = [v for v in values if v % 2 != 0]
    return [sum(evens), sum(odds), len(evens), len(odds)]


def topic_of(value: int) -> str:
    return "evens" if value % 2 == 0 else "odds"


def run(windows: Any, stream: Sequence[Event], emit: str, flush_ts: int) -> list[list[TestRecord]]:
    builder = StreamsBuilder()
    evens = builder.stream("evens").group_by_key()
    odds = builder.stream("odds").group_by_key()
    (
        evens.cogroup(lambda _k, v, a: [a[0] + v, a[1], a[2] + 1, a[3]])
        .cogroup(odds, lambda _k, v, a: [a[0], a[1] + v, a[2], a[3] + 1])
        .windowed_by(windows)
        .aggregate(
            lambda: [0, 0, 0, 0],
            name="agg",
            emit=emit,
            merger=lambda _k, a, b: [x + y for x, y in zip(a, b, strict=True)],
        )
        .to_stream()
        .to("out")
    )
    steps = []
    with TopologyTestDriver(builder.build()) as driver:
        for key, value, ts in [*stream, ("~flush", 0, flush_ts)]:
            driver.pipe(topic_of(value), key, value, timestamp=ts)
            steps.append([r for r in driver.read_output("out") if r.key.key != "~flush"])
    return steps


def expected_update(model: WindowModel, seen: Sequence[Arrival]) -> list[Any]:
    a = seen[-1]
    if model.late(a):
        return []
    return sorted(
        (
            (model.windowed(a.key, w), fold([b.value for b in model.members(a.key, w, seen)]))
            for w in model.containing(a, seen)
            if model.open(w, a.time)
        ),
        key=order,
    )


def expected_final(model: WindowModel, seen: Sequence[Arrival], before: int, now: int) -> list[Any]:
    out = []
    for key in KEYS:
        for w in model.existing(key, seen):
            if model.open(w, before) and not model.open(w, now):
                values = [b.value for b in model.members(key, w, seen)]
                out.append((model.windowed(key, w), fold(values), model.last_timestamp(w)))
    return sorted(out, key=order)


def check(model: WindowModel, windows: Any, stream: list[Event], emit: str) -> None:
    seen = arrivals(stream)
    flush_ts = (seen[-1].time if seen else 0) + FLUSH_AFTER
    steps = run(windows, stream, emit, flush_ts)
    if emit == "update":
        for i in range(len(seen)):
            got = sorted(((r.key, r.value) for r in steps[i]), key=order)
            assert got == expected_update(model, seen[: i + 1]), f"after record {i}"
        return
    before = -1
    flush = Arrival("~flush", 0, flush_ts, flush_ts)
    for i, a in enumerate([*seen, flush]):
        got = sorted(((r.key, r.value, r.timestamp) for r in steps[i]), key=order)
        assert got == expected_final(model, seen[: i + 1], before, a.time), f"after record {i}"
        before = a.time


emits = st.sampled_from(["update", "final"])


@SETTINGS
@given(data=st.data(), size=st.integers(1, 40), grace=st.integers(0, 30), emit=emits)
def test_tumbling_cogroup_matches_the_model(
    data: st.DataObject, size: int, grace: int, emit: str
) -> None:
    stream = data.draw(events([grace, size + grace]), label="stream")
    check(FixedModel(size, size, grace), TumblingWindows(size=size, grace=grace), stream, emit)


@SETTINGS
@given(data=st.data(), size=st.integers(1, 40), grace=st.integers(0, 30), emit=emits)
def test_hopping_cogroup_matches_the_model(
    data: st.DataObject, size: int, grace: int, emit: str
) -> None:
    advance = data.draw(st.integers(1, size), label="advance")
    stream = data.draw(events([grace, advance + grace, size + grace]), label="stream")
    windows = HoppingWindows(size=size, advance=advance, grace=grace)
    check(FixedModel(size, advance, grace), windows, stream, emit)


@SETTINGS
@given(data=st.data(), size=st.integers(1, 40), grace=st.integers(0, 30), emit=emits)
def test_sliding_cogroup_matches_the_model(
    data: st.DataObject, size: int, grace: int, emit: str
) -> None:
    stream = data.draw(events([grace, size + grace]), label="stream")
    check(SlidingModel(size, grace), SlidingWindows(size=size, grace=grace), stream, emit)


@SETTINGS
@given(data=st.data(), gap=st.integers(1, 30), grace=st.integers(0, 30), emit=emits)
def test_session_cogroup_matches_the_model(
    data: st.DataObject, gap: int, grace: int, emit: str
) -> None:
    stream = data.draw(events([gap, grace, gap + grace]), label="stream")
    seen = arrivals(stream)
    flush_ts = (seen[-1].time if seen else 0) + FLUSH_AFTER
    steps = run(SessionWindows(gap=gap, grace=grace), stream, emit, flush_ts)
    model = SessionModel(gap, grace)
    flush = Arrival("~flush", 0, flush_ts, flush_ts)
    for i, a in enumerate([*seen, flush]):
        step = model.step(a)
        got = sorted(((r.key, r.value) for r in steps[i]), key=order)
        expected: list[Any] = []
        if emit == "update" and step.created is not None and a is not flush:
            created = step.created.windowed()
            expected = [(s.windowed(), None) for s in step.removed if s.windowed() != created]
            expected.append((created, fold([b.value for b in step.created.records])))
        elif emit == "final":
            closed = [s for s in step.closed if s.key != "~flush"]
            expected = [(s.windowed(), fold([b.value for b in s.records])) for s in closed]
        assert got == sorted(expected, key=order), f"after record {i}"
