"""The workloads, written once for streamer and once, idiomatically, for Quix Streams.

``windowed`` emits each window's count once, when the window closes; ``windowed-update``
emits the count at every record. Kafka Streams runs the same workloads from
``benchmarks/kstreams/`` (:mod:`benchmarks.kstreams_engine`).

Both engines call the same user functions (:func:`add_flag`, :func:`add_to_totals`), so a
difference in throughput is the engines' own cost. Records arrive keyed by card, so neither
engine repartitions: streamer groups with ``group_by_key()``, and Quix keeps state per
message key without ``group_by`` (which always writes a repartition topic).

The functions ``stateless``, ``aggregate`` and ``windowed`` without a probe are also what
worker processes load by spec (``benchmarks.apps:aggregate_from_env``) in the scaling run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamer import StreamsBuilder, Topology, TumblingWindows

WINDOW_MS = 60_000
WORKLOADS = ("stateless", "aggregate", "windowed", "windowed-update")
STORE = "card-totals"


def _noop() -> None:
    return None


# --- the user functions, shared by every engine ---------------------------------------------


def add_flag(value: dict[str, Any]) -> dict[str, Any]:
    """The stateless transform: a copy of the transaction with one field added."""
    return {**value, "flagged": value["amount"] > 400}


def initial_totals() -> dict[str, Any]:
    return {"count": 0, "sum": 0.0}


def add_to_totals(totals: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """The per-card aggregate: how many transactions and their sum."""
    return {"count": totals["count"] + 1, "sum": round(totals["sum"] + value["amount"], 2)}


# --- streamer -------------------------------------------------------------------------------


def streamer_topology(
    workload: str, source: str, sink: str, hit: Callable[[], None] = _noop
) -> Topology:
    builder = StreamsBuilder()
    stream = builder.stream(source)
    if workload == "stateless":

        def flag(value: Any) -> Any:
            hit()
            return add_flag(value)

        stream.map_values(flag).to(sink)
    elif workload == "aggregate":

        def add(key: Any, value: Any, totals: Any) -> Any:
            hit()
            return add_to_totals(totals, value)

        (stream.group_by_key().aggregate(initial_totals, add, name=STORE).to_stream().to(sink))
    elif workload in ("windowed", "windowed-update"):
        (
            stream.peek(lambda key, value: hit())
            .group_by_key()
            .windowed_by(TumblingWindows(size=WINDOW_MS, grace=0))
            .count(name="card-minute", emit="final" if workload == "windowed" else "update")
            .to_stream()
            .map(lambda w, count: (w.key, {"start": w.start, "end": w.end, "value": count}))
            .to(sink)
        )
    else:
        msg = f"unknown workload {workload!r}"
        raise ValueError(msg)
    return builder.build()


def aggregate_from_env() -> Topology:
    """The aggregate for worker processes: topics from BENCH_SOURCE and BENCH_SINK."""
    return streamer_topology("aggregate", os.environ["BENCH_SOURCE"], os.environ["BENCH_SINK"])


# --- Quix Streams ---------------------------------------------------------------------------


def quix_application(
    bootstrap: str, group: str, guarantee: str, state_dir: Path, **extra: Any
) -> Any:
    """A Quix Application with its defaults, reading the input from the beginning."""
    from quixstreams import Application

    return Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee=guarantee,
        state_dir=str(state_dir),
        loglevel="WARNING",
        **extra,
    )


def quix_pipeline(
    app: Any, workload: str, source: str, sink: str, hit: Callable[[], None] = _noop
) -> Any:
    """The same workload as a StreamingDataFrame, written the way Quix documents it."""
    from datetime import timedelta

    sdf = app.dataframe(app.topic(source))
    output = app.topic(sink)
    if workload == "stateless":

        def flag(value: Any) -> Any:
            hit()
            return add_flag(value)

        sdf = sdf.apply(flag)
    elif workload == "aggregate":

        def add(value: Any, state: Any) -> Any:
            hit()
            totals = add_to_totals(state.get("totals", initial_totals()), value)
            state.set("totals", totals)
            return totals

        sdf = sdf.apply(add, stateful=True)
    elif workload in ("windowed", "windowed-update"):
        sdf = sdf.update(lambda value: hit())
        counts = sdf.tumbling_window(timedelta(milliseconds=WINDOW_MS), grace_ms=0).count()
        sdf = counts.final() if workload == "windowed" else counts.current()
    else:
        msg = f"unknown workload {workload!r}"
        raise ValueError(msg)
    sdf.to_topic(output)
    return sdf
