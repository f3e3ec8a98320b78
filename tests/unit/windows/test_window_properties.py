"""Property tests: windowed aggregations in the TopologyTestDriver against brute-force models.

Each example pipes a random stream (a few keys, out-of-order and late records, random sizes
and grace) record by record and checks, after every record:

* emit="update": the updates forwarded are exactly the open windows the record lands in, each
  with the value the model computes from scratch; the last update of every window is its
  final value;
* emit="final": the windows forwarded are exactly those that closed with this record, each
  with its final value and its last timestamp; a far-future record on another key closes the
  rest, so every window is forwarded exactly once;

and at the end, that exactly the model's late records went to the late topic and were counted
as ``late-records``, and that no closed window is left in the stores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from window_models import (
    AGGREGATIONS,
    FLUSH_KEY,
    KEYS,
    Arrival,
    Event,
    FixedModel,
    SessionModel,
    SlidingModel,
    WindowModel,
    arrivals,
    events,
    expected_final,
    expected_update,
    order,
    run_driver,
)

from streamer import HoppingWindows, SessionWindows, SlidingWindows, TumblingWindows

# WINDOW_PROPERTY_EXAMPLES=5000 for a deeper local run.
EXAMPLES = int(os.environ.get("WINDOW_PROPERTY_EXAMPLES", "250"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FLUSH_AFTER = 10_000  # far beyond any size + grace drawn below

emits = st.sampled_from(["update", "final"])
aggs = st.sampled_from(sorted(AGGREGATIONS))
sizes = st.integers(1, 40)
graces = st.integers(0, 30)


def flush_arrival(seen: Sequence[Arrival]) -> Arrival:
    ts = (seen[-1].time if seen else 0) + FLUSH_AFTER
    return Arrival(FLUSH_KEY, 0, ts, ts)


def check_windows(
    model: WindowModel, windows: Any, stream: list[Event], agg: str, emit: str, late_topic: bool
) -> None:
    seen = arrivals(stream)
    flush = flush_arrival(seen)
    run = run_driver(windows, stream, agg=agg, emit=emit, flush_ts=flush.ts, late_topic=late_topic)
    fold = AGGREGATIONS[agg]
    final_values = {
        model.windowed(key, w): fold([b.value for b in model.members(key, w, seen)])
        for key in KEYS
        for w in model.existing(key, seen)
    }

    if emit == "update":
        last: dict[Any, Any] = {}
        for i in range(len(seen)):
            got = sorted(((r.key, r.value) for r in run.steps[i]), key=order)
            assert got == expected_update(model, seen[: i + 1], agg), f"after record {i}"
            last.update((r.key, r.value) for r in run.steps[i])
        assert run.real(len(seen)) == []
        assert last == final_values
    else:
        emitted: list[Any] = []
        before = -1
        for i, a in enumerate([*seen, flush]):
            got = sorted(((r.key, r.value, r.timestamp) for r in run.real(i)), key=order)
            assert got == expected_final(model, seen[: i + 1], before, a.time, agg), (
                f"after record {i}"
            )
            emitted += [r.key for r in run.real(i)]
            before = a.time
        assert len(emitted) == len(set(emitted)), "a window was emitted twice"
        assert set(emitted) == set(final_values)

    late = [(a.key, a.value, a.ts) for a in seen if model.late(a)]
    assert run.late_records == (late if late_topic else None)
    assert run.late == len(late)
    assert run.store_keys <= {FLUSH_KEY}, "closed windows left in the store"


@SETTINGS
@given(data=st.data(), size=sizes, grace=graces, agg=aggs, emit=emits, late_topic=st.booleans())
def test_tumbling_windows_match_the_model(
    data: st.DataObject, size: int, grace: int, agg: str, emit: str, late_topic: bool
) -> None:
    stream = data.draw(events([grace, size + grace]), label="stream")
    model = FixedModel(size, size, grace)
    check_windows(model, TumblingWindows(size=size, grace=grace), stream, agg, emit, late_topic)


@SETTINGS
@given(data=st.data(), size=sizes, grace=graces, agg=aggs, emit=emits, late_topic=st.booleans())
def test_hopping_windows_match_the_model(
    data: st.DataObject, size: int, grace: int, agg: str, emit: str, late_topic: bool
) -> None:
    advance = data.draw(st.integers(1, size), label="advance")
    stream = data.draw(events([grace, advance + grace, size + grace]), label="stream")
    model = FixedModel(size, advance, grace)
    windows = HoppingWindows(size=size, advance=advance, grace=grace)
    check_windows(model, windows, stream, agg, emit, late_topic)


@SETTINGS
@given(data=st.data(), size=sizes, grace=graces, agg=aggs, emit=emits, late_topic=st.booleans())
def test_sliding_windows_match_the_model(
    data: st.DataObject, size: int, grace: int, agg: str, emit: str, late_topic: bool
) -> None:
    stream = data.draw(events([grace, size + grace]), label="stream")
    model = SlidingModel(size, grace)
    check_windows(model, SlidingWindows(size=size, grace=grace), stream, agg, emit, late_topic)


@SETTINGS
@given(
    data=st.data(),
    gap=st.integers(1, 30),
    grace=graces,
    agg=aggs,
    emit=emits,
    late_topic=st.booleans(),
)
def test_session_windows_match_the_model(
    data: st.DataObject, gap: int, grace: int, agg: str, emit: str, late_topic: bool
) -> None:
    stream = data.draw(events([gap, grace, gap + grace]), label="stream")
    seen = arrivals(stream)
    flush = flush_arrival(seen)
    windows = SessionWindows(gap=gap, grace=grace)
    run = run_driver(windows, stream, agg=agg, emit=emit, flush_ts=flush.ts, late_topic=late_topic)
    fold = AGGREGATIONS[agg]
    model = SessionModel(gap, grace)
    late: list[Event] = []
    last: dict[Any, Any] = {}
    emitted: list[Any] = []
    for i, a in enumerate([*seen, flush]):
        step = model.step(a)
        if step.late and a is not flush:
            late.append((a.key, a.value, a.ts))
        got = sorted(((r.key, r.value) for r in run.real(i)), key=order)
        if emit == "update":
            expected = []
            if step.created is not None and a is not flush:
                created = step.created.windowed()
                expected = [(s.windowed(), None) for s in step.removed if s.windowed() != created]
                expected.append((created, fold([b.value for b in step.created.records])))
            assert got == sorted(expected, key=order), f"after record {i}"
            last.update(got)
        else:
            closed = [s for s in step.closed if s.key != FLUSH_KEY]
            expected = [(s.windowed(), fold([b.value for b in s.records])) for s in closed]
            assert got == sorted(expected, key=order), f"after record {i}"
            assert [r.timestamp for r in run.real(i)] == [r.key.end for r in run.real(i)]
            emitted += [r.key for r in run.real(i)]

    sessions = {
        s.windowed(): fold([b.value for b in s.records])
        for s in model.sessions
        if s.key != FLUSH_KEY
    }
    assert all(s.closed for s in model.sessions if s.key != FLUSH_KEY)
    if emit == "update":
        assert {w: v for w, v in last.items() if v is not None} == sessions
    else:
        assert len(emitted) == len(set(emitted)), "a session was emitted twice"
        assert set(emitted) == set(sessions)
    assert run.late_records == (late if late_topic else None)
    assert run.late == len(late)
    assert run.store_keys <= {FLUSH_KEY}, "closed sessions left in the store"
