"""The latency section of the suite: a latency-throughput curve for every engine.

At each rate of ``--latency-rates`` (2,000, 5,000, 10,000 and 20,000 records/s by default: a
load this 2-core machine carries beside the broker, the paced producer and the measuring
consumer), a paced producer writes for ``--latency-seconds``, each record timestamped when
produced, while the engine runs; a ``read_committed`` consumer takes arrival time minus
record timestamp on the output. Results are keyed ``<series> @ <rate>/s``, and each keeps
its ``series`` and ``rate``, from which the report draws the curve.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, TopicPartition

from benchmarks.common import (
    CLIENT_QUIET,
    PARTITIONS,
    percentile,
    proc_cpu_seconds,
    proc_peak_rss_mib,
    summary,
)
from benchmarks.rounds import ALOS, EOS, key

if TYPE_CHECKING:
    from benchmarks.suite import Suite

CURVES: list[tuple[str, str, str, int | None]] = [
    ("raw", "stateless", ALOS, None),
    ("streamer", "stateless", ALOS, None),
    ("streamer", "aggregate", ALOS, None),
    ("streamer", "aggregate", EOS, None),
    ("streamer", "aggregate", EOS, 20),
    ("kstreams", "aggregate", ALOS, None),
    ("kstreams", "aggregate", EOS, None),
    ("quix", "aggregate", ALOS, None),
]
"""(engine, workload, guarantee, commit interval ms or None for the engine's default).

Kafka Streams runs with its record cache off (``kstreams``): with the cache, an update is
forwarded only when the cache flushes at a commit, 30 s apart under at-least-once."""
RATES = (2_000.0, 5_000.0, 10_000.0, 20_000.0)
KSTREAMS_LINGER_MS = 5
"""Kafka Streams' producer default is ``linger.ms=100``; latency runs give it the 5 ms that
streamer and the raw loop use, so the curve compares the engines, not their batching."""


def series_name(engine: str, workload: str, guarantee: str, interval: int | None) -> str:
    return key(engine, workload, guarantee, f"commit-{interval}ms" if interval else None)


def parse_rates(text: str) -> list[float]:
    """``--latency-rates``: comma-separated records/s, each above zero."""
    try:
        rates = [float(part) for part in text.split(",")]
    except ValueError:
        msg = f"--latency-rates takes comma-separated records/s (e.g. 2000,5000), not {text!r}"
        raise ValueError(msg) from None
    if not rates or any(rate <= 0 for rate in rates):
        msg = f"--latency-rates must be positive records/s, not {text!r}"
        raise ValueError(msg)
    return rates


def latency(suite: Suite) -> None:
    """Every configuration of :data:`CURVES` at every rate, interleaved, ``--runs`` times."""
    rows: dict[str, list[dict[str, Any]]] = {}
    series: dict[str, str] = {}
    configs = [c for c in CURVES if suite.enabled(c[0])]
    if "throughput" not in suite.results:
        # A cold broker is slow for its first seconds; warm it once, unmeasured.
        suite.say("  warming the broker up (one unmeasured run)")
        run_latency(suite, *configs[0], 5_000)
    for _ in range(suite.o.runs):
        for rate in suite.o.latency_rates:
            for engine, workload, guarantee, interval in configs:
                name = f"{series_name(engine, workload, guarantee, interval)} @ {rate:,.0f}/s"
                series[name] = series_name(engine, workload, guarantee, interval)
                result = run_latency(suite, engine, workload, guarantee, interval, rate)
                rows.setdefault(name, []).append(result)
                suite.say(
                    f"  {name:<60}: p50 {result['p50_ms']:.0f} ms, "
                    f"p95 {result['p95_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms"
                )
    suite.results["latency"] = {
        name: {
            "series": series[name],
            "rate": summary(r["rate"] for r in rs),
            **{q: summary(r[q] for r in rs) for q in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
            "cpu_s": summary(r["cpu_s"] for r in rs),
            "peak_rss_mib": summary(r["peak_rss_mib"] for r in rs),
            "runs": rs,
        }
        for name, rs in rows.items()
    }


def run_latency(
    suite: Suite, engine: str, workload: str, guarantee: str, interval: int | None, rate: float
) -> dict[str, Any]:
    source, sink = suite.topic("lat-in"), suite.topic("lat-out")
    spec: dict[str, Any] = {
        "role": "serve",
        "engine": engine,
        "workload": workload,
        "guarantee": guarantee,
        "bootstrap": suite.bootstrap,
        "source": source,
        "sink": sink,
        "app_id": f"lat-{engine}-{uuid.uuid4().hex[:8]}",
        "state_dir": str(suite.tmp / uuid.uuid4().hex[:8]),
        "commit_interval_ms": interval,
    }
    if engine.startswith("kstreams"):
        spec["linger_ms"] = KSTREAMS_LINGER_MS
    engine_proc = suite.spawn(spec, "serve")
    tail = committed_tail(suite.bootstrap, sink)
    try:
        latencies = _paced(suite, source, tail, rate)
        cpu = proc_cpu_seconds(engine_proc.pid)
        peak = proc_peak_rss_mib(engine_proc.pid)
    finally:
        tail.close()
        engine_proc.send_signal(signal.SIGTERM)
        try:
            engine_proc.wait(60)
        except subprocess.TimeoutExpired:
            engine_proc.kill()
            engine_proc.wait(30)
    skip = len(latencies) // 10  # the first tenth: the engine's caches and clients warm up
    values = sorted(latencies[skip:])
    return {
        "rate": rate,
        "records": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1] if values else 0.0,
        "cpu_s": cpu,
        "peak_rss_mib": peak,
    }


def _paced(suite: Suite, source: str, tail: Consumer, rate: float) -> list[float]:
    """Warm up at ``rate`` (unmeasured), then produce at it; the measured latencies."""
    # Warm up at the measured rate, so that neither start-up nor a cold broker (its JIT
    # compiles the hot paths in the first seconds) is measured.
    warm_up = suite.o.latency_warm_up
    producer_spec = {"role": "paced-producer", "bootstrap": suite.bootstrap, "topic": source}
    suite.runner({**producer_spec, "rate": rate, "seconds": warm_up})
    drain(tail, int(rate * warm_up), timeout=120)
    seconds = suite.o.latency_seconds
    producer = suite.spawn({**producer_spec, "rate": rate, "seconds": seconds}, "paced")
    latencies = drain(tail, int(rate * seconds), timeout=seconds + 120)
    producer.wait(60)
    return latencies


def committed_tail(bootstrap: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"tail-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
            **CLIENT_QUIET,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    return consumer


def drain(consumer: Consumer, count: int, *, timeout: float) -> list[float]:
    """Read ``count`` records; returns each one's latency (arrival minus its timestamp), ms."""
    latencies: list[float] = []
    deadline = time.monotonic() + timeout
    while len(latencies) < count:
        if time.monotonic() > deadline:
            msg = f"only {len(latencies)} of {count} output records after {timeout} s"
            raise RuntimeError(msg)
        # poll() returns as soon as a record is there; consume(n, t) would wait for n records
        # or the whole t, and add up to t to every latency. What else is queued by then
        # arrived before it, so taking the clock once per batch never shortens a latency.
        first = consumer.poll(0.05)
        if first is None:
            continue
        now = time.time() * 1000
        batch = [first, *consumer.consume(num_messages=10_000, timeout=0)]
        latencies.extend(now - m.timestamp()[1] for m in batch if m.error() is None)
    return latencies
