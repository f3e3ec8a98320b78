"""Windowed aggregations through the DSL: every window kind, update and final emission,
late records and their side output, and closing windows by the wall clock.

The semantics tested are those of the :mod:`streamer.topology.windows` docstring.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamer import (
    HoppingWindows,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    TumblingWindows,
    Windowed,
)
from streamer.serde import LongSerde, StringSerde
from streamer.testing import TopologyTestDriver
from streamer.topology.windows import Windows

Row = tuple[str, int, int, Any, int]
"""(key, window start, window end, value, record timestamp)"""


def counting(windows: Windows, emit: str, **options: Any) -> StreamsBuilder:
    b = StreamsBuilder()
    b.stream("in").group_by_key().windowed_by(windows).count(
        name="w",
        emit=emit,  # type: ignore[arg-type]
        **options,
    ).to_stream().to("out")
    return b


class Run:
    """Pipes ``key@ts`` records one by one and collects what each one emitted."""

    def __init__(self, driver: TopologyTestDriver) -> None:
        self.driver = driver

    def __call__(
        self, key: str, ts: int, value: Any = 1, partition: int | None = None
    ) -> list[Row]:
        self.driver.pipe("in", key, value, timestamp=ts, partition=partition)
        return self.emitted()

    def emitted(self) -> list[Row]:
        rows = []
        for r in self.driver.read_output("out"):
            assert isinstance(r.key, Windowed)
            rows.append((str(r.key.key), r.key.start, r.key.end, r.value, r.timestamp))
        return rows


# --- tumbling ------------------------------------------------------------------------------------


def test_tumbling_update_emits_every_change_and_drops_late_records() -> None:
    with TopologyTestDriver(counting(TumblingWindows(100), "update").build()) as d:
        run = Run(d)
        assert run("k", 10) == [("k", 0, 100, 1, 10)]
        assert run("k", 99) == [("k", 0, 100, 2, 99)]
        assert run("k", 100) == [("k", 100, 200, 1, 100)]  # stream time 100 closes [0, 100)
        assert run("k", 50) == []
        assert run("j", 150) == [("j", 100, 200, 1, 150)]
        assert d.counters() == {"late-records": 1}


def test_tumbling_final_emits_each_window_once_when_it_closes() -> None:
    with TopologyTestDriver(counting(TumblingWindows(100), "final").build()) as d:
        run = Run(d)
        assert run("k", 10) == []
        assert run("j", 20) == []
        assert run("k", 99) == []
        # window end - 1 is the result's timestamp; windows close by start, then key
        assert run("k", 100) == [("j", 0, 100, 1, 99), ("k", 0, 100, 2, 99)]
        assert run("k", 50) == []
        assert run("k", 450) == [("k", 100, 200, 1, 199)]
        assert d.counters() == {"late-records": 1}


@pytest.mark.parametrize("emit", ["update", "final"])
def test_grace_keeps_windows_open_until_end_plus_grace(emit: str) -> None:
    with TopologyTestDriver(counting(TumblingWindows(100, grace=20), emit).build()) as d:
        run = Run(d)
        run("k", 10)
        run("k", 110)
        assert run("k", 90) == ([("k", 0, 100, 2, 90)] if emit == "update" else [])
        closing = run("k", 120)  # 120 = end + grace: [0, 100) closes
        if emit == "final":
            assert closing == [("k", 0, 100, 2, 99)]
        assert run("k", 95) == []
        assert d.counters() == {"late-records": 1}
        final = run("k", 1000)
        if emit == "final":
            assert final == [("k", 100, 200, 2, 199)]


def test_closed_windows_leave_the_store() -> None:
    with TopologyTestDriver(counting(TumblingWindows(100), "update").build()) as d:
        run = Run(d)
        run("k", 10)
        run("j", 150)
        assert [(k, start, v) for k, start, v in d.store("w").all()] == [("j", 100, 1)]


# --- hopping -------------------------------------------------------------------------------------


def test_hopping_update_counts_every_overlapping_window() -> None:
    with TopologyTestDriver(counting(HoppingWindows(100, 50), "update").build()) as d:
        run = Run(d)
        assert run("k", 60) == [("k", 0, 100, 1, 60), ("k", 50, 150, 1, 60)]
        assert run("k", 120) == [("k", 50, 150, 2, 120), ("k", 100, 200, 1, 120)]
        assert run("k", 10) == []  # its only window, [0, 100), closed at 100
        assert d.counters() == {"late-records": 1}


def test_hopping_windows_never_start_before_zero() -> None:
    with TopologyTestDriver(counting(HoppingWindows(100, 25), "update").build()) as d:
        assert [(s, e) for _, s, e, _, _ in Run(d)("k", 30)] == [(0, 100), (25, 125)]


def test_hopping_final() -> None:
    with TopologyTestDriver(counting(HoppingWindows(100, 50), "final").build()) as d:
        run = Run(d)
        assert run("k", 60) == []
        assert run("k", 120) == [("k", 0, 100, 1, 99)]
        assert run("k", 210) == [("k", 50, 150, 2, 149), ("k", 100, 200, 1, 199)]


# --- sliding -------------------------------------------------------------------------------------


def test_sliding_update_emits_the_window_ending_at_each_record_and_later_ones() -> None:
    windows = SlidingWindows(size=100, grace=100)
    with TopologyTestDriver(counting(windows, "update").build()) as d:
        run = Run(d)
        assert run("k", 1000) == [("k", 900, 1000, 1, 1000)]
        assert run("k", 1100) == [("k", 1000, 1100, 2, 1100)]  # both ends inclusive
        assert run("k", 1050) == [("k", 950, 1050, 2, 1050), ("k", 1000, 1100, 3, 1050)]
        assert run("k", 1201) == [("k", 1101, 1201, 1, 1201)]


def test_sliding_final_emits_when_stream_time_passes_end_plus_grace() -> None:
    windows = SlidingWindows(size=100, grace=50)
    with TopologyTestDriver(counting(windows, "final").build()) as d:
        run = Run(d)
        assert run("k", 1000) == []
        assert run("k", 1040) == []
        assert run("k", 1010) == []  # 30 behind: its own window is still open
        assert run("k", 1050) == []  # window 1000 closes only once stream time passes 1050
        assert run("k", 1051) == [("k", 900, 1000, 1, 1000)]
        assert run("k", 1061) == [("k", 910, 1010, 2, 1010)]
        assert run("k", 2000) == [
            ("k", 940, 1040, 3, 1040),
            ("k", 950, 1050, 4, 1050),
            ("k", 951, 1051, 5, 1051),
            ("k", 961, 1061, 6, 1061),
        ]


def test_sliding_window_late_record_goes_to_the_late_topic() -> None:
    windows = SlidingWindows(size=100)
    with TopologyTestDriver(counting(windows, "update", late_topic="late").build()) as d:
        run = Run(d)
        run("k", 1000, value="first")
        assert run("k", 800, value="too-old") == []
        assert d.read_key_values("late") == [("k", "too-old")]


# --- session -------------------------------------------------------------------------------------


def test_session_update_merges_sessions_and_retracts_the_old_ones() -> None:
    windows = SessionWindows(gap=100, grace=1000)
    with TopologyTestDriver(counting(windows, "update").build()) as d:
        run = Run(d)
        assert run("k", 1000) == [("k", 1000, 1000, 1, 1000)]
        assert run("k", 1150) == [("k", 1150, 1150, 1, 1150)]  # more than the gap apart
        assert run("k", 1075) == [
            ("k", 1000, 1000, None, 1075),
            ("k", 1150, 1150, None, 1075),
            ("k", 1000, 1150, 3, 1075),
        ]
        assert run("k", 1200) == [("k", 1000, 1150, None, 1200), ("k", 1000, 1200, 4, 1200)]
        assert run("j", 1100) == [("j", 1100, 1100, 1, 1100)]  # sessions are per key
        assert [(k, s, e, v) for k, s, e, v in d.store("w").all()] == [
            ("j", 1100, 1100, 1),
            ("k", 1000, 1200, 4),
        ]


def test_session_final_emits_the_merged_session_once() -> None:
    windows = SessionWindows(gap=100, grace=200)
    with TopologyTestDriver(counting(windows, "final").build()) as d:
        run = Run(d)
        assert run("k", 1000) == []
        assert run("k", 1100) == []
        assert run("k", 1400) == []  # the session ends at 1100: closes past 1100 + gap + grace
        assert run("k", 1401) == [("k", 1000, 1100, 2, 1100)]
        assert run("k", 1099) == []  # late: its session is closed
        assert d.counters() == {"late-records": 1}


def test_in_order_records_within_the_gap_form_one_session() -> None:
    with TopologyTestDriver(counting(SessionWindows(gap=100), "update").build()) as d:
        run = Run(d)
        run("k", 1000)
        assert run("k", 1050) == [("k", 1000, 1000, None, 1050), ("k", 1000, 1050, 2, 1050)]


def test_session_aggregate_with_a_merger() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().windowed_by(SessionWindows(gap=10, grace=100)).aggregate(
        list,
        lambda k, v, agg: sorted([*agg, v]),
        merger=lambda k, a, c: sorted(a + c),
        name="s",
    ).to_stream().filter(lambda k, v: v is not None).map(lambda k, v: (k.key, v)).to("out")
    with TopologyTestDriver(b.build()) as d:
        for ts, value in [(0, "a"), (30, "c"), (20, "b"), (10, "x")]:
            d.pipe("in", "k", value, timestamp=ts)
        assert d.read_values("out") == [["a"], ["c"], ["b", "c"], ["a", "b", "c", "x"]]


# --- reduce, aggregate and serdes -----------------------------------------------------------------


def test_windowed_reduce_and_aggregate() -> None:
    b = StreamsBuilder()
    windowed = b.stream("in").group_by_key().windowed_by(TumblingWindows(10))
    windowed.reduce(lambda a, v: a + v, name="sum").to_stream().map(
        lambda k, v: (k.key, [k.start, v])
    ).to("sums")
    windowed.aggregate(lambda: [], lambda k, v, agg: [*agg, v], name="all").to_stream().map(
        lambda k, v: (k.key, [k.start, v])
    ).to("lists")
    with TopologyTestDriver(b.build()) as d:
        for ts, value in [(1, 5), (2, 6), (11, 7)]:
            d.pipe("in", "k", value, timestamp=ts)
        assert d.read_values("sums") == [[0, 5], [0, 11], [10, 7]]
        assert d.read_values("lists") == [[0, [5]], [0, [5, 6]], [10, [7]]]


def test_windowed_keys_on_the_wire() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().windowed_by(TumblingWindows(10)).count(name="w").to_stream().to(
        "out"
    )
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=12)
        (raw,) = d.read_output("out", key_serde=_Raw(), value_serde=_Raw())
        assert raw.key == b"k" + (10).to_bytes(8, "big") + (20).to_bytes(8, "big")
        assert raw.value == (1).to_bytes(8, "big")


def test_late_topic_receives_late_records_with_the_stream_serdes() -> None:
    b = StreamsBuilder()
    b.stream("in", value_serde=StringSerde()).group_by_key().windowed_by(
        TumblingWindows(100)
    ).count(name="w", late_topic="late").to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", "on-time", timestamp=500)
        d.pipe("in", "k", "late", timestamp=10)
        (late,) = d.read_output("late", value_serde=_Raw())
        assert (late.key, late.value, late.timestamp) == ("k", b"late", 10)
        assert [r.value for r in d.read_output("out")] == [1]  # late records are not counted
        assert d.counters() == {"late-records": 1}


def test_windowed_table_map_values_keeps_windowed_keys() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().windowed_by(TumblingWindows(10)).count(name="w").map_values(
        lambda n: n * 100, value_serde=LongSerde()
    ).to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=3)
        assert d.read_key_values("out") == [(Windowed("k", 0, 10), 100)]


def test_windowed_aggregate_through_rocksdb(tmp_path: Any) -> None:
    topology = counting(SessionWindows(gap=10, grace=10), "final").build()
    with TopologyTestDriver(topology, state="rocksdb", state_dir=tmp_path) as d:
        run = Run(d)
        run("k", 0)
        run("k", 5)
        assert run("k", 100) == [("k", 0, 5, 2, 5)]


# --- closing by the wall clock --------------------------------------------------------------------


def test_idle_close_emits_final_results_of_a_quiet_partition() -> None:
    topology = counting(TumblingWindows(100), "final", idle_close_ms=1000).build()
    with TopologyTestDriver(topology, partitions={"in": 2}) as d:
        run = Run(d)
        run("a", 10, partition=0)
        run("b", 10, partition=1)
        d.advance_wall_clock(600)
        run("b", 20, partition=1)  # partition 1 stays busy
        d.advance_wall_clock(399)
        assert run.emitted() == []
        d.advance_wall_clock(1)  # partition 0 has been quiet for 1000 ms
        assert run.emitted() == [("a", 0, 100, 1, 99)]
        d.advance_wall_clock(600)  # now partition 1 too
        assert run.emitted() == [("b", 0, 100, 2, 99)]
        d.advance_wall_clock(10_000)
        assert run.emitted() == []


def test_idle_close_moves_time_forward_for_good() -> None:
    topology = counting(TumblingWindows(100), "update", idle_close_ms=500).build()
    with TopologyTestDriver(topology) as d:
        run = Run(d)
        run("a", 10)
        d.advance_wall_clock(500)  # observed time becomes 10 + 500: [0, 100) closes
        assert run("a", 20) == []
        assert d.counters() == {"late-records": 1}
        assert run("a", 600) == [("a", 600, 700, 1, 600)]


def test_without_idle_close_a_quiet_partition_keeps_its_windows_open() -> None:
    topology = counting(TumblingWindows(100), "final").build()
    with TopologyTestDriver(topology) as d:
        run = Run(d)
        run("a", 10)
        d.advance_wall_clock(10**9)
        assert run.emitted() == []
        assert [k for k, _, _ in d.store("w").all()] == ["a"]


class _Raw:
    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data


def test_windowed_count_after_a_repartition_over_several_tasks() -> None:
    b = StreamsBuilder()
    b.stream("tx").group_by(lambda k, v: v["merchant"], name="by-merchant").windowed_by(
        TumblingWindows(1000)
    ).count(name="per-second").to_stream().map(lambda k, v: (k.key, [k.start, v])).to("out")
    partitions = {"tx": 4, "test-app-by-merchant-repartition": 4}
    with TopologyTestDriver(b.build(), partitions=partitions) as d:
        for i in range(6):
            d.pipe("tx", f"card-{i}", {"merchant": f"m{i % 3}"}, timestamp=500 * i)
        assert sorted(d.read_key_values("out")) == [
            ("m0", [0, 1]),
            ("m0", [1000, 1]),
            ("m1", [0, 1]),
            ("m1", [2000, 1]),
            ("m2", [1000, 1]),
            ("m2", [2000, 1]),
        ]
        assert len({p for sub, p in d._tasks if sub == 1}) > 1
