"""What every benchmark shares: the workload's records, producing them, and measuring a process.

Records are ~100-byte JSON card transactions keyed by card (10,000 cards). Event times are
one millisecond apart, ending when pre-production starts, so windows of one minute close
along the way and no record is old enough for retention to delete.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

KEYS = 10_000
PARTITIONS = 8
CLIENT_QUIET: dict[str, Any] = {"log_level": 3}


def card(n: int) -> bytes:
    return f"card-{n % KEYS:05d}".encode()


def transaction(n: int, ts: int) -> bytes:
    return orjson.dumps(
        {
            "id": n,
            "card": f"card-{n % KEYS:05d}",
            "amount": round((n * 7919) % 50000 / 100, 2),
            "currency": "EUR",
            "merchant": f"m-{n % 997}",
            "ts": ts,
        }
    )


def _produce(producer: Producer, topic: str, **kwargs: Any) -> None:
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


def preproduce(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    partition: int | None = None,
    transactional_id: str | None = None,
) -> Producer:
    """Write ``count`` transactions to ``topic``; event time n is ``base + n`` ms.

    With ``transactional_id`` the records stay in an open transaction and the producer is
    returned: ``commit_transaction()`` on it makes all of them visible at once to
    ``read_committed`` consumers (the scaling benchmark starts its clock there).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        **CLIENT_QUIET,
    }
    if transactional_id is not None:
        conf["transactional.id"] = transactional_id
        conf["transaction.timeout.ms"] = 600_000
    producer = Producer(conf)
    if transactional_id is not None:
        producer.init_transactions(30)
        producer.begin_transaction()
    base = int(time.time() * 1000) - count
    extra = {} if partition is None else {"partition": partition}
    for n in range(count):
        ts = base + n
        _produce(producer, topic, key=card(n), value=transaction(n, ts), timestamp=ts, **extra)
        if n % 10_000 == 0:
            producer.poll(0)
    producer.flush(300)
    return producer


# --- measuring a process --------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU of this process (all its threads, librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """Peak RSS of this process, from /proc (VmHWM).

    Not ``ru_maxrss``: Linux keeps it across ``execve``, so a runner started by the suite
    would report the suite's own peak whenever that is larger than its own.
    """
    return proc_peak_rss_mib("self")


def rss_mib(pid: int | str = "self") -> float:
    """Current resident set size of a process."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_peak_rss_mib(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


RSS_SAMPLE_EVERY = 250_000
"""A throughput run records its RSS after every this many records."""


class Probe:
    """Counts records at the first step of a pipeline; the clock of a throughput run.

    The same call sits in the first user function of every engine, so each is timed at the
    same point: from the first record handed to user code to the ``target``-th one. With
    ``warm_up``, the span from the ``warm_up``-th record to the ``target``-th is also
    reported (``steady_*``): the steady state, past start-up and (for a JVM) JIT warm-up.
    """

    def __init__(self, target: int, warm_up: int = 0) -> None:
        self.target = target
        self.warm_up = warm_up
        self.count = 0
        self.first = 0.0
        self.warm = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_warm = 0.0
        self.cpu_last = 0.0
        self.rss_last = 0.0
        self.rss_samples: list[tuple[int, float]] = []
        self.on_target: Any = None

    def hit(self) -> None:
        self.count += 1
        if self.count % RSS_SAMPLE_EVERY == 0:
            self.rss_samples.append((self.count, rss_mib()))
        if self.count == 1:
            self.first = time.perf_counter()
            self.cpu_first = cpu_seconds()
        if self.count == self.warm_up:
            self.warm = time.perf_counter()
            self.cpu_warm = cpu_seconds()
        if self.count == self.target:
            self.last = time.perf_counter()
            self.cpu_last = cpu_seconds()
            self.rss_last = rss_mib()
            if self.on_target is not None:
                self.on_target()

    def result(self) -> dict[str, Any]:
        span = self.last - self.first
        records = self.target - 1  # records after the first one, over the span
        out: dict[str, Any] = {
            "records": self.target,
            "span_s": span,
            "records_per_s": records / span if span > 0 else 0.0,
            "cpu_s": self.cpu_last - self.cpu_first,
            "rss_mib": self.rss_last,
            "rss_samples": self.rss_samples,
        }
        if 1 < self.warm_up < self.target:
            steady = self.last - self.warm
            steady_records = self.target - self.warm_up
            out["steady_records"] = steady_records
            out["steady_span_s"] = steady
            out["steady_records_per_s"] = steady_records / steady if steady > 0 else 0.0
            out["steady_cpu_s"] = self.cpu_last - self.cpu_warm
        return out


# --- statistics -----------------------------------------------------------------------------


def summary(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max of repeated runs."""
    data = sorted(values)
    if not data:
        return {"median": 0.0, "min": 0.0, "max": 0.0, "n": 0}
    return {"median": statistics.median(data), "min": data[0], "max": data[-1], "n": len(data)}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    try:
        java = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=30, check=False
        )
        info["java"] = (java.stderr or java.stdout).splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    versions: dict[str, str] = {}
    from importlib import metadata

    for package in ("streamer", "confluent-kafka", "rocksdict", "orjson", "quixstreams"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import confluent_kafka

    versions["librdkafka"] = confluent_kafka.libversion()[0]
    info["versions"] = versions
    return info
