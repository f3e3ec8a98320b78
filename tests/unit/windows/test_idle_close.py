"""Idle closing (``idle_close_ms``): windows close by the wall clock on a quiet task."""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, TumblingWindows, Windowed
from streamer.testing import TopologyTestDriver


def build(idle_close_ms: int) -> Any:
    builder = StreamsBuilder()
    (
        builder.stream("in")
        .filter(lambda _key, value: value["keep"])
        .group_by_key()
        .windowed_by(TumblingWindows(size=1_000))
        .count(name="cnt", emit="final", idle_close_ms=idle_close_ms)
        .to_stream()
        .to("out")
    )
    return builder.build()


def test_a_quiet_task_closes_its_windows_after_the_idle_time() -> None:
    with TopologyTestDriver(build(idle_close_ms=5_000)) as driver:
        driver.pipe("in", "k", {"keep": True}, timestamp=100)
        driver.advance_wall_clock(4_000)
        assert driver.read_key_values("out") == []
        # Quiet for 5 s of wall time: event time is taken to have moved as far.
        driver.advance_wall_clock(2_000)
        assert driver.read_key_values("out") == [(Windowed("k", 0, 1_000), 1)]


def test_records_the_window_step_never_sees_still_count_as_activity() -> None:
    # Filtered-out records move stream time every second; the windowed step sees none of
    # them, but the task is not idle, so its time must not run ahead of stream time.
    with TopologyTestDriver(build(idle_close_ms=5_000)) as driver:
        driver.pipe("in", "k", {"keep": True}, timestamp=0)
        for second in range(1, 11):
            driver.advance_wall_clock(1_000)
            driver.pipe("in", "k", {"keep": False}, timestamp=second * 1_000)
        assert driver.read_key_values("out") == [(Windowed("k", 0, 1_000), 1)]
        driver.pipe("in", "k", {"keep": True}, timestamp=10_500)
        driver.pipe("in", "k", {"keep": True}, timestamp=11_000)
        assert driver.counters().get("late-records", 0) == 0
        assert driver.read_key_values("out") == [(Windowed("k", 10_000, 11_000), 1)]
