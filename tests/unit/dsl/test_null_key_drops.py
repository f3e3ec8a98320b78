"""An aggregation drops records without a key: counted per task, and reported by a WARNING
at most once per step every 10 s of the task's wall clock, naming where the record came
from."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from prometheus_client import generate_latest

from streamer import SessionWindows, SlidingWindows, StreamsBuilder, TumblingWindows
from streamer.dsl.grouped import GroupedStream
from streamer.processors.drops import DROPPED_NULL_KEY, REPORT_INTERVAL_MS
from streamer.runtime.metrics import WorkerInfo, WorkerSnapshot
from streamer.runtime.prometheus import PrometheusMetrics
from streamer.testing import TopologyTestDriver
from streamer.topology.graph import Topology

Aggregation = Callable[[GroupedStream], object]

AGGREGATIONS: dict[str, Aggregation] = {
    "count": lambda g: g.count(name="agg"),
    "reduce": lambda g: g.reduce(lambda a, b: a, name="agg"),
    "aggregate": lambda g: g.aggregate(lambda: 0, lambda k, v, a: a + 1, name="agg"),
    "tumbling": lambda g: g.windowed_by(TumblingWindows(size=1000)).count(name="agg"),
    "sliding": lambda g: g.windowed_by(SlidingWindows(size=1000)).count(name="agg"),
    "session": lambda g: g.windowed_by(SessionWindows(gap=1000)).count(name="agg"),
}


def _topology(aggregation: Aggregation) -> Topology:
    builder = StreamsBuilder()
    aggregation(builder.stream("tx").group_by_key())
    return builder.build()


def _reports(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The drop reports; a windowed aggregation's step is "agg-aggregate", shown as "agg"."""
    return [
        r.getMessage().replace("step agg-aggregate:", "step agg:")
        for r in caplog.records
        if r.levelno == logging.WARNING and "without a key" in r.getMessage()
    ]


@pytest.mark.parametrize("kind", list(AGGREGATIONS))
def test_keyless_records_are_counted_and_reported_at_most_every_ten_seconds(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with TopologyTestDriver(_topology(AGGREGATIONS[kind]), wall_clock_ms=5_000) as driver:
        driver.pipe("tx", None, {"card": "4111111111111111"}, timestamp=0)  # offset 0
        (first,) = _reports(caplog)
        assert first == (
            "task 0_0, step agg: dropped 1 record(s) without a key since the last report "
            "(1 in all), the latest at tx[0]@0; an aggregation needs a key: set one with "
            "select_key or group_by before it"
        )
        driver.pipe("tx", "k", {"n": 1}, timestamp=0)  # offset 1: a keyed record, used
        driver.pipe("tx", None, {"n": 2}, timestamp=0)  # offset 2
        driver.advance_wall_clock(REPORT_INTERVAL_MS - 1)
        driver.pipe("tx", None, {"n": 3}, timestamp=0)  # offset 3
        assert len(_reports(caplog)) == 1, "within 10 s: counted, not logged"
        driver.advance_wall_clock(1)
        driver.pipe("tx", None, {"n": 4}, timestamp=0)  # offset 4
        assert _reports(caplog)[1].startswith(
            "task 0_0, step agg: dropped 3 record(s) without a key since the last report "
            "(4 in all), the latest at tx[0]@4;"
        )
        counters = driver.counters()
    assert counters[DROPPED_NULL_KEY] == 4
    assert counters["null-key-or-value-skipped"] == 4
    assert "4111111111111111" not in caplog.text


def test_a_keyed_record_without_a_value_is_skipped_but_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with TopologyTestDriver(_topology(AGGREGATIONS["count"])) as driver:
        driver.pipe("tx", "k", None, timestamp=0)
        counters = driver.counters()
    assert counters == {"null-key-or-value-skipped": 1}
    assert _reports(caplog) == []


def test_each_aggregation_step_reports_its_own_drops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    builder = StreamsBuilder()
    grouped = builder.stream("tx").group_by_key()
    grouped.count(name="counts")
    grouped.reduce(lambda a, b: b, name="latest")
    with TopologyTestDriver(builder.build(), partitions={"tx": 2}) as driver:
        driver.pipe("tx", None, {"n": 1}, timestamp=0, partition=1)
        counters = driver.counters()
    assert counters[DROPPED_NULL_KEY] == 2
    reports = _reports(caplog)
    assert [r.split(":")[0] for r in reports] == ["task 0_1, step counts", "task 0_1, step latest"]
    assert all("the latest at tx[1]@0" in r for r in reports)


def test_the_drop_counter_is_exported_to_prometheus() -> None:
    info = WorkerInfo("shop", "0", "exactly-once")
    metrics = PrometheusMetrics(refresh_interval=0.0)
    metrics.started(info)
    metrics.tick(WorkerSnapshot(info, task_counters={"0_0": {DROPPED_NULL_KEY: 3}}))
    text = generate_latest(metrics.registry).decode()
    assert 'streamer_processor_events_total{event="records-dropped-null-key",task="0_0"} 3.0' in (
        text
    )
