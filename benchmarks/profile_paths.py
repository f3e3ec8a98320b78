"""The engine's hot paths without Kafka: tasks over RocksDB, fed pre-encoded records.

    python -m benchmarks.profile_paths --workload windowed-update --records 300000
    python -m benchmarks.profile_paths --workload aggregate --profile out.txt

The throughput suite measures a worker end to end, where the consumer, the producer and the
broker share the CPU with the engine. This script measures only what the engine does per
record: it builds the worker's :class:`~streamer.runtime.task.Task` for each of
:data:`PARTITIONS` partitions over real RocksDB stores, feeds them the suite's records
(already encoded, partitioned as the producer would), and commits as the worker does every
``--commit-every`` records: the changelog records go to a sink that only counts them, then
the write caches are applied to RocksDB. So the CPU per record it reports is decode, user
function, store reads and writes, the write cache, encode and the commit's store work, and
nothing of librdkafka's.

It prints CPU microseconds per record for each ``--segment`` records, so a cost that grows
with the run shows as a rising column, and with ``--profile`` writes a cProfile text report
(top functions by own time and by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.apps import WORKLOADS, streamer_topology
from benchmarks.common import KEYS, card, cpu_seconds, transaction
from streamer import StreamsBuilder, Topology, TumblingWindows
from streamer.partitioner import partition_for_key
from streamer.runtime.task import Task
from streamer.state import open_store
from streamer.testing.driver import ManualClock

PARTITIONS = 8
SOURCE, SINK = "in", "out"


def windowed_update_topology() -> Topology:
    """The tumbling one-minute count per card, every update forwarded (Kafka Streams with
    ``statestore.cache.max.bytes=0`` forwards each update too)."""
    builder = StreamsBuilder()
    (
        builder.stream(SOURCE)
        .group_by_key()
        .windowed_by(TumblingWindows(size=60_000, grace=0))
        .count(name="card-minute")
        .to_stream()
        .map(lambda w, count: (w.key, {"start": w.start, "end": w.end, "value": count}))
        .to(SINK)
    )
    return builder.build()


def topology_of(workload: str) -> Topology:
    if workload == "windowed-update":
        return windowed_update_topology()
    if workload == "windowed-final":
        return streamer_topology("windowed", SOURCE, SINK)
    return streamer_topology(workload, SOURCE, SINK)


class CountingSink:
    """A RecordSink that keeps only counts (what a producer would be handed)."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int,
        headers: Any = (),
        partition: int | None = None,
    ) -> None:
        self.records += 1
        self.bytes += len(value or b"")


def records(count: int) -> list[tuple[int, bytes, bytes, int]]:
    """``(partition, key, value, timestamp)`` of the suite's records, 1 ms apart."""
    base = int(time.time() * 1000) - count
    by_key = {n: partition_for_key(card(n), PARTITIONS) for n in range(KEYS)}
    return [(by_key[n % KEYS], card(n), transaction(n, base + n), base + n) for n in range(count)]


def run(options: argparse.Namespace) -> None:
    topology = topology_of(options.workload)
    state_dir = Path(tempfile.mkdtemp(prefix="profile-paths-"))
    sink, clock = CountingSink(), ManualClock(int(time.time() * 1000))
    tasks = [
        Task(
            topology,
            topology.subtopologies[0],
            p,
            app_id="profile",
            open_store=lambda name, p=p: open_store("rocksdb", name, state_dir / f"{p}" / name),
            sink=sink,
            clock=clock,
        )
        for p in range(PARTITIONS)
    ]
    inputs = records(options.records)
    profiler = cProfile.Profile() if options.profile else None
    print(f"{options.workload}: {options.records:,} records, commit every {options.commit_every}")
    print(f"{'records':>10} {'cpu us/rec':>11} {'wall us/rec':>12}")
    segment_cpu, segment_wall = cpu_seconds(), time.perf_counter()
    total_cpu, total_wall = segment_cpu, segment_wall
    if profiler is not None:
        profiler.enable()
    for n, (partition, key, value, ts) in enumerate(inputs, 1):
        tasks[partition].process(SOURCE, key, value, ts, n)
        if n % options.commit_every == 0:
            commit(tasks)
        if n % options.segment == 0:
            cpu, wall = cpu_seconds(), time.perf_counter()
            per_cpu = (cpu - segment_cpu) / options.segment * 1e6
            per_wall = (wall - segment_wall) / options.segment * 1e6
            print(f"{n:>10,} {per_cpu:>11.1f} {per_wall:>12.1f}", flush=True)
            segment_cpu, segment_wall = cpu, wall
    commit(tasks)
    if profiler is not None:
        profiler.disable()
    cpu, wall = cpu_seconds() - total_cpu, time.perf_counter() - total_wall
    print(
        f"total: {cpu / options.records * 1e6:.1f} us CPU per record, "
        f"{options.records / wall:,.0f} records/s; {sink.records:,} records sent"
    )
    for task in tasks:
        task.close()
    shutil.rmtree(state_dir, ignore_errors=True)
    if profiler is not None:
        write_profile(profiler, Path(options.profile), options)


def commit(tasks: list[Task]) -> None:
    """The worker's commit, minus Kafka: changelog records out, then the stores applied."""
    for task in tasks:
        task.flush_changelog()
    for task in tasks:
        task.commit_stores()


def write_profile(profiler: cProfile.Profile, path: Path, options: argparse.Namespace) -> None:
    out = io.StringIO()
    out.write(f"# {options.workload}, {options.records:,} records, cProfile\n")
    for order in ("tottime", "cumulative"):
        out.write(f"\n## by {order}\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(options.top)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue())
    print(f"profile written to {path}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_paths",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choices = [w for w in WORKLOADS if w != "windowed"] + ["windowed-update", "windowed-final"]
    p.add_argument("--workload", choices=choices, default="windowed-update")
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--commit-every", type=int, default=2_000, help="records between commits")
    p.add_argument("--segment", type=int, default=100_000, help="records per printed line")
    p.add_argument("--profile", help="write a cProfile text report to this file")
    p.add_argument("--top", type=int, default=25, help="functions per profile table")
    return p


def main(argv: list[str] | None = None) -> int:
    run(parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
