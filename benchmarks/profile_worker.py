"""CPU per record of a streamer worker on a local broker, per workload, optionally profiled.

    python -m benchmarks.profile_worker --workloads windowed-update,aggregate --records 300000
    python -m benchmarks.profile_worker --workloads windowed-update --profile-dir DIR

Like the throughput suite (:mod:`benchmarks.suite`), every run is a fresh process timed by a
:class:`~benchmarks.common.Probe` in its first user function, over the same pre-produced
records; unlike it, the workloads include the tumbling count that forwards every update
(``windowed-update``), the topologies come from :mod:`benchmarks.profile_paths`, and a run
can be profiled with cProfile (``--profile-dir``: one text report per run, top functions by
own and by cumulative time). Rounds are interleaved, so on a loaded machine the workloads
see the same load; the figure to compare is CPU microseconds per record.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import PARTITIONS, Probe, cpu_seconds, peak_rss_mib, preproduce
from benchmarks.profile_paths import CountingSink, write_profile
from streamer import StreamsBuilder, Topology, TumblingWindows
from streamer.runtime.config import AppConfig, Guarantee
from streamer.runtime.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("stateless", "aggregate", "aggregate-alos", "windowed-update", "windowed-final")

__all__ = ["CountingSink", "main"]


def topology(workload: str, source: str, sink: str, hit: Any) -> Topology:
    """The workload, with ``hit`` called once per input record in its first step."""
    from benchmarks.apps import add_flag, add_to_totals, initial_totals

    builder = StreamsBuilder()
    stream = builder.stream(source)
    if workload == "stateless":
        stream.map_values(lambda value: (hit(), add_flag(value))[1]).to(sink)
    elif workload.startswith("aggregate"):
        (
            stream.group_by_key()
            .aggregate(
                initial_totals,
                lambda key, value, totals: (hit(), add_to_totals(totals, value))[1],
                name="card-totals",
            )
            .to_stream()
            .to(sink)
        )
    else:
        (
            stream.peek(lambda key, value: hit())
            .group_by_key()
            .windowed_by(TumblingWindows(size=60_000, grace=0))
            .count(name="card-minute", emit="final" if workload == "windowed-final" else "update")
            .to_stream()
            .map(lambda w, count: (w.key, {"start": w.start, "end": w.end, "value": count}))
            .to(sink)
        )
    return builder.build()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured run, in this process."""
    probe = Probe(spec["records"])
    workload = spec["workload"]
    guarantee = (
        Guarantee.AT_LEAST_ONCE
        if workload in ("stateless", "aggregate-alos")
        else Guarantee.EXACTLY_ONCE
    )
    config = AppConfig(
        app_id=spec["app_id"],
        bootstrap_servers=spec["bootstrap"],
        guarantee=guarantee,
        state_dir=Path(spec["state_dir"]),
    )
    worker = Worker(topology(workload, spec["source"], spec["sink"], probe.hit), config)
    probe.on_target = worker.request_stop
    profiler = cProfile.Profile() if spec.get("profile") else None
    if profiler is not None:
        profiler.enable()
    worker.run()
    if profiler is not None:
        profiler.disable()
        options = argparse.Namespace(workload=workload, records=spec["records"], top=30)
        write_profile(profiler, Path(spec["profile"]), options)
    if probe.count < probe.target:
        msg = f"stopped after {probe.count} of {probe.target} records"
        raise RuntimeError(msg)
    result = probe.result()
    result["cpu_us_per_record"] = result["cpu_s"] / (probe.target - 1) * 1e6
    result["cpu_total_s"] = cpu_seconds()
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def measure(bootstrap: str, options: argparse.Namespace) -> None:
    from streamer.kafka.admin import KafkaAdmin, TopicSpec

    admin = KafkaAdmin(bootstrap, config={"log_level": 3})
    state = Path(tempfile.mkdtemp(prefix="profile-worker-"))

    def topic(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        admin.create_topics([TopicSpec(name, PARTITIONS)])
        return name

    source = topic("prof-in")
    print(f"pre-producing {options.records:,} records ...", flush=True)
    preproduce(bootstrap, source, options.records).flush(10)
    for round_ in range(options.runs):
        for workload in options.workloads.split(","):
            spec = {
                "workload": workload,
                "bootstrap": bootstrap,
                "source": source,
                "sink": topic("prof-out"),
                "app_id": f"prof-{uuid.uuid4().hex[:8]}",
                "records": options.records,
                "state_dir": str(state / uuid.uuid4().hex[:8]),
            }
            if options.profile_dir is not None:
                spec["profile"] = str(options.profile_dir / f"{workload}-{options.records}.txt")
            result = run_child(spec)
            print(
                f"  round {round_ + 1}: {workload:<16} {result['records_per_s']:>9,.0f} rec/s  "
                f"cpu {result['cpu_us_per_record']:5.1f} us/record  "
                f"peak rss {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_worker", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    msg = f"run of {spec['workload']} failed ({proc.returncode}): {proc.stderr[-3000:]}"
    raise RuntimeError(msg)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workloads", default="aggregate,windowed-update", help=f"of {WORKLOADS}")
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--runs", type=int, default=1, help="interleaved rounds")
    p.add_argument("--profile-dir", type=Path, help="write one cProfile report per run here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.child is not None:
        print("RESULT " + json.dumps(child(json.loads(options.child))), flush=True)
        return 0
    from streamer.testing.kafka import LocalKafkaCluster
    from streamer.testing.kafka.node import SERVER_JVM_OPTS

    started = time.perf_counter()
    with LocalKafkaCluster(brokers=1, jvm_opts=SERVER_JVM_OPTS) as cluster:
        measure(cluster.bootstrap_servers, options)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
