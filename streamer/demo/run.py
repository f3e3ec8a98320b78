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
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import streamer
from streamer.demo.generator import FraudDataGenerator, GenerationStats, GeneratorConfig
from streamer.demo.ground_truth import write_ground_truth
from streamer.demo.scoring import Score, percentile, score_alerts
from streamer.demo.world import KINDS
from streamer.errors import StreamerError
from streamer.kafka.admin import KafkaAdmin, KafkaAdminError, TopicSpec
from streamer.kafka.clients import TopicTail, produce, produce_paced
from streamer.runtime.config import AppConfig, ErrorPolicy
from streamer.runtime.supervisor import config_to_json
from streamer.testing.kafka import LocalKafkaCluster
from streamer.testing.kafka.cluster import QUIET_CLIENT_CONFIG

TRANSACTIONS = "transactions"
ALERTS = "alerts"
BLOCKED_MERCHANTS = "blocked-merchants"
CARD_LIMITS = "card-limits"
INVALID = "transactions-invalid"
APP_ID = "fraud-demo"


def fraud_topology_path() -> Path:
    """``topologies/fraud.py`` of the source checkout this package runs from."""
    path = Path(streamer.__file__).resolve().parent.parent / "topologies" / "fraud.py"
    if not path.is_file():
        msg = f"the fraud topology is not at {path}: run the demo from a source checkout"
        raise StreamerError(msg)
    return path


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


# --- worker processes ---------------------------------------------------------------------------


class WorkerGroup:
    """``count`` ``streamer.runtime.child`` processes, logging to ``log_dir``."""

    def __init__(self, spec: str, config: AppConfig, count: int, log_dir: Path) -> None:
        self.spec = spec
        self.config = config
        self.count = count
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def log_path(self, instance: int) -> Path:
        return self.log_dir / f"worker-{instance}.log"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for instance in range(self.count):
            config = dataclasses.replace(self.config, instance=instance)
            with self.log_path(instance).open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "streamer.runtime.child",
                            self.spec,
                            config_to_json(config),
                            "consumer",
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )

    def all_assigned(self) -> bool:
        """True once every worker's log says it was assigned partitions."""
        for instance in range(len(self.processes)):
            path = self.log_path(instance)
            text = path.read_text(errors="replace") if path.exists() else ""
            if not re.search(r"assigned [1-9][0-9]* partitions", text):
                return False
        return True

    def check_alive(self) -> None:
        for instance, process in enumerate(self.processes):
            code = process.poll()
            if code is not None:
                tail = self.log_path(instance).read_text(errors="replace")[-3000:]
                msg = f"worker {instance} exited with code {code}; its log ends with:\n{tail}"
                raise StreamerError(msg)

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM every worker (they commit and leave the group), SIGKILL stragglers."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for process in self.processes:
            try:
                codes.append(process.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes.append(None)
        return codes


# --- alerts ------------------------------------------------------------------------------------


@dataclass
class ReceivedAlert:
    alert: dict[str, Any]
    latency_ms: int
    """Arrival here minus the transaction's ``ts``."""


class AlertCollector(threading.Thread):
    """Reads the alerts topic (committed alerts only) and timestamps each arrival."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(name="alert-collector", daemon=True)
        self.tail = TopicTail(bootstrap, topic)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.received: list[ReceivedAlert] = []
        self.last_arrival = time.monotonic()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                records = self.tail.poll(max_records=1000, timeout=0.1)
                now_ms = int(time.time() * 1000)
                if not records:
                    continue
                batch = []
                for record in records:
                    if record.value is None:
                        continue
                    alert = json.loads(record.value)
                    batch.append(ReceivedAlert(alert, now_ms - int(alert["tx"]["ts"])))
                with self.lock:
                    self.received.extend(batch)
                    self.last_arrival = time.monotonic()
        except BaseException as exc:
            self.error = exc
        finally:
            self.tail.close()

    def snapshot(self) -> list[ReceivedAlert]:
        with self.lock:
            return list(self.received)

    def quiet_for(self) -> float:
        with self.lock:
            return time.monotonic() - self.last_arrival

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


# --- the producer thread ----------------------------------------------------------------------


class TransactionProducer(threading.Thread):
    """Generates the transactions and produces each at its event time."""

    def __init__(
        self, bootstrap: str, generator: FraudDataGenerator, start_ms: int, topic: str
    ) -> None:
        super().__init__(name="transaction-producer", daemon=True)
        self.bootstrap = bootstrap
        self.generator = generator
        self.start_ms = start_ms
        self.topic = topic
        self.stats = GenerationStats()
        self.labels: dict[str, str | None] = {}
        self.sent = 0
        self.finished_at: float | None = None
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def _records(self) -> Iterator[tuple[int | None, bytes, bytes]]:
        for item in self.generator.transactions(self.start_ms, self.stats):
            tx = item.tx
            self.labels[tx["id"]] = item.kind
            yield tx["ts"], tx["card"].encode(), json.dumps(tx).encode()

    def stop(self) -> None:
        self.stopping.set()
        self.join(40)

    def _progress(self, sent: int) -> None:
        self.sent = sent

    def run(self) -> None:
        try:
            produce_paced(
                self.bootstrap,
                self.topic,
                self._records(),
                stop=self.stopping,
                on_progress=self._progress,
                progress_interval=0.2,
            )
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished_at = time.monotonic()


# --- the run -----------------------------------------------------------------------------------


@dataclass
class DemoResult:
    produced: int
    processed: int
    produce_seconds: float
    process_seconds: float
    score: Score
    latencies_ms: list[int]
    stats: GenerationStats
    peak_processed_per_second: float
    max_lag: int
    caught_up: bool
    worker_exit_codes: list[int | None] = field(default_factory=list)


class _Lag:
    def __init__(self, admin: KafkaAdmin) -> None:
        self.admin = admin

    def committed_and_end(self) -> tuple[int, int]:
        committed = self.admin.group_offsets(APP_ID, TRANSACTIONS)
        end = self.admin.end_offsets(TRANSACTIONS)
        return sum(committed.values()), sum(end.values())


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
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("ground-truth.jsonl", "alerts.jsonl"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "logs", ignore_errors=True)
    state_dir = Path(tempfile.mkdtemp(prefix="streamer-demo-state-"))
    generator = FraudDataGenerator(
        GeneratorConfig(seed=options.seed, events=options.events, rate=options.rate)
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, state_dir, True)
        say("==> starting a local Kafka broker (KRaft, one node)")
        began = time.monotonic()
        cluster = LocalKafkaCluster(brokers=1)
        cluster.start()
        cleanup.callback(cluster.stop)
        bootstrap = cluster.bootstrap_servers
        say(f"    ready in {time.monotonic() - began:.1f} s at {bootstrap}")

        admin = KafkaAdmin(bootstrap, config=QUIET_CLIENT_CONFIG)
        compacted = {"cleanup.policy": "compact"}
        admin.create_topics(
            [
                TopicSpec(TRANSACTIONS, options.partitions),
                TopicSpec(ALERTS, options.partitions),
                TopicSpec(INVALID, 1),
                TopicSpec(BLOCKED_MERCHANTS, 1, config=compacted),
                TopicSpec(CARD_LIMITS, 1, config=compacted),
            ]
        )
        say(
            f"==> topics: {TRANSACTIONS} and {ALERTS} ({options.partitions} partitions), "
            f"{BLOCKED_MERCHANTS} and {CARD_LIMITS} (compacted), {INVALID}"
        )
        produce(
            bootstrap,
            BLOCKED_MERCHANTS,
            ((m.encode(), json.dumps(r).encode()) for m, r in generator.blocked_merchants.items()),
        )
        produce(
            bootstrap,
            CARD_LIMITS,
            ((c.encode(), json.dumps(r).encode()) for c, r in generator.card_limits()),
        )
        say(
            f"    seeded {len(generator.blocked_merchants)} blocked merchants and "
            f"{len(generator.cards):,} card limits"
        )

        config = AppConfig(
            app_id=APP_ID,
            bootstrap_servers=bootstrap,
            state_dir=state_dir,
            error_policy=ErrorPolicy.DEAD_LETTER,
        )
        workers = WorkerGroup(spec, config, options.processes, out_dir / "logs")
        say(
            f"==> starting {options.processes} worker processes running "
            f"{os.path.relpath(spec)} ({config.guarantee.value})"
        )
        workers.start()
        codes: list[int | None] = []

        def stop_workers() -> None:
            codes.extend(workers.stop())

        cleanup.callback(stop_workers)
        began = time.monotonic()
        while not workers.all_assigned():
            workers.check_alive()
            if time.monotonic() - began > 90:
                msg = f"the workers got no partitions within 90 s; see {workers.log_dir}"
                raise StreamerError(msg)
            time.sleep(0.2)
        say(f"    every worker owns partitions after {time.monotonic() - began:.1f} s")

        collector = AlertCollector(bootstrap, ALERTS)
        collector.start()
        cleanup.callback(collector.stop)
        start_ms = int(time.time() * 1000) + 500
        producer = TransactionProducer(bootstrap, generator, start_ms, TRANSACTIONS)
        rates = generator.config.pattern_rates
        patterns = ", ".join(f"{rates.get(k, 0.0):g} {k}" for k in KINDS)
        say(
            f"==> producing {options.events:,} transactions at {options.rate:,.0f}/s, "
            f"seed {options.seed}, with fraud patterns per 1,000: {patterns}"
        )
        producer.start()
        cleanup.callback(producer.stop)
        result = _watch(options, say, workers, collector, producer, _Lag(admin))
        say("==> stopping the workers, the alert reader and the broker")
    result.worker_exit_codes = codes
    received = collector.snapshot()
    truth = producer.labels
    write_ground_truth(out_dir / "ground-truth.jsonl", truth.items())
    with (out_dir / "alerts.jsonl").open("w") as file:
        for item in received:
            file.write(json.dumps({**item.alert, "latency_ms": item.latency_ms}) + "\n")
    result.score = score_alerts(truth, (item.alert for item in received))
    result.latencies_ms = sorted(item.latency_ms for item in received)
    _summary(say, options, result, out_dir)
    return result


def _watch(
    options: DemoOptions,
    say: Callable[[str], None],
    workers: WorkerGroup,
    collector: AlertCollector,
    producer: TransactionProducer,
    lag: _Lag,
) -> DemoResult:
    """Print alerts as they arrive (at most ``alert_lines_per_second``) and progress every
    second, until every produced transaction is processed (or the drain times out)."""
    began = time.monotonic()
    shown = hidden = 0
    budget = options.alert_lines_per_second
    last_tick = began
    processed = last_processed = end = 0
    peak = 0.0
    max_lag = 0
    first_progress: float | None = None
    last_progress = began
    caught_up = False
    drain_deadline: float | None = None
    while True:
        time.sleep(0.1)
        workers.check_alive()
        if producer.error is not None:
            msg = f"producing transactions failed: {producer.error}"
            raise StreamerError(msg)
        if collector.error is not None:
            msg = f"reading alerts failed: {collector.error}"
            raise StreamerError(msg)
        received = collector.snapshot()
        for item in received[shown:]:
            if budget > 0:
                say(_fmt_alert(item.alert, item.latency_ms))
                budget -= 1
            else:
                hidden += 1
        shown = len(received)
        now = time.monotonic()
        if now - last_tick < 1.0:
            continue
        budget = options.alert_lines_per_second
        with contextlib.suppress(KafkaAdminError):
            processed, end = lag.committed_and_end()
        rate = (processed - last_processed) / (now - last_tick)
        if processed > last_processed:
            if first_progress is None:
                first_progress = last_tick
            last_progress = now
        peak = max(peak, rate)
        max_lag = max(max_lag, end - processed)
        last_processed, last_tick = processed, now
        note = f" ({hidden} more not shown)" if hidden else ""
        hidden = 0
        say(
            f"  [{now - began:3.0f}s] sent {producer.sent:,}/{options.events:,} | "
            f"processed {processed:,} ({rate:,.0f}/s) | lag {end - processed:,} | "
            f"alerts {len(received):,}{note}"
        )
        if producer.finished_at is None:
            continue
        if drain_deadline is None:
            say("==> all transactions sent; waiting for the workers to catch up")
            drain_deadline = now + options.drain_timeout
        if processed >= producer.sent and collector.quiet_for() > 1.0:
            caught_up = True
            break
        if now > drain_deadline:
            say(f"!!  the workers did not catch up within {options.drain_timeout:.0f} s")
            break
    return DemoResult(
        produced=producer.sent,
        processed=processed,
        produce_seconds=(producer.finished_at or now) - began,
        process_seconds=max(1e-9, last_progress - (first_progress or began)),
        score=score_alerts({}, ()),
        latencies_ms=[],
        stats=producer.stats,
        peak_processed_per_second=peak,
        max_lag=max_lag,
        caught_up=caught_up,
    )


def _summary(say: Callable[[str], None], options: DemoOptions, r: DemoResult, out: Path) -> None:
    s = r.score
    say("")
    say(f"==> summary (seed {options.seed}, {options.processes} workers, exactly-once)")
    say(
        f"  transactions  {r.produced:,} sent in {r.produce_seconds:.1f} s "
        f"({r.produced / max(r.produce_seconds, 1e-9):,.0f}/s); {r.processed:,} processed"
        + ("" if r.caught_up else " (the workers had NOT caught up)")
    )
    say(
        f"  throughput    {r.processed / r.process_seconds:,.0f}/s processed on average, "
        f"{r.peak_processed_per_second:,.0f}/s in the busiest second; "
        f"consumer lag at most {r.max_lag:,} transactions"
    )
    by_reason = " | ".join(f"{k} {s.reasons[k]}" for k in KINDS if s.reasons[k])
    say(
        f"  alerts        {s.alerts:,} on {s.alerted_transactions:,} transactions, "
        f"{s.duplicate_alerts} duplicates, {s.unknown_transactions} for unknown transactions"
    )
    say(f"    by reason   {by_reason or 'none'}")
    multi = sum(n for combo, n in s.combinations.items() if len(combo) > 1)
    if multi:
        say(f"    {multi} alerts carry more than one reason")
    say("")
    say(
        f"  {'pattern':<18} {'injected':>8} {'labelled':>8} {'alerted':>8} "
        f"{'missed':>7} {'false':>6} {'precision':>9} {'recall':>7}"
    )
    for kind in KINDS:
        p = s.patterns[kind]
        precision = f"{p.precision:.3f}" if p.alerted else "-"
        recall = f"{p.recall:.3f}" if p.labelled else "-"
        say(
            f"  {kind:<18} {r.stats.instances[kind]:>8} {p.labelled:>8} {p.alerted:>8} "
            f"{p.false_negatives:>7} {p.false_positives:>6} {precision:>9} {recall:>7}"
        )
    if r.stats.pending:
        waiting = ", ".join(f"{k} {n}" for k, n in r.stats.pending.items())
        say(f"  not injected: no eligible card before the end ({waiting})")
    say("  (labelled: transactions a correct rule must flag; see streamer/demo/generator.py)")
    say("")
    lat = r.latencies_ms
    if lat:
        say(
            f"  latency       transaction ts -> alert read here, {len(lat):,} alerts: "
            f"p50 {percentile(lat, 50):,.0f} ms, p95 {percentile(lat, 95):,.0f} ms, "
            f"p99 {percentile(lat, 99):,.0f} ms, max {lat[-1]:,} ms"
        )
    else:
        say("  latency       no alerts, no latency to report")
    say(f"  files         {out}/ground-truth.jsonl, {out}/alerts.jsonl, {out}/logs/")
    if any(code not in (0, None) for code in r.worker_exit_codes) or None in r.worker_exit_codes:
        say(f"  workers       exit codes {r.worker_exit_codes} (see {out}/logs/)")


__all__ = ["DemoOptions", "DemoResult", "WorkerGroup", "fraud_topology_path", "run_demo"]
