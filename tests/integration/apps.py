"""Topologies the runtime integration tests run in worker processes."""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, Topology, TumblingWindows

INPUT = "STREAMER_TEST_INPUT"
OUTPUT = "STREAMER_TEST_OUTPUT"


def _topics() -> tuple[str, str]:
    import os

    return os.environ[INPUT], os.environ[OUTPUT]


def running_count() -> Topology:
    """Per key: a running count; each input ``{"n": seq}`` yields ``{"n": seq, "count": c}``.

    Under exactly-once, the outputs of key k are counts 1..N_k, each once, in order.
    """
    source, sink = _topics()
    builder = StreamsBuilder()

    def add(key: Any, value: Any, aggregate: Any) -> Any:
        return {"n": value["n"], "count": aggregate["count"] + 1}

    (
        builder.stream(source)
        .group_by_key()
        .aggregate(lambda: {"n": -1, "count": 0}, add, name="running-count")
        .to_stream()
        .to(sink)
    )
    return builder.build()


def windowed_count() -> Topology:
    source, sink = _topics()
    builder = StreamsBuilder()
    (
        builder.stream(source)
        .group_by_key()
        .windowed_by(TumblingWindows(size=1_000, grace=0))
        .count(name="window-count", emit="final")
        .to_stream()
        .map(lambda k, v: (k.key, {"start": k.start, "count": v}))
        .to(sink)
    )
    return builder.build()


def fragile_count() -> Topology:
    """Like running_count, but raises on a value with ``"boom": true``."""
    source, sink = _topics()
    builder = StreamsBuilder()

    def check(value: Any) -> Any:
        if value.get("boom"):
            raise ValueError("boom requested by the record")
        return value

    def add(key: Any, value: Any, aggregate: Any) -> Any:
        return {"n": value["n"], "count": aggregate["count"] + 1}

    (
        builder.stream(source)
        .map_values(check)
        .group_by_key()
        .aggregate(lambda: {"n": -1, "count": 0}, add, name="running-count")
        .to_stream()
        .to(sink)
    )
    return builder.build()


def regrouped_sum() -> Topology:
    """Re-keys ``{"n", "group"}`` records by group through a repartition topic and sums ``n``.

    Output per input: ``(group, {"total": running sum, "count": running count})``.
    """
    source, sink = _topics()
    builder = StreamsBuilder()

    def add(key: Any, value: Any, aggregate: Any) -> Any:
        return {"total": aggregate["total"] + value["n"], "count": aggregate["count"] + 1}

    (
        builder.stream(source)
        .group_by(lambda k, v: v["group"], name="by-group")
        .aggregate(lambda: {"total": 0, "count": 0}, add, name="group-sums")
        .to_stream()
        .to(sink)
    )
    return builder.build()
