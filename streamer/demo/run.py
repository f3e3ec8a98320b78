"""The fraud-detection demo: a local broker, the fraud topology on a worker group, live alerts.

Steps: start a one-node Kafka (:class:`~streamer.testing.kafka.LocalKafkaCluster`); create
``transactions``, ``alerts`` and the compacted ``blocked-merchants`` and ``card-limits``
topics; seed the two tables; start a group of worker processes running
``topologies/fraud.py`` (exactly-once); produce the generator's transactions in real time,
each at its event time; print alerts as they arrive, with throughput and consumer lag every
second; wait until the workers have committed every transaction; stop everything; score the
alerts against the ground truth and report the latency from each transaction's timestamp to
its alert's arrival here.

Everything started is stopped on the way out, including on errors and Ctrl-C. The ground
truth, the alerts received and the worker logs are kept in ``out_dir``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from streamer.demo.cluster import (
    ALERTS,
    APP_ID,
    CASES,
    RISK_SCORES,
    TRANSACTIONS,
    Lag,
    Say,
    create_topics,
    fraud_topology_path,
    seed_tables,
    start_broker,
    start_workers,
)
from streamer.demo.console import console_port, stay_up
from streamer.demo.detection import latest_cases, measure, truth_from_rows
from streamer.demo.generator import FraudDataGenerator, GeneratorConfig
from streamer.demo.ground_truth import write_ground_truth
from streamer.demo.scoring import score_alerts
from streamer.demo.summary import DemoResult, print_summary
from streamer.demo.traffic import Received, TopicCollector, TransactionProducer, latency_ms
from streamer.demo.worker_group import WorkerGroup
from streamer.demo.world import KINDS, LEGIT_KINDS, REALISTIC
from streamer.errors import StreamerError
from streamer.kafka.admin import KafkaAdmin, KafkaAdminError
from streamer.runtime.config import AppConfig, ErrorPolicy
from streamer.testing.kafka.cluster import QUIET_CLIENT_CONFIG


@dataclass(frozen=True)
class DemoOptions:
    events: int = 25_000
    rate: float = 500.0
    seed: int = 7
    processes: int = 2
    partitions: int = 4
    out_dir: Path = Path("var/demo")
    alert_lines_per_second: int = 5
    """Alerts printed per second at most (the others are counted); 0 prints none."""
    drain_timeout: float = 120.0
    mode: str = REALISTIC
    """``realistic`` (legitimate traffic that overlaps with fraud) or ``conformance``."""
    case_gap_ms: int = 30_000
    """The topology's case gap (``FRAUD_CASE_GAP_MS``), and the incident gap of the
    attack-level precision."""
    http_port: int | None = None
    """The console of worker ``i`` is on this port plus ``i`` (others when taken); None:
    no console (``streamer demo`` asks for 8080)."""
    console: bool = False
    """Keep running after the traffic until Ctrl-C, with the console up."""


# --- the run -----------------------------------------------------------------------------------


def _fmt_alert(alert: dict[str, Any], latency_ms: int) -> str:
    tx = alert["tx"]
    reasons = ",".join(alert["reasons"])
    amount = f"{tx['amount']:,.2f} {tx['currency']}"
    return (
        f"  ALERT {alert['score']:.2f}  {reasons:<34} {tx['card']}  {tx['id']}  "
        f"{amount:>14}  {tx['country']}  {tx['merchant']}  +{latency_ms} ms"
    )


def run_demo(options: DemoOptions, out: TextIO | None = None) -> DemoResult:
    """Run the demo; see the module docstring. Prints to ``out`` (default stdout)."""
    stream = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    spec = str(fraud_topology_path())
    out_dir = options.out_dir
    _clear_outputs(out_dir)
    state_dir = Path(tempfile.mkdtemp(prefix="streamer-demo-state-"))
    generator = FraudDataGenerator(
        GeneratorConfig(
            seed=options.seed, events=options.events, rate=options.rate, mode=options.mode
        )
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, state_dir, True)
        bootstrap = start_broker(say, cleanup)
        admin = KafkaAdmin(bootstrap, config=QUIET_CLIENT_CONFIG)
        create_topics(say, admin, options.partitions)
        seed_tables(say, bootstrap, generator)
        config = AppConfig(
            app_id=APP_ID,
            bootstrap_servers=bootstrap,
            state_dir=state_dir,
            error_policy=ErrorPolicy.DEAD_LETTER,
        )
        env = {"FRAUD_CASE_GAP_MS": str(options.case_gap_ms)}
        port = (
            None
            if options.http_port is None
            else console_port(options.processes, options.http_port)
        )
        workers = WorkerGroup(
            spec, config, options.processes, out_dir / "logs", env=env, http_port=port
        )
        codes = start_workers(say, cleanup, workers)
        url = None if port is None else f"http://127.0.0.1:{port}/"
        if options.http_port is not None:
            say(f"==> console: {url}" if url else "==> no console: pip install 'streamer[query]'")
        collectors = {
            topic: TopicCollector(bootstrap, topic) for topic in (ALERTS, RISK_SCORES, CASES)
        }
        for collector in collectors.values():
            collector.start()
            cleanup.callback(collector.stop)
        producer = _start_producer(say, cleanup, options, bootstrap, generator)
        result = _watch(options, say, workers, collectors, producer, Lag(admin))
        if options.console and url is not None:
            stay_up(say, url)
        say("==> stopping the workers, the readers and the broker")
    result.worker_exit_codes = codes
    _report(options, say, result, producer, {t: c.snapshot() for t, c in collectors.items()})
    return result


def _report(
    options: DemoOptions,
    say: Say,
    result: DemoResult,
    producer: TransactionProducer,
    received: dict[str, list[Received]],
) -> None:
    """Write the output files, measure the run against the ground truth, print the summary."""
    out_dir = options.out_dir
    alerts, risks = received[ALERTS], [r.value for r in received[RISK_SCORES]]
    cases = latest_cases(r.value for r in received[CASES])
    rows = list(producer.truth.values())
    write_ground_truth(out_dir / "ground-truth.jsonl", rows)
    _write_lines(
        out_dir / "alerts.jsonl", ({**a.value, "latency_ms": latency_ms(a)} for a in alerts)
    )
    _write_lines(out_dir / "risk-scores.jsonl", risks)
    _write_lines(out_dir / "cases.jsonl", cases)
    truth = truth_from_rows(rows)
    result.score = score_alerts({r["id"]: r["kind"] for r in rows}, (a.value for a in alerts))
    result.latencies_ms = sorted(latency_ms(a) for a in alerts)
    result.detection = measure(
        truth,
        [(a.value, a.arrived_ms) for a in alerts],
        risks,
        cases,
        gap_ms=options.case_gap_ms,
    )
    print_summary(
        say, result, out_dir, seed=options.seed, processes=options.processes, mode=options.mode
    )


def _write_lines(path: Path, values: Iterable[Any]) -> None:
    with path.open("w") as file:
        for value in values:
            file.write(json.dumps(value) + "\n")


def _clear_outputs(out_dir: Path) -> None:
    """Create ``out_dir`` and remove what an earlier run left in it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("ground-truth.jsonl", "alerts.jsonl", "risk-scores.jsonl", "cases.jsonl"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "logs", ignore_errors=True)


def _start_producer(
    say: Say,
    cleanup: contextlib.ExitStack,
    options: DemoOptions,
    bootstrap: str,
    generator: FraudDataGenerator,
) -> TransactionProducer:
    """Start producing the transactions in real time, from half a second from now."""
    start_ms = int(time.time() * 1000) + 500
    producer = TransactionProducer(bootstrap, generator, start_ms, TRANSACTIONS)
    rates = generator.config.pattern_rates
    patterns = ", ".join(f"{rates.get(k, 0.0):g} {k}" for k in KINDS)
    say(
        f"==> producing {options.events:,} transactions at {options.rate:,.0f}/s, "
        f"seed {options.seed}, {options.mode} traffic, attacks per 1,000: {patterns}"
    )
    if generator.realistic:
        legit = generator.config.legit_rates
        episodes = ", ".join(f"{legit.get(k, 0.0):g} {k}" for k in LEGIT_KINDS)
        say(f"    legitimate look-alike episodes per 1,000: {episodes}")
    producer.start()
    cleanup.callback(producer.stop)
    return producer


# --- watching the run --------------------------------------------------------------------------


def _watch(
    options: DemoOptions,
    say: Say,
    workers: WorkerGroup,
    collectors: dict[str, TopicCollector],
    producer: TransactionProducer,
    lag: Lag,
) -> DemoResult:
    """Print alerts as they arrive (at most ``alert_lines_per_second``) and progress every
    second, until every produced transaction is processed (or the drain times out)."""
    collector = collectors[ALERTS]
    progress = _Progress(options, say, collector, producer, lag)
    drain_deadline: float | None = None
    while True:
        time.sleep(0.1)
        _check_running(workers, collectors, producer)
        progress.show_new_alerts()
        now = time.monotonic()
        if now - progress.last_tick < 1.0:
            continue
        progress.tick(now)
        if producer.finished_at is None:
            continue
        if drain_deadline is None:
            say("==> all transactions sent; waiting for the workers to catch up")
            drain_deadline = now + options.drain_timeout
        if progress.processed >= producer.sent and collector.quiet_for() > 1.0:
            progress.caught_up = True
            break
        if now > drain_deadline:
            say(f"!!  the workers did not catch up within {options.drain_timeout:.0f} s")
            break
    return progress.result(now)


def _check_running(
    workers: WorkerGroup, collectors: dict[str, TopicCollector], producer: TransactionProducer
) -> None:
    """Raise :class:`StreamerError` if a worker died or a background thread failed."""
    workers.check_alive()
    if producer.error is not None:
        msg = f"producing transactions failed: {producer.error}"
        raise StreamerError(msg)
    for topic, collector in collectors.items():
        if collector.error is not None:
            msg = f"reading {topic} failed: {collector.error}"
            raise StreamerError(msg)


class _Progress:
    """The watch loop's counters: alerts shown this second, and the group's committed
    progress, sampled once a second (``tick``)."""

    def __init__(
        self,
        options: DemoOptions,
        say: Say,
        collector: TopicCollector,
        producer: TransactionProducer,
        lag: Lag,
    ) -> None:
        self.options = options
        self.say = say
        self.collector = collector
        self.producer = producer
        self.lag = lag
        self.began = self.last_tick = self.last_progress = time.monotonic()
        self.first_progress: float | None = None
        self.shown = self.hidden = 0
        self.budget = options.alert_lines_per_second
        self.processed = self.last_processed = self.end = 0
        self.peak = 0.0
        self.max_lag = 0
        self.caught_up = False

    def show_new_alerts(self) -> None:
        """Print the alerts that arrived since the last call, within this second's budget;
        count the others as hidden."""
        received = self.collector.snapshot()
        for item in received[self.shown :]:
            if self.budget > 0:
                self.say(_fmt_alert(item.value, latency_ms(item)))
                self.budget -= 1
            else:
                self.hidden += 1
        self.shown = len(received)

    def tick(self, now: float) -> None:
        """Sample the committed offsets and print one progress line."""
        self.budget = self.options.alert_lines_per_second
        with contextlib.suppress(KafkaAdminError):
            self.processed, self.end = self.lag.committed_and_end()
        rate = (self.processed - self.last_processed) / (now - self.last_tick)
        if self.processed > self.last_processed:
            if self.first_progress is None:
                self.first_progress = self.last_tick
            self.last_progress = now
        self.peak = max(self.peak, rate)
        self.max_lag = max(self.max_lag, self.end - self.processed)
        self.last_processed, self.last_tick = self.processed, now
        note = f" ({self.hidden} more not shown)" if self.hidden else ""
        self.hidden = 0
        self.say(
            f"  [{now - self.began:3.0f}s] sent {self.producer.sent:,}/{self.options.events:,} | "
            f"processed {self.processed:,} ({rate:,.0f}/s) | lag {self.end - self.processed:,} | "
            f"alerts {self.shown:,}{note}"
        )

    def result(self, now: float) -> DemoResult:
        return DemoResult(
            produced=self.producer.sent,
            processed=self.processed,
            produce_seconds=(self.producer.finished_at or now) - self.began,
            process_seconds=max(1e-9, self.last_progress - (self.first_progress or self.began)),
            score=score_alerts({}, ()),
            latencies_ms=[],
            stats=self.producer.stats,
            peak_processed_per_second=self.peak,
            max_lag=self.max_lag,
            caught_up=self.caught_up,
        )


__all__ = ["APP_ID", "DemoOptions", "DemoResult", "WorkerGroup", "fraud_topology_path", "run_demo"]
