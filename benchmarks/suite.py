"""The benchmark suite: throughput, latency, restore and scaling against a real local broker.

    ./scripts/bench [--records 200000] [--runs 3] [--quick] [--no-quix] [--profile]

Every measured engine runs in its own process (:mod:`benchmarks.runner`), so its CPU seconds
and peak RSS are its own. Runs are interleaved (round 1 of every configuration, then round
2, ...) and every ratio is taken within one round, then summarised as median, min and max.
Results go to ``benchmarks/results/results.json``; :mod:`benchmarks.report` prints the table,
draws the charts and rewrites the results section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from benchmarks.common import (
    CLIENT_QUIET,
    PARTITIONS,
    machine,
    percentile,
    preproduce,
    proc_cpu_seconds,
    proc_peak_rss_mib,
    summary,
)
from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.runtime.config import AppConfig, Guarantee
from streamer.runtime.launch import launch_worker

ROOT = Path(__file__).resolve().parent.parent
ALOS, EOS = "at-least-once", "exactly-once"

THROUGHPUT = [
    ("raw", "stateless", ALOS),
    ("streamer", "stateless", ALOS),
    ("quix", "stateless", ALOS),
    ("streamer", "aggregate", ALOS),
    ("quix", "aggregate", ALOS),
    ("streamer", "aggregate", EOS),
    ("quix", "aggregate", EOS),
    ("streamer", "windowed", EOS),
    ("quix", "windowed", EOS),
]
LATENCY = [
    ("raw", "stateless", ALOS, None),
    ("streamer", "stateless", ALOS, None),
    ("streamer", "aggregate", ALOS, None),
    ("streamer", "aggregate", EOS, None),
    ("streamer", "aggregate", EOS, 20),
    ("quix", "aggregate", ALOS, None),
]

log = logging.getLogger("benchmarks")


def quix_installed() -> bool:
    try:
        import quixstreams  # noqa: F401
    except ImportError:
        return False
    return True


def key(engine: str, workload: str, guarantee: str, extra: Any = None) -> str:
    name = f"{engine}/{workload}/{guarantee}"
    return name if extra is None else f"{name}/{extra}"


class Suite:
    def __init__(self, bootstrap: str, options: argparse.Namespace) -> None:
        self.bootstrap = bootstrap
        self.admin = KafkaAdmin(bootstrap, config=CLIENT_QUIET)
        self.o = options
        self.tmp = Path(tempfile.mkdtemp(prefix="streamer-bench-"))
        self.quix = quix_installed() and not options.no_quix
        self.results: dict[str, Any] = {
            "machine": machine(),
            "kafka": "4.1.1 (one local KRaft broker, 127.0.0.1)",
            "parameters": {
                k: (_display_path(v) if isinstance(v, Path) else v)
                for k, v in vars(options).items()
            },
            "quix": self.quix,
        }

    def say(self, text: str) -> None:
        print(text, flush=True)

    def topic(self, prefix: str, partitions: int = PARTITIONS, **config: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.admin.create_topics([TopicSpec(name, partitions, config=config)])
        return name

    def runner(self, spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
        """Run ``benchmarks.runner`` with ``spec``; returns its RESULT line."""
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.runner", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                result: dict[str, Any] = json.loads(line[7:])
                return result
        msg = f"benchmark run {spec.get('role')} failed ({proc.returncode}): {proc.stderr[-3000:]}"
        raise RuntimeError(msg)

    # --- 1-4: throughput -------------------------------------------------------------------

    def throughput(self) -> None:
        n = self.o.records
        source = self.topic("bench-in")
        self.say(f"pre-producing {n:,} transactions to {source} ...")
        started = time.perf_counter()
        preproduce(self.bootstrap, source, n).flush(10)
        self.say(f"  done in {time.perf_counter() - started:.1f} s")
        configs = [c for c in THROUGHPUT if self.quix or c[0] != "quix"]
        runs: dict[str, list[dict[str, Any]]] = {key(*c): [] for c in configs}
        for round_ in range(self.o.runs):
            for engine, workload, guarantee in configs:
                result = self.run_throughput(engine, workload, guarantee, source, n)
                runs[key(engine, workload, guarantee)].append(result)
                self.say(
                    f"  round {round_ + 1}: {engine:<8} {workload:<9} {guarantee:<13} "
                    f"{result['records_per_s']:>9,.0f} rec/s  cpu {result['cpu_s']:.1f} s  "
                    f"peak rss {result['peak_rss_mib']:.0f} MiB"
                )
        self.results["throughput"] = {name: _digest(rs) for name, rs in runs.items()}
        self.results["ratios"] = _ratios(runs)

    def memory(self) -> None:
        """Peak RSS of the stateful exactly-once run at ``--rss-records`` and 3x as many.

        Both counts are past the point where every bounded buffer (librdkafka's prefetch
        queue, RocksDB's memtables, the write cache) has filled, so a difference between
        them is growth with the records processed.
        """
        small_n = self.o.rss_records
        large_n = 3 * small_n
        source = self.topic("bench-mem")
        self.say(f"memory: pre-producing {large_n:,} transactions to {source} ...")
        preproduce(self.bootstrap, source, large_n).flush(10)
        parts: dict[str, dict[str, Any]] = {}
        for part, count in (("small", small_n), ("large", large_n)):
            rs = [
                self.run_throughput("streamer", "aggregate", EOS, source, count)
                for _ in range(self.o.rss_runs)
            ]
            for r in rs:
                curve = ", ".join(f"{n // 1000:,}k {mib:.0f}" for n, mib in r["rss_samples"])
                self.say(
                    f"  {count:>9,} records: peak rss {r['peak_rss_mib']:.0f} MiB, "
                    f"at the end {r['rss_mib']:.0f} MiB; rss by records: {curve}"
                )
            parts[part] = {
                **_digest(rs),
                "records": count,
                "rss_samples": rs[0]["rss_samples"],
            }
        self.results["memory"] = {"workload": "streamer/aggregate/exactly-once", **parts}

    def run_throughput(
        self, engine: str, workload: str, guarantee: str, source: str, records: int, **extra: Any
    ) -> dict[str, Any]:
        sink = self.topic("bench-out")
        spec = {
            "role": "throughput",
            "engine": engine,
            "workload": workload,
            "guarantee": guarantee,
            "bootstrap": self.bootstrap,
            "source": source,
            "sink": sink,
            "app_id": f"bench-{engine}-{uuid.uuid4().hex[:8]}",
            "records": records,
            "state_dir": str(self.tmp / uuid.uuid4().hex[:8]),
            **extra,
        }
        return self.runner(spec)

    def profiles(self) -> None:
        """pyinstrument profiles of the main streamer paths and Quix's aggregate."""
        out = self.o.profile_dir
        out.mkdir(parents=True, exist_ok=True)
        source = self.topic("bench-prof")
        n = self.o.records
        preproduce(self.bootstrap, source, n).flush(10)
        for engine, workload, guarantee in (
            ("raw", "stateless", ALOS),
            ("streamer", "stateless", ALOS),
            ("streamer", "aggregate", EOS),
            ("streamer", "windowed", EOS),
            ("quix", "aggregate", EOS),
        ):
            if engine == "quix" and not self.quix:
                continue
            path = out / f"{engine}-{workload}-{guarantee}.txt"
            self.say(f"profiling {engine} {workload} {guarantee} -> {path}")
            self.run_throughput(engine, workload, guarantee, source, n, profile=str(path))

    # --- 5: latency ------------------------------------------------------------------------

    def latency(self) -> None:
        rows: dict[str, list[dict[str, Any]]] = {}
        configs = [c for c in LATENCY if self.quix or c[0] != "quix"]
        if "throughput" not in self.results:
            # A cold broker is slow for its first seconds; warm it once, unmeasured.
            self.say("  warming the broker up (one unmeasured run)")
            engine, workload, guarantee, interval = configs[0]
            self.run_latency(engine, workload, guarantee, interval, 5_000)
        for _ in range(self.o.runs):
            for mode in self.o.latency_rates:
                for engine, workload, guarantee, interval in configs:
                    if mode == "half":
                        saturation = self.results.get("throughput", {}).get(
                            key(engine, workload, guarantee), {}
                        )
                        rate = 0.5 * saturation.get("records_per_s", {}).get("median", 10_000)
                        at = "half saturation"
                    else:
                        rate = float(mode)
                        at = f"{rate:,.0f}/s"
                    name = key(
                        engine, workload, guarantee, f"commit-{interval}ms" if interval else None
                    )
                    name = f"{name} @ {at}"
                    result = self.run_latency(engine, workload, guarantee, interval, rate)
                    rows.setdefault(name, []).append(result)
                    self.say(
                        f"  {name:<60} at {rate:>7,.0f}/s: p50 {result['p50_ms']:.0f} ms, "
                        f"p95 {result['p95_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms"
                    )
        self.results["latency"] = {
            name: {
                "rate": summary(r["rate"] for r in rs),
                **{q: summary(r[q] for r in rs) for q in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
                "cpu_s": summary(r["cpu_s"] for r in rs),
                "peak_rss_mib": summary(r["peak_rss_mib"] for r in rs),
                "runs": rs,
            }
            for name, rs in rows.items()
        }

    def run_latency(
        self, engine: str, workload: str, guarantee: str, interval: int | None, rate: float
    ) -> dict[str, Any]:
        source, sink = self.topic("lat-in"), self.topic("lat-out")
        spec = {
            "role": "serve",
            "engine": engine,
            "workload": workload,
            "guarantee": guarantee,
            "bootstrap": self.bootstrap,
            "source": source,
            "sink": sink,
            "app_id": f"lat-{engine}-{uuid.uuid4().hex[:8]}",
            "state_dir": str(self.tmp / uuid.uuid4().hex[:8]),
            "commit_interval_ms": interval,
        }
        engine_proc = self._spawn(spec, "serve")
        tail = _committed_tail(self.bootstrap, sink)
        try:
            # Warm up at the measured rate, so that neither start-up nor a cold broker (its
            # JIT compiles the hot paths in the first seconds) is measured.
            self.runner(
                {
                    "role": "paced-producer",
                    "bootstrap": self.bootstrap,
                    "topic": source,
                    "rate": rate,
                    "seconds": self.o.latency_warm_up,
                }
            )
            _drain(tail, int(rate * self.o.latency_warm_up), timeout=120)
            producer = self._spawn(
                {
                    "role": "paced-producer",
                    "bootstrap": self.bootstrap,
                    "topic": source,
                    "rate": rate,
                    "seconds": self.o.latency_seconds,
                },
                "paced",
            )
            total = int(rate * self.o.latency_seconds)
            latencies = _drain(tail, total, timeout=self.o.latency_seconds + 120)
            producer.wait(60)
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

    def _spawn(self, spec: dict[str, Any], name: str) -> subprocess.Popen[bytes]:
        log_path = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with open(log_path, "wb") as log_file:
            return subprocess.Popen(
                [sys.executable, "-m", "benchmarks.runner", json.dumps(spec)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

    # --- 6: restore ------------------------------------------------------------------------

    def restore(self) -> None:
        n = self.o.restore_records
        app_id = f"bench-restore-{uuid.uuid4().hex[:6]}"
        source, sink = self.topic("rs-in", 1), self.topic("rs-out", 1)
        changelog = f"{app_id}-card-totals-changelog"
        self.admin.create_topics([TopicSpec(changelog, 1, config={"cleanup.policy": "compact"})])
        self.say(f"pre-producing a changelog of {n:,} records ...")
        preproduce(self.bootstrap, changelog, n, partition=0).flush(10)
        runs = []
        for round_ in range(self.o.runs):
            raw = self.runner({"role": "raw-read", "bootstrap": self.bootstrap, "topic": changelog})
            restored = self.runner(
                {
                    "role": "restore",
                    "engine": "streamer",
                    "bootstrap": self.bootstrap,
                    "source": source,
                    "sink": sink,
                    "app_id": app_id,
                    "state_dir": str(self.tmp / uuid.uuid4().hex[:8]),
                }
            )
            ratio = restored["records_per_s"] / raw["records_per_s"]
            runs.append({"raw_read": raw, "restore": restored, "ratio": ratio})
            self.say(
                f"  round {round_ + 1}: restore {restored['records']:,} in "
                f"{restored['seconds']:.2f} s ({restored['records_per_s']:,.0f}/s), raw read "
                f"{raw['seconds']:.2f} s ({raw['records_per_s']:,.0f}/s): {ratio:.2f}x"
            )
        self.results["restore"] = {
            "records": n,
            "restore": _digest([r["restore"] for r in runs]),
            "raw_read": _digest([r["raw_read"] for r in runs]),
            "ratio": summary(r["ratio"] for r in runs),
        }

    # --- 7: scaling ------------------------------------------------------------------------

    def scaling(self) -> None:
        rows: dict[str, list[dict[str, Any]]] = {}
        for _ in range(self.o.runs):
            for processes in self.o.scale:
                result = self.run_scaling(processes, self.o.scale_records)
                rows.setdefault(str(processes), []).append(result)
                self.say(
                    f"  {processes} worker process(es): {result['records_per_s']:>9,.0f} rec/s, "
                    f"cpu {result['cpu_s']:.1f} s, peak rss per process "
                    f"{result['peak_rss_mib']:.0f} MiB"
                )
        self.results["scaling"] = {
            "workload": "streamer/aggregate/exactly-once",
            "records": self.o.scale_records,
            "processes": {p: _digest(rs) for p, rs in rows.items()},
        }

    def run_scaling(self, processes: int, records: int) -> dict[str, Any]:
        source, sink = self.topic("sc-in"), self.topic("sc-out")
        # The input stays in an open transaction until every worker owns partitions: the
        # clock starts when it commits, so start-up and rebalancing are not measured.
        gate = preproduce(
            self.bootstrap, source, records, transactional_id=f"gate-{uuid.uuid4().hex[:6]}"
        )
        app_id = f"bench-scale-{uuid.uuid4().hex[:8]}"
        state = self.tmp / app_id
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SOURCE": source, "BENCH_SINK": sink}
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        tail = _committed_tail(self.bootstrap, sink)
        try:
            for instance in range(processes):
                config = AppConfig(
                    app_id=app_id,
                    bootstrap_servers=self.bootstrap,
                    guarantee=Guarantee.EXACTLY_ONCE,
                    state_dir=state,
                    instance=instance,
                )
                log_path = self.tmp / f"{app_id}-{instance}.log"
                with open(log_path, "wb") as log_file:
                    proc = launch_worker(
                        "benchmarks.apps:aggregate_from_env",
                        config,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        env=env,
                    )
                procs.append((proc, log_path))
            _wait_assigned(procs, timeout=120)
            time.sleep(2.0)  # let the last rebalance settle
            cpu0 = sum(proc_cpu_seconds(p.pid) for p, _ in procs)
            start = time.perf_counter()
            gate.commit_transaction(60)
            _drain(tail, records, timeout=600)
            elapsed = time.perf_counter() - start
            cpu = sum(proc_cpu_seconds(p.pid) for p, _ in procs) - cpu0
            peaks = [proc_peak_rss_mib(p.pid) for p, _ in procs]
        finally:
            tail.close()
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc, _ in procs:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
        return {
            "records": records,
            "span_s": elapsed,
            "records_per_s": records / elapsed,
            "cpu_s": cpu,
            "peak_rss_mib": max(peaks),
            "total_peak_rss_mib": sum(peaks),
        }


# --- helpers --------------------------------------------------------------------------------


def _digest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each number over the runs, and the runs themselves."""
    out: dict[str, Any] = {}
    for field in runs[0]:
        if isinstance(runs[0][field], int | float):
            out[field] = summary(float(r[field]) for r in runs)
    out["runs"] = runs
    return out


def _ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-round ratios between engines, so that each one compares numbers of one round."""
    pairs = {
        "streamer/raw, stateless": (
            "streamer/stateless/at-least-once",
            "raw/stateless/at-least-once",
        ),
        "streamer/quix, stateless": (
            "streamer/stateless/at-least-once",
            "quix/stateless/at-least-once",
        ),
        "streamer/quix, aggregate at-least-once": (
            "streamer/aggregate/at-least-once",
            "quix/aggregate/at-least-once",
        ),
        "streamer/quix, aggregate exactly-once": (
            "streamer/aggregate/exactly-once",
            "quix/aggregate/exactly-once",
        ),
        "streamer/quix, windowed exactly-once": (
            "streamer/windowed/exactly-once",
            "quix/windowed/exactly-once",
        ),
    }
    out: dict[str, Any] = {}
    for name, (a, b) in pairs.items():
        if a in runs and b in runs:
            values = [
                x["records_per_s"] / y["records_per_s"]
                for x, y in zip(runs[a], runs[b], strict=True)
            ]
            out[name] = {**summary(values), "values": values}
    return out


def _committed_tail(bootstrap: str, topic: str) -> Consumer:
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


def _drain(consumer: Consumer, count: int, *, timeout: float) -> list[float]:
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


def _wait_assigned(procs: list[tuple[subprocess.Popen[bytes], Path]], timeout: float) -> None:
    import re

    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending:
        for proc, path in list(pending):
            text = path.read_text(errors="replace") if path.exists() else ""
            if re.search(r"assigned [1-9][0-9]* partitions", text):
                pending.remove((proc, path))
            elif proc.poll() is not None:
                msg = f"a worker exited before getting partitions: {text[-2000:]}"
                raise RuntimeError(msg)
        if time.monotonic() > deadline:
            msg = f"{len(pending)} workers got no partitions within {timeout} s"
            raise RuntimeError(msg)
        time.sleep(0.1)


def _display_path(path: Path) -> str:
    """A path as recorded in results: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


SECTIONS: dict[str, Callable[[Suite], None]] = {
    "throughput": Suite.throughput,
    "memory": Suite.memory,
    "latency": Suite.latency,
    "restore": Suite.restore,
    "scaling": Suite.scaling,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--records", type=int, default=200_000, help="input records per run")
    p.add_argument("--runs", type=int, default=3, help="runs per figure (median, min, max)")
    p.add_argument(
        "--rss-records", type=int, default=1_000_000, help="memory runs: this many and 3x"
    )
    p.add_argument("--rss-runs", type=int, default=1)
    p.add_argument("--restore-records", type=int, default=1_000_000)
    p.add_argument("--scale", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    p.add_argument("--scale-records", type=int, default=200_000)
    p.add_argument("--latency-seconds", type=float, default=10.0)
    p.add_argument(
        "--latency-warm-up", type=float, default=3.0, help="seconds at the rate, unmeasured"
    )
    p.add_argument(
        "--latency-rates",
        type=lambda text: text.split(","),
        default=["half", "5000"],
        help="comma-separated: 'half' (of each engine's measured saturation) or records/s",
    )
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--no-quix", action="store_true", help="skip Quix Streams")
    p.add_argument("--profile", action="store_true", help="also write pyinstrument profiles")
    p.add_argument("--profile-dir", type=Path, default=ROOT / "benchmarks/results/profiles")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/results.json")
    p.add_argument("--no-report", action="store_true", help="skip charts and docs")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a fast sanity run (20,000 records, 1 run); writes no report",
    )
    return p


def run_suite(bootstrap: str, options: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen sections against the broker at ``bootstrap``; returns the results."""
    suite = Suite(bootstrap, options)
    started = time.perf_counter()
    for name in options.sections.split(","):
        suite.say(f"== {name}")
        SECTIONS[name](suite)
    if options.profile:
        suite.say("== profiles")
        suite.profiles()
    suite.results["suite_seconds"] = time.perf_counter() - started
    return suite.results


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.quick:
        options.records = options.scale_records = 20_000
        options.rss_records = 40_000
        options.restore_records = 50_000
        options.latency_seconds = 3.0
        options.runs = 1
        options.no_report = True
        options.out = Path(tempfile.mkdtemp()) / "results.json"
    logging.basicConfig(level=logging.WARNING)
    from streamer.testing.kafka import LocalKafkaCluster
    from streamer.testing.kafka.node import SERVER_JVM_OPTS

    # The broker runs as Kafka's start scripts run it (C2 JIT, G1), not with the test
    # broker's start-up-first options, whose serial GC pauses would show up as latency.
    with LocalKafkaCluster(brokers=1, jvm_opts=SERVER_JVM_OPTS) as cluster:
        print(f"broker up at {cluster.bootstrap_servers}", flush=True)
        results = run_suite(cluster.bootstrap_servers, options)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2) + "\n")
    from benchmarks import report

    print()
    print(report.table(results))
    if not options.no_report:
        report.write_all(results)
    print(f"results written to {options.out}")
    return 0
