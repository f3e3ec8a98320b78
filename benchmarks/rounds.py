"""Summaries of interleaved rounds: each figure's median, min and max, and per-round ratios.

Configurations are ``(engine, workload, guarantee)``; a run's result is keyed
``engine/workload/guarantee``. A ratio compares two engines within each round (runs of one
round ran back to back on the same broker), then is summarised over the rounds.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import summary

ALOS, EOS = "at-least-once", "exactly-once"
WORKLOAD_ROWS = (
    ("stateless", ALOS),
    ("aggregate", ALOS),
    ("aggregate", EOS),
    ("windowed", EOS),
    ("windowed-update", EOS),
)
"""Every (workload, guarantee) the throughput sections measure, in table order."""
STATEFUL_ENGINES = ("streamer", "quix", "kstreams", "kstreams-cached")
"""The engines of every row; the raw loop runs only the stateless transform."""
LEFT_OUT = frozenset({("kstreams-cached", "stateless"), ("kstreams-cached", "windowed")})
"""(engine, workload) pairs not measured. The stateless transform has no store, so Kafka
Streams' record cache makes no second row there. Emit-final windows with the cache on run
at a few hundred records/s in Kafka Streams 4.1.1: each emit check scans the window store
through its cache, and every step of that scan copies the cache's key set
(``TimeOrderedCachingWindowStore`` -> ``NamedCache.keyRange``), about 1.6 ms of CPU per
record; a 200,000-record run would take longer than the rest of the suite."""


def key(engine: str, workload: str, guarantee: str, extra: Any = None) -> str:
    name = f"{engine}/{workload}/{guarantee}"
    return name if extra is None else f"{name}/{extra}"


def configurations(engines: tuple[str, ...] = STATEFUL_ENGINES) -> list[tuple[str, str, str]]:
    """The throughput configurations of ``engines`` (plus the raw loop), row by row."""
    out: list[tuple[str, str, str]] = [("raw", "stateless", ALOS)]
    for workload, guarantee in WORKLOAD_ROWS:
        for engine in engines:
            if (engine, workload) not in LEFT_OUT:
                out.append((engine, workload, guarantee))
    return out


def row_label(workload: str, guarantee: str) -> str:
    """How a row is named in ratios: ``stateless`` or ``<workload> <guarantee>``."""
    return "stateless" if workload == "stateless" else f"{workload} {guarantee}"


def ratio_pairs() -> dict[str, tuple[str, str]]:
    """streamer over each other engine, per row: ``name -> (numerator, denominator)``."""
    pairs = {
        "streamer/raw, stateless": (
            key("streamer", "stateless", ALOS),
            key("raw", "stateless", ALOS),
        )
    }
    for other in ("quix", "kstreams", "kstreams-cached"):
        for workload, guarantee in WORKLOAD_ROWS:
            if (other, workload) not in LEFT_OUT:
                name = f"streamer/{other}, {row_label(workload, guarantee)}"
                pairs[name] = (
                    key("streamer", workload, guarantee),
                    key(other, workload, guarantee),
                )
    return pairs


def digest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each number over the runs, and the runs themselves."""
    out: dict[str, Any] = {}
    for field in runs[0]:
        if isinstance(runs[0][field], int | float):
            out[field] = summary(float(r[field]) for r in runs)
    out["runs"] = runs
    return out


def ratios(runs: dict[str, list[dict[str, Any]]], field: str = "records_per_s") -> dict[str, Any]:
    """Per-round ratios of ``field`` between engines, each from numbers of one round."""
    out: dict[str, Any] = {}
    for name, (a, b) in ratio_pairs().items():
        if a in runs and b in runs:
            values = [x[field] / y[field] for x, y in zip(runs[a], runs[b], strict=True)]
            out[name] = {**summary(values), "values": values}
    return out
