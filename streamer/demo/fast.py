"""``streamer demo --fast``: the fraud topology's sustained throughput under exactly-once.

Steps: start a local broker, create the demo's topics and seed the tables. Then, for 1 and
2 worker processes in turn: create an empty input topic for the round, start a group with a
fresh application id reading it, wait until every worker owns partitions, and only then
produce all the transactions (as fast as the producer goes, not at their event time). The
group's committed offsets are sampled every 0.2 s until it has committed every
transaction. Sustained records/s is the transactions committed between the last sample
before progress and the last sample divided by the time between them, so the group's start
(assignment, changelog topic creation) is not counted, and no worker can process the input
alone before the others have joined. Each group is stopped before the next starts; both
rounds read the same transactions.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from streamer.demo.cluster import (
    TRANSACTIONS,
    Lag,
    Say,
    create_topics,
    fraud_topology_path,
    seed_tables,
    start_broker,
    start_workers,
)
from streamer.demo.generator import FraudDataGenerator, GeneratorConfig
from streamer.demo.run import DemoOptions
from streamer.demo.worker_group import WorkerGroup
from streamer.kafka.admin import KafkaAdmin, KafkaAdminError, TopicSpec
from streamer.kafka.clients import produce
from streamer.runtime.config import AppConfig, ErrorPolicy
from streamer.testing.kafka.cluster import QUIET_CLIENT_CONFIG

SAMPLE_INTERVAL = 0.2
DRAIN_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Throughput:
    workers: int
    records: int
    seconds: float
    caught_up: bool

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def run_fast(options: DemoOptions, out: TextIO | None = None) -> list[Throughput]:
    """Measure with 1 and 2 workers (``options.processes`` is ignored); print and return
    the figures. An empty list means a group did not commit everything in time."""
    stream = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    spec = str(fraud_topology_path())
    generator = FraudDataGenerator(
        GeneratorConfig(seed=options.seed, events=options.events, mode=options.mode)
    )
    results: list[Throughput] = []
    with contextlib.ExitStack() as cleanup:
        bootstrap = start_broker(say, cleanup)
        admin = KafkaAdmin(bootstrap, config=QUIET_CLIENT_CONFIG)
        create_topics(say, admin, options.partitions)
        seed_tables(say, bootstrap, generator)
        records = [
            (i.tx["card"].encode(), json.dumps(i.tx).encode())
            for i in generator.transactions(int(time.time() * 1000))
        ]
        for workers in (1, 2):
            results.append(_measure(say, spec, bootstrap, admin, options, workers, records))
    _print(say, results, options)
    return results if all(r.caught_up for r in results) else []


def _measure(
    say: Say,
    spec: str,
    bootstrap: str,
    admin: KafkaAdmin,
    options: DemoOptions,
    count: int,
    records: list[tuple[bytes, bytes]],
) -> Throughput:
    app_id = f"fraud-fast-{count}"
    topic = f"{TRANSACTIONS}-fast-{count}"
    admin.create_topics([TopicSpec(topic, options.partitions)])
    state_dir = Path(tempfile.mkdtemp(prefix="streamer-demo-fast-"))
    config = AppConfig(
        app_id=app_id,
        bootstrap_servers=bootstrap,
        state_dir=state_dir,
        error_policy=ErrorPolicy.DEAD_LETTER,
    )
    env = {"FRAUD_CASE_GAP_MS": str(options.case_gap_ms), "FRAUD_TRANSACTIONS_TOPIC": topic}
    lag = Lag(admin, app_id, topic)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, state_dir, True)
        workers = WorkerGroup(spec, config, count, options.out_dir / "logs-fast" / str(count), env)
        start_workers(say, cleanup, workers)
        began = time.monotonic()
        produce(bootstrap, topic, records)
        say(
            f"    produced {len(records):,} transactions ({options.mode} traffic) "
            f"in {time.monotonic() - began:.1f} s"
        )
        first: tuple[float, int] | None = None
        last = (time.monotonic(), _committed(lag))
        deadline = time.monotonic() + DRAIN_TIMEOUT
        total = options.events
        while last[1] < total and time.monotonic() < deadline:
            time.sleep(SAMPLE_INTERVAL)
            workers.check_alive()
            with contextlib.suppress(KafkaAdminError):
                committed, _end = lag.committed_and_end()
                now = time.monotonic()
                if committed > last[1]:
                    if first is None:
                        first = last
                    last = (now, committed)
        start = first or last
        result = Throughput(count, last[1] - start[1], last[0] - start[0], last[1] >= total)
        if first is None and result.caught_up:
            say(
                f"    {count} worker{'s' if count > 1 else ''}: every transaction was committed "
                "before the first sample: too few to measure (give more --events)"
            )
        else:
            say(
                f"    {count} worker{'s' if count > 1 else ''}: {result.records:,} transactions "
                f"committed in {result.seconds:.1f} s: {result.per_second:,.0f}/s"
            )
    return result


def _committed(lag: Lag) -> int:
    while True:
        with contextlib.suppress(KafkaAdminError):
            return lag.committed_and_end()[0]
        time.sleep(SAMPLE_INTERVAL)


def _print(say: Say, results: list[Throughput], options: DemoOptions) -> None:
    say("")
    say(
        f"==> fraud topology throughput (exactly-once, {options.partitions} partitions, "
        f"{options.events:,} transactions, {options.mode} traffic)"
    )
    for r in results:
        note = "" if r.caught_up else "  (did NOT commit everything in time)"
        if r.caught_up and not r.records:
            note = "  (not measured: too few transactions)"
        plural = "s" if r.workers > 1 else " "
        say(f"  {r.workers} worker{plural}  {r.per_second:>8,.0f} records/s{note}")
    if len(results) == 2 and results[0].per_second > 0:
        say(
            f"  scaling    {results[1].per_second / results[0].per_second:.2f}x from 1 to 2 workers"
        )
