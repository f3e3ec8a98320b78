"""One measured process: ``python -m benchmarks.runner '<json spec>'``.

The suite starts every engine run in a fresh process so that CPU seconds and peak RSS
belong to that run alone. The spec's ``role`` says what to do; the result is one JSON line
on stdout, prefixed ``RESULT``.

roles:
    throughput      run ``engine`` (streamer | quix | raw) on ``workload`` until ``records``
                    input records reached user code; time them with a :class:`Probe`
    serve           run ``engine`` on ``workload`` until SIGTERM (latency runs)
    paced-producer  produce ``rate`` records/s for ``seconds``, timestamped now
    restore         start a streamer worker whose store must be rebuilt from its changelog
    raw-read        read a topic to its end with a plain consumer
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from benchmarks.apps import (
    add_flag,
    quix_application,
    quix_pipeline,
    streamer_topology,
)
from benchmarks.common import (
    CLIENT_QUIET,
    Probe,
    card,
    cpu_seconds,
    peak_rss_mib,
    rss_mib,
    transaction,
)
from streamer.runtime.config import AppConfig, Guarantee
from streamer.runtime.worker import Worker


def _guarantee(name: str) -> Guarantee:
    return Guarantee.EXACTLY_ONCE if name == "exactly-once" else Guarantee.AT_LEAST_ONCE


def _state_dir(spec: dict[str, Any]) -> Path:
    return Path(spec.get("state_dir") or tempfile.mkdtemp(prefix="bench-state-"))


def streamer_worker(spec: dict[str, Any], hit: Any) -> Worker:
    config = AppConfig(
        app_id=spec["app_id"],
        bootstrap_servers=spec["bootstrap"],
        guarantee=_guarantee(spec["guarantee"]),
        state_dir=_state_dir(spec),
        commit_interval_ms=spec.get("commit_interval_ms"),
    )
    topology = streamer_topology(spec["workload"], spec["source"], spec["sink"], hit)
    return Worker(topology, config)


def quix_app(spec: dict[str, Any], hit: Any) -> Any:
    extra: dict[str, Any] = {}
    if spec.get("commit_interval_ms"):
        extra["commit_interval"] = spec["commit_interval_ms"] / 1000
    app = quix_application(
        spec["bootstrap"], spec["app_id"], spec["guarantee"], _state_dir(spec), **extra
    )
    quix_pipeline(app, spec["workload"], spec["source"], spec["sink"], hit)
    return app


def raw_loop(spec: dict[str, Any], probe: Probe) -> None:
    """The floor for one Python process: consume, parse, add a field, encode, produce."""
    consumer = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": spec["app_id"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **CLIENT_QUIET,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            **CLIENT_QUIET,
        }
    )
    consumer.subscribe([spec["source"]])
    sink = spec["sink"]
    loads, dumps, produce, hit = orjson.loads, orjson.dumps, producer.produce, probe.hit
    timeout = spec.get("poll_timeout_s", 0.1)
    while probe.count < probe.target:
        for message in consumer.consume(num_messages=1000, timeout=timeout):
            if message.error() is not None:
                continue
            hit()
            value = dumps(add_flag(loads(message.value())))
            try:
                produce(sink, value, message.key(), timestamp=message.timestamp()[1])
            except BufferError:
                producer.poll(0.05)
                produce(sink, value, message.key(), timestamp=message.timestamp()[1])
        producer.poll(0)
    producer.flush(60)
    consumer.commit(asynchronous=False)
    consumer.close()


def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    probe = Probe(spec["records"], spec.get("warm_up", 0))
    profiler = None
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
    engine = spec["engine"]
    if engine == "streamer":
        worker = streamer_worker(spec, probe.hit)
        probe.on_target = worker.request_stop
        if profiler is not None:
            profiler.start()
        worker.run()
    elif engine == "quix":
        app = quix_app(spec, probe.hit)
        probe.on_target = app.stop
        if profiler is not None:
            profiler.start()
        app.run()
    elif engine == "raw":
        if profiler is not None:
            profiler.start()
        raw_loop(spec, probe)
    else:
        msg = f"unknown engine {engine!r}"
        raise ValueError(msg)
    closed = time.perf_counter()
    if profiler is not None:
        profiler.stop()
        Path(spec["profile"]).write_text(
            profiler.output_text(unicode=False, color=False, show_all=False)
        )
    if probe.count < probe.target:
        msg = f"stopped after {probe.count} of {probe.target} records"
        raise RuntimeError(msg)
    return {
        **probe.result(),
        "close_s": closed - probe.last,
        "cpu_total_s": cpu_seconds(),
        "peak_rss_mib": peak_rss_mib(),
    }


def serve(spec: dict[str, Any]) -> dict[str, Any]:
    """Run until SIGTERM; for latency runs, where the suite measures from outside."""
    engine = spec["engine"]
    if engine == "streamer":
        worker = streamer_worker(spec, lambda: None)
        signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
        print("STARTED", flush=True)
        worker.run()
    elif engine == "raw":
        # Until SIGTERM; polls as often as streamer's worker does (its poll_timeout_ms).
        probe = Probe(2**62)

        def stop(*_: Any) -> None:
            probe.target = 0

        signal.signal(signal.SIGTERM, stop)
        print("STARTED", flush=True)
        raw_loop({**spec, "poll_timeout_s": 0.01}, probe)
    else:
        app = quix_app(spec, lambda: None)  # Quix stops itself on SIGTERM
        print("STARTED", flush=True)
        app.run()
    return {"cpu_total_s": cpu_seconds(), "peak_rss_mib": peak_rss_mib()}


def paced_producer(spec: dict[str, Any]) -> dict[str, Any]:
    """``rate`` records/s for ``seconds``, in 1 ms steps, each timestamped when produced."""
    producer = Producer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            **CLIENT_QUIET,
        }
    )
    rate, seconds, topic = spec["rate"], spec["seconds"], spec["topic"]
    total = int(rate * seconds)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            ts = int(time.time() * 1000)
            try:
                producer.produce(topic, transaction(sent, ts), card(sent), timestamp=ts)
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(60)
    elapsed = time.perf_counter() - start
    return {"sent": sent, "seconds": elapsed, "rate": sent / elapsed}


def restore(spec: dict[str, Any]) -> dict[str, Any]:
    """Time from the restore starting to the task being ready, for a pre-filled changelog."""
    spec = {**spec, "guarantee": "at-least-once", "workload": "aggregate"}
    worker = streamer_worker(spec, lambda: None)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while not worker.snapshot.restoring:
        if not thread.is_alive():
            msg = "the worker stopped before restoring"
            raise RuntimeError(msg)
        time.sleep(0.001)
    start = time.perf_counter()
    cpu0 = cpu_seconds()
    while not worker.ready:
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    restored = worker.snapshot.restored
    rss = rss_mib()
    worker.request_stop()
    thread.join(120)
    return {
        "seconds": elapsed,
        "records": restored,
        "records_per_s": restored / elapsed,
        "cpu_s": cpu,
        "rss_mib": rss,
        "peak_rss_mib": peak_rss_mib(),
    }


def raw_read(spec: dict[str, Any]) -> dict[str, Any]:
    """Read every partition of ``topic`` from the start to its end, touching each record."""
    consumer = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": f"raw-read-{uuid.uuid4().hex[:6]}",
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 16 << 20,
            **CLIENT_QUIET,
        }
    )
    partitions = spec.get("partitions", 1)
    # Connected and the end offsets known first, as the worker's restore consumer is.
    for p in range(partitions):
        consumer.get_watermark_offsets(TopicPartition(spec["topic"], p), timeout=10)
    pending = set(range(partitions))
    count = 0
    start = time.perf_counter()
    cpu0 = cpu_seconds()
    consumer.assign([TopicPartition(spec["topic"], p, 0) for p in range(partitions)])
    while pending:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                continue
            message.key()
            message.value()
            count += 1
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    consumer.close()
    return {
        "seconds": elapsed,
        "records": count,
        "records_per_s": count / elapsed,
        "cpu_s": cpu,
        "peak_rss_mib": peak_rss_mib(),
    }


ROLES = {
    "throughput": throughput,
    "serve": serve,
    "paced-producer": paced_producer,
    "restore": restore,
    "raw-read": raw_read,
}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    logging.basicConfig(level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"))
    result = ROLES[spec["role"]](spec)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
