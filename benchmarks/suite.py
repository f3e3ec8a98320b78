"""The benchmark suite: throughput, latency, restore and scaling against a real local broker.

    ./scripts/bench [--records 200000] [--runs 3] [--quick] [--no-quix] [--no-kstreams]

Every measured engine runs in its own process (:mod:`benchmarks.runner`, or the Kafka
Streams JVM of :mod:`benchmarks.kstreams_engine`), so its CPU seconds and peak RSS are its
own. Runs are interleaved (round 1 of every configuration, then round
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

from benchmarks import kstreams_engine
from benchmarks.common import (
    CLIENT_QUIET,
    PARTITIONS,
    machine,
    preproduce,
    proc_cpu_seconds,
    proc_peak_rss_mib,
    summary,
)
from benchmarks.latency import RATES, committed_tail, drain, latency, parse_rates
from benchmarks.rounds import ALOS, EOS, configurations, digest, key, ratios
from benchmarks.steady import steady
from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.runtime.config import AppConfig, Guarantee
from streamer.runtime.launch import launch_worker

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT = configurations()
"""The raw loop's stateless transform, then every workload row for each engine."""

log = logging.getLogger("benchmarks")


def quix_installed() -> bool:
    try:
        import quixstreams  # noqa: F401
    except ImportError:
        return False
    return True


class Suite:
    def __init__(self, bootstrap: str, options: argparse.Namespace) -> None:
        self.bootstrap = bootstrap
        self.admin = KafkaAdmin(bootstrap, config=CLIENT_QUIET)
        self.o = options
        self.tmp = Path(tempfile.mkdtemp(prefix="streamer-bench-"))
        self.quix = quix_installed() and not options.no_quix
        # Built (or found in the cache) before any round, so no run waits for Maven.
        self.kstreams_app = None if options.no_kstreams else kstreams_engine.build()
        self.results: dict[str, Any] = {
            "machine": machine(),
            "kafka": "4.1.1 (one local KRaft broker, 127.0.0.1)",
            "parameters": {
                k: (_display_path(v) if isinstance(v, Path) else v)
                for k, v in vars(options).items()
            },
            "quix": self.quix,
            "kstreams": self.kstreams_app is not None,
        }

    def enabled(self, engine: str) -> bool:
        """Whether this run measures ``engine`` (Quix and Kafka Streams can be left out)."""
        if engine == "quix":
            return self.quix
        if kstreams_engine.is_kstreams(engine):
            return self.kstreams_app is not None
        return True

    def command(self, spec: dict[str, Any]) -> list[str]:
        """The process that runs ``spec``: the Kafka Streams JVM, or the Python runner."""
        if kstreams_engine.is_kstreams(spec.get("engine", "")):
            if self.kstreams_app is None:
                msg = "Kafka Streams is disabled in this run (--no-kstreams)"
                raise RuntimeError(msg)
            return kstreams_engine.command(spec, self.kstreams_app)
        return [sys.executable, "-m", "benchmarks.runner", json.dumps(spec)]

    def say(self, text: str) -> None:
        print(text, flush=True)

    def topic(self, prefix: str, partitions: int = PARTITIONS, **config: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.admin.create_topics([TopicSpec(name, partitions, config=config)])
        return name

    def runner(self, spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
        """Run ``spec`` in its own process (:meth:`command`); returns its RESULT line."""
        proc = subprocess.run(
            self.command(spec),
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
        configs = [c for c in THROUGHPUT if self.enabled(c[0])]
        runs: dict[str, list[dict[str, Any]]] = {key(*c): [] for c in configs}
        for round_ in range(self.o.runs):
            for engine, workload, guarantee in configs:
                result = self.run_throughput(engine, workload, guarantee, source, n)
                runs[key(engine, workload, guarantee)].append(result)
                self.say(
                    f"  round {round_ + 1}: {engine:<15} {workload:<15} {guarantee:<13} "
                    f"{result['records_per_s']:>9,.0f} rec/s  cpu {result['cpu_s']:.1f} s  "
                    f"peak rss {result['peak_rss_mib']:.0f} MiB"
                )
        self.results["throughput"] = {name: digest(rs) for name, rs in runs.items()}
        self.results["ratios"] = ratios(runs)

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
                **digest(rs),
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

    def spawn(self, spec: dict[str, Any], name: str) -> subprocess.Popen[bytes]:
        """Start ``spec`` in the background (:meth:`command`), its output in a log file."""
        log_path = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with open(log_path, "wb") as log_file:
            return subprocess.Popen(
                self.command(spec),
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
            "restore": digest([r["restore"] for r in runs]),
            "raw_read": digest([r["raw_read"] for r in runs]),
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
            "processes": {p: digest(rs) for p, rs in rows.items()},
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
        tail = committed_tail(self.bootstrap, sink)
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
            drain(tail, records, timeout=600)
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
    "steady": steady,
    "memory": Suite.memory,
    "latency": latency,
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
        type=parse_rates,
        default=list(RATES),
        help="comma-separated records/s of the latency curve (default 2000,5000,10000,20000)",
    )
    p.add_argument(
        "--steady-records",
        type=int,
        default=2_000_000,
        help="input records of each steady-state run (section 'steady')",
    )
    p.add_argument(
        "--steady-warm-up",
        type=int,
        default=None,
        help="records before the steady-state clock starts (default: a fifth of the run)",
    )
    p.add_argument("--steady-runs", type=int, default=1, help="rounds of the steady section")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--no-quix", action="store_true", help="skip Quix Streams")
    p.add_argument(
        "--no-kstreams", action="store_true", help="skip Kafka Streams (needs java and mvn)"
    )
    p.add_argument("--profile", action="store_true", help="also write pyinstrument profiles")
    p.add_argument("--profile-dir", type=Path, default=ROOT / "benchmarks/results/profiles")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/results.json")
    p.add_argument("--no-report", action="store_true", help="skip charts and docs")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a fast sanity run (20,000 records, 100,000 steady, 1 run); writes no report",
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
        options.steady_records = 100_000
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
