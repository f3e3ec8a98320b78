"""Prometheus metrics of one worker process, served over HTTP.

:class:`PrometheusMetrics` implements :class:`~streamer.runtime.metrics.WorkerMetrics`. The
hot path stays cheap: a batch is counted and timed once (records are grouped per partition
in one pass); what is state rather than an event (restore progress, store sizes, task
counters, aborts, rebalances) is read from the worker's published snapshot at most once per
``refresh_interval`` (1 s); lag and records written come from librdkafka's statistics
(``statistics.interval.ms``, 1 s), which the clients deliver inside their poll calls. All
of it runs on the worker's own thread: the HTTP thread never reads the worker's structures.

Metrics (each worker process has its own registry and endpoint; Prometheus adds ``job`` and
``instance``):

========================================  =========  ==========================================
name                                      type       meaning
========================================  =========  ==========================================
streamer_worker_info                      info       app_id, slot, guarantee
streamer_records_consumed_total           counter    records polled, by topic and partition
streamer_records_produced_total           counter    records sent to Kafka (sinks, repartition,
                                                     changelog, DLQ), by topic and partition
streamer_batch_duration_seconds           histogram  time to process one polled batch
streamer_record_e2e_latency_seconds       histogram  from a record's timestamp to the end of
                                                     its processing; one observation per
                                                     partition per batch (its last record)
streamer_consumer_lag_records             gauge      last stable offset minus position, by topic
                                                     and partition, for assigned partitions
streamer_commit_duration_seconds          histogram  duration of a commit (changelog flush,
                                                     transaction or offset commit, store writes)
streamer_commits_total                    counter    commits (transactions under exactly-once)
streamer_transaction_aborts_total         counter    aborted transactions (rollbacks)
streamer_rebalances_total                 counter    partition assignment changes seen
streamer_tasks                            gauge      tasks owned, by state (running, restoring)
streamer_restore_records_total            counter    changelog records restored
streamer_restore_remaining_records        gauge      changelog records left to restore
streamer_task_restore_records             gauge      records of a task's restore in progress
                                                     (or its last one), by task
streamer_task_restore_remaining_records   gauge      records a task still has to restore
streamer_task_restore_seconds             gauge      seconds a task's restore has run (or
                                                     took), by task
streamer_task_standby_lag_records         gauge      changelog records a standby copy kept here
                                                     is behind, by task
streamer_store_size_bytes                 gauge      estimated size of each store, by task and
                                                     store
streamer_records_skipped_total            counter    records skipped by the skip policy, by task
streamer_records_dead_lettered_total      counter    records sent to the DLQ, by task
streamer_processor_events_total           counter    other per-task counters (late records,
                                                     dropped nulls, ...), by task and event
========================================  =========  ==========================================

The process collector's ``process_*`` metrics (CPU, memory, open files) are served too.
No label holds a key or an offset: topics, partitions, task ids and store names are bounded
by the topology and the partition counts.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter as _Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)

from streamer.errors import ConfigError
from streamer.kafka.types import TP
from streamer.runtime.metrics import WorkerInfo, WorkerSnapshot

if TYPE_CHECKING:
    from streamer.kafka.types import Message

log = logging.getLogger(__name__)

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

SKIPPED = "records-skipped"
DEAD_LETTERED = "records-dead-lettered"


class PrometheusMetrics:
    """The worker's metrics in a Prometheus registry of their own; see the module docstring."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        refresh_interval: float = 1.0,
        statistics_interval_ms: int = 1000,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.refresh_interval = refresh_interval
        self.statistics_interval_ms = statistics_interval_ms
        self._define_flow_metrics(self.registry)
        self._define_state_metrics(self.registry)
        ProcessCollector(registry=self.registry)
        self._assigned: frozenset[TP] = frozenset()
        self._next_refresh = 0.0
        self._consumed: dict[TP, Any] = {}
        self._seen: dict[Any, int] = {}
        self._lag_labels: set[TP] = set()
        self._size_labels: set[tuple[str, str]] = set()
        self._restore_labels: set[str] = set()
        self._standby_labels: set[str] = set()

    def _define_flow_metrics(self, r: CollectorRegistry) -> None:
        """What flows: records in and out, batch and commit times, latency, lag."""
        tp = ["topic", "partition"]
        self.info = Info("streamer_worker", "The worker process", registry=r)
        self.consumed = Counter(
            "streamer_records_consumed", "Records polled from Kafka", tp, registry=r
        )
        self.produced = Counter(
            "streamer_records_produced",
            "Records sent to Kafka (sink, repartition, changelog and DLQ topics)",
            tp,
            registry=r,
        )
        self.batch_duration = Histogram(
            "streamer_batch_duration_seconds",
            "Time to process one polled batch of records",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.e2e_latency = Histogram(
            "streamer_record_e2e_latency_seconds",
            "From a record's timestamp to the end of its processing (last record of each "
            "partition in a batch)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "streamer_consumer_lag_records",
            "Last stable offset minus position of each assigned partition",
            tp,
            registry=r,
        )
        self.commit_duration = Histogram(
            "streamer_commit_duration_seconds",
            "Duration of a commit: changelog flush, transaction or offset commit, store writes",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.commits = Counter(
            "streamer_commits", "Commits (transactions under exactly-once)", registry=r
        )
        self.aborts = Counter(
            "streamer_transaction_aborts", "Aborted transactions (rollbacks)", registry=r
        )

    def _define_state_metrics(self, r: CollectorRegistry) -> None:
        """What is owned: rebalances, tasks, restore progress, stores and task counters."""
        self.rebalances = Counter(
            "streamer_rebalances", "Partition assignment changes seen", registry=r
        )
        self.tasks = Gauge("streamer_tasks", "Tasks owned by this worker", ["state"], registry=r)
        self.restored = Counter(
            "streamer_restore_records", "Changelog records restored into stores", registry=r
        )
        task = ["task"]
        self.task_restored = Gauge(
            "streamer_task_restore_records",
            "Records applied by a task's restore in progress, or its last one",
            task,
            registry=r,
        )
        self.task_restore_remaining = Gauge(
            "streamer_task_restore_remaining_records",
            "Changelog records a task still has to restore",
            task,
            registry=r,
        )
        self.task_restore_seconds = Gauge(
            "streamer_task_restore_seconds",
            "Seconds a task's restore has run, or took",
            task,
            registry=r,
        )
        self.standby_lag = Gauge(
            "streamer_task_standby_lag_records",
            "Changelog records a standby copy kept by this worker is behind",
            task,
            registry=r,
        )
        self.restore_remaining = Gauge(
            "streamer_restore_remaining_records",
            "Changelog records left to restore",
            registry=r,
        )
        self.store_size = Gauge(
            "streamer_store_size_bytes",
            "Estimated size of each state store",
            ["task", "store"],
            registry=r,
        )
        self.skipped = Counter(
            "streamer_records_skipped", "Records skipped by the skip policy", ["task"], registry=r
        )
        self.dead_lettered = Counter(
            "streamer_records_dead_lettered",
            "Records sent to the dead-letter topic",
            ["task"],
            registry=r,
        )
        self.events = Counter(
            "streamer_processor_events",
            "Other per-task counters kept by processing steps",
            ["task", "event"],
            registry=r,
        )

    # --- WorkerMetrics ------------------------------------------------------------------

    def started(self, info: WorkerInfo) -> None:
        self.info.info({"app_id": info.app_id, "slot": info.slot, "guarantee": info.guarantee})
        self.tasks.labels("running").set(0)
        self.tasks.labels("restoring").set(0)
        self._next_refresh = 0.0

    def client_config(self, client: str) -> Mapping[str, Any]:
        callback = self._on_consumer_stats if client == "consumer" else self._on_producer_stats
        return {"statistics.interval.ms": self.statistics_interval_ms, "stats_cb": callback}

    def batch(self, messages: Sequence[Message], seconds: float) -> None:
        self.batch_duration.observe(seconds)
        tps = [(m.topic(), m.partition()) for m in messages]
        counts = _Counter(tps)
        last = dict(zip(tps, messages, strict=True))  # the last message of each partition
        for tp, n in counts.items():
            child = self._consumed.get(tp)
            if child is None:
                child = self._consumed[tp] = self.consumed.labels(tp[0], str(tp[1]))
            child.inc(n)
        now_ms = time.time() * 1000
        for message in last.values():
            timestamp = message.timestamp()[1]
            if timestamp > 0:
                self.e2e_latency.observe(max(0.0, now_ms - timestamp) / 1000)

    def commit(self, seconds: float) -> None:
        self.commit_duration.observe(seconds)
        self.commits.inc()

    def tick(self, snapshot: WorkerSnapshot) -> None:
        self._assigned = snapshot.assigned
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self.refresh_interval
        self.refresh(snapshot)

    # --- state read from the worker's snapshot --------------------------------------------

    def _advance(self, key: Any, total: int, inc: Callable[[float], None]) -> None:
        """Add what ``total`` (a monotonic count kept elsewhere) grew by since last time."""
        delta = total - self._seen.get(key, 0)
        if delta > 0:
            inc(delta)
            self._seen[key] = total

    def refresh(self, snapshot: WorkerSnapshot) -> None:
        """Set restore progress, task states, store sizes and counters from ``snapshot``."""
        self._advance("aborts", snapshot.aborts, self.aborts.inc)
        self._advance("rebalances", snapshot.rebalances, self.rebalances.inc)
        self._advance("restored", snapshot.restored, self.restored.inc)
        self.restore_remaining.set(snapshot.restore_remaining)
        restoring = sum(1 for task in snapshot.tasks if task.restoring)
        self.tasks.labels("running").set(len(snapshot.tasks) - restoring)
        self.tasks.labels("restoring").set(restoring)
        sizes: set[tuple[str, str]] = set()
        for task in snapshot.tasks:
            for name, size in task.store_sizes.items():
                labels = (task.id, name)
                sizes.add(labels)
                self.store_size.labels(*labels).set(size)
        self._refresh_task_restores(snapshot)
        for task_id, lag in snapshot.standby_lags.items():
            self.standby_lag.labels(task_id).set(lag)
        for gone in self._standby_labels - snapshot.standby_lags.keys():
            self.standby_lag.remove(gone)
        self._standby_labels = set(snapshot.standby_lags)
        for labels in self._size_labels - sizes:
            self.store_size.remove(*labels)
        self._size_labels = sizes
        for task_id, counters in snapshot.task_counters.items():
            for event, total in counters.items():
                if event == SKIPPED:
                    inc = self.skipped.labels(task_id).inc
                elif event == DEAD_LETTERED:
                    inc = self.dead_lettered.labels(task_id).inc
                else:
                    inc = self.events.labels(task_id, event).inc
                self._advance(("task", task_id, event), total, inc)

    def _refresh_task_restores(self, snapshot: WorkerSnapshot) -> None:
        """Per owned task: its restore figures; a task no longer owned loses its series."""
        tasks: set[str] = set()
        for task in snapshot.tasks:
            if task.restore is None:
                continue
            tasks.add(task.id)
            self.task_restored.labels(task.id).set(task.restore.restored)
            self.task_restore_remaining.labels(task.id).set(task.restore.remaining)
            self.task_restore_seconds.labels(task.id).set(task.restore.seconds)
        for gone in self._restore_labels - tasks:
            for gauge in (
                self.task_restored,
                self.task_restore_remaining,
                self.task_restore_seconds,
            ):
                gauge.remove(gone)
        self._restore_labels = tasks

    # --- librdkafka statistics (delivered inside the clients' poll calls) ---------------

    def _on_consumer_stats(self, text: str) -> None:
        """Lag of each assigned partition: last stable offset minus the position (the
        offset after the last record handed to the worker, else the committed offset)."""
        try:
            topics = json.loads(text).get("topics", {})
        except ValueError:
            log.debug("unreadable consumer statistics", exc_info=True)
            return
        assigned = self._assigned
        labels: set[TP] = set()
        for topic, data in topics.items():
            for key, p in data.get("partitions", {}).items():
                tp = (topic, int(key))
                if tp not in assigned:
                    continue
                end = int(p.get("ls_offset", -1))
                position = int(p.get("app_offset", -1))
                if position < 0:
                    position = int(p.get("committed_offset", -1))
                if end < 0 or position < 0:
                    continue
                labels.add(tp)
                self.lag.labels(topic, key).set(max(0, end - position))
        for topic, partition in self._lag_labels - labels:
            self.lag.remove(topic, str(partition))
        self._lag_labels = labels

    def _on_producer_stats(self, text: str) -> None:
        """Records sent per partition (``txmsgs``, counted from the producer's start)."""
        try:
            topics = json.loads(text).get("topics", {})
        except ValueError:
            log.debug("unreadable producer statistics", exc_info=True)
            return
        for topic, data in topics.items():
            for key, p in data.get("partitions", {}).items():
                if int(key) < 0:
                    continue  # the unassigned-partition queue
                self._advance(
                    ("produced", topic, key),
                    int(p.get("txmsgs", 0)),
                    self.produced.labels(topic, key).inc,
                )


def serve_metrics(
    port: int, address: str = "0.0.0.0"
) -> tuple[PrometheusMetrics, Callable[[], None]]:
    """Start an HTTP server for a new :class:`PrometheusMetrics` on ``address:port`` (a
    daemon thread; ``/metrics`` and every other path serve the metrics). Returns the metrics
    and a function that stops the server. The ``*_created`` series are turned off for the
    whole process."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = PrometheusMetrics()
    try:
        server, _thread = start_http_server(port, addr=address, registry=metrics.registry)
    except OSError as exc:
        msg = f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return metrics, stop


__all__ = ["PrometheusMetrics", "serve_metrics"]
