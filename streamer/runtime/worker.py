"""The worker: one process, one consumer-group member, one task per owned partition.

Loop, one iteration at a time on one thread:

1. poll the group consumer for a batch (rebalance callbacks run inside this call);
2. feed each record to the task that owns its partition;
3. advance restores and global tables by one batch each (never blocking);
4. fire wall-clock punctuators;
5. every ``commit_interval``, commit.

Commit order (see :mod:`streamer.runtime.task`): flush each task's write cache to its
changelog; then, under exactly-once, add the consumed offsets to the transaction and commit
it, or under at-least-once, flush the producer and commit offsets synchronously; then apply
the cached writes to the local stores; then (at-least-once) write checkpoints.

Because local stores only ever receive committed writes, an aborted transaction is undone
by dropping the write caches, recreating the tasks from their stores and rewinding the
consumer to the committed offsets: no restore is needed.

Assignment uses Kafka's consumer group protocol (KIP-848) with the broker-side ``range``
assignor: assignments change incrementally (partitions that stay keep processing through a
rebalance) and equal partition numbers of co-partitioned topics go to the same member, which
joins need. ``group_protocol="classic"`` switches to the classic protocol with the
cooperative-sticky assignor, which does not co-locate partitions across topics.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.errors import StreamerError
from streamer.kafka.admin import KafkaAdmin
from streamer.kafka.runtime_clients import (
    TP,
    GroupConsumer,
    KafkaRuntimeError,
    Message,
    OutputProducer,
    RestoreConsumer,
)
from streamer.processors.api import Headers, TaskCounters
from streamer.runtime.client_config import (
    group_consumer_config,
    producer_config,
    restore_consumer_config,
)
from streamer.runtime.config import AppConfig
from streamer.runtime.global_tables import GlobalTables
from streamer.runtime.metrics import NoopMetrics, WorkerMetrics
from streamer.runtime.purge import RepartitionPurger
from streamer.runtime.restore import StateRestorer
from streamer.runtime.slots import (
    TaskSlot,
    WallClock,
    decode_offset_metadata,
    describe_partitions,
    encode_offset_metadata,
    open_locked,
)
from streamer.runtime.task import Task, TaskId
from streamer.runtime.topics import prepare_topics
from streamer.state import Checkpoint
from streamer.topology.graph import Topology

if TYPE_CHECKING:
    from streamer.runtime.task import RecordSink
    from streamer.runtime.tracing import Tracing

log = logging.getLogger(__name__)

CHECKPOINT_FILE = ".checkpoint"
CHECKPOINT_INTERVAL_S = 30.0
"""At-least-once: how often a running task writes its checkpoint (and flushes its stores)."""
MAX_DIRTY_KEYS = 50_000
"""Commit early once the write caches of this worker hold this many dirty keys."""


class _TransactionalSink:
    """The tasks' RecordSink: opens the transaction on first use under exactly-once."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.exactly_once = worker.config.exactly_once

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        worker = self.worker
        if self.exactly_once and not worker.in_transaction:
            worker._ensure_transaction()
        worker.producer.send(topic, key, value, timestamp, headers, partition)
        worker.records_out += 1


class Worker:
    """Runs ``topology`` as one member of the group ``config.app_id``. See module docstring.

    ``metrics`` receives per-batch and per-commit measurements (default: none);
    ``tracing``, when given, records spans and carries trace context in headers.
    """

    def __init__(
        self,
        topology: Topology,
        config: AppConfig,
        *,
        group_protocol: str = "consumer",
        metrics: WorkerMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.topology = topology
        self.config = config
        self.group_protocol = group_protocol
        self.prefix = config.prefix
        self.stop_requested = threading.Event()
        self.clock = WallClock()
        self.slots: dict[TaskId, TaskSlot] = {}
        self.tp_task: dict[TP, TaskId] = {}
        self._task_by_tp: dict[TP, Task] = {}
        """The running (not restoring) task of each assigned input partition."""
        self.positions: dict[TP, int] = {}
        self.committed: dict[TP, int] = {}
        self.in_transaction = False
        self._purger: RepartitionPurger | None = None
        self._failed = False
        self._cache_overflow = False
        """Set once the loop failed: nothing may be committed from then on."""
        self.records_in = 0
        self.records_out = 0
        self.commits = 0
        self.aborts = 0
        self.rebalances = 0
        self.global_tables = GlobalTables(
            topology, config.state_dir / config.app_id / f"global-{config.slot}"
        )
        self._sink: RecordSink = _TransactionalSink(self)
        self.metrics: WorkerMetrics = metrics if metrics is not None else NoopMetrics()
        self.tracing = tracing
        self.task_counters: dict[TaskId, TaskCounters] = {}
        """Per task id, its counters; they outlive the task objects (rollbacks, moves)."""
        self._app_dir = config.state_dir / config.app_id
        self._changelog_partitions: dict[str, int] = {}

    @property
    def ready(self) -> bool:
        """True once the worker owns tasks and none of them is restoring."""
        slots = list(self.slots.values())
        return bool(slots) and not any(slot.restoring for slot in slots)

    # --- lifecycle ------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the loop to finish its batch, commit, close and leave (signal-safe)."""
        self.stop_requested.set()

    def run(self) -> None:
        """Start, loop until :meth:`request_stop`, then shut down cleanly."""
        self._start()
        try:
            while not self.stop_requested.is_set():
                self.run_once()
            self._commit()
        except BaseException:
            self._close(clean=False)
            raise
        self._close(clean=True)

    def _start(self) -> None:
        cfg = self.config
        admin = KafkaAdmin(cfg.bootstrap_servers)
        layout = prepare_topics(self.topology, cfg, admin)
        self._changelog_partitions = layout.changelogs
        self._purger = RepartitionPurger(
            admin, layout.repartition, interval=cfg.repartition_purge_interval_ms / 1000
        )
        if self.tracing is not None:
            self._sink = self.tracing.wrap_sink(self._sink, skip_topics=layout.changelogs)
        self.producer = OutputProducer(producer_config(cfg, self.metrics.client_config("producer")))
        if cfg.exactly_once:
            self.producer.init_transactions()
        restore_conf = restore_consumer_config(cfg)
        self.restorer = StateRestorer(RestoreConsumer(restore_conf), batch=cfg.restore_batch)
        self.global_tables.load(restore_conf, cfg.bootstrap_servers, self.stop_requested)
        consumer_conf = group_consumer_config(
            cfg, self.group_protocol, self.metrics.client_config("consumer")
        )
        self.consumer = GroupConsumer(
            consumer_conf,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            on_lost=self._on_lost,
        )
        self.consumer.subscribe(layout.source_topics(self.topology, self.prefix))
        self._last_commit = time.monotonic()
        self.metrics.started(self)
        log.info("worker %s of %s started (%s)", cfg.slot, cfg.app_id, cfg.guarantee.value)

    # --- the loop ---------------------------------------------------------------------------------

    def run_once(self) -> None:
        """One iteration of the loop; see the module docstring."""
        cfg = self.config
        timeout = 0.0 if self.restorer.active else cfg.poll_timeout_ms / 1000
        messages = self.consumer.consume(cfg.max_batch, timeout)
        if messages:
            if cfg.exactly_once:
                self._ensure_transaction()
            began = time.perf_counter()
            if self.tracing is None:
                self._process_batch(messages)
            else:
                self.tracing.process_batch(messages, self._process_batch)
            self.metrics.batch(messages, time.perf_counter() - began)
        if self.restorer.active:
            self.restorer.step(0.05 if not messages else 0.0, self._restored)
        self.global_tables.poll()
        for slot in self.slots.values():
            if not slot.restoring:
                slot.task.punctuate_wall_clock()
        self.producer.poll()
        if messages and not self._cache_overflow:
            dirty = sum(c.dirty_count for s in self.slots.values() for c in s.task.caches.values())
            self._cache_overflow = dirty >= MAX_DIRTY_KEYS
        if self._cache_overflow or time.monotonic() - self._last_commit >= cfg.commit_interval:
            self._commit()
        self.metrics.tick()

    def _process_batch(self, messages: list[Message]) -> None:
        """The hot path: hand each record to its task. Positions are recorded per batch."""
        tasks = self._task_by_tp
        last: dict[TP, int] = {}
        for message in messages:
            tp = (message.topic(), message.partition())
            task = tasks.get(tp)
            if task is None:
                continue
            offset = message.offset()
            task.process(
                tp[0],
                message.key(),
                message.value(),
                message.timestamp()[1],
                offset,
                message.headers() or (),
            )
            last[tp] = offset
        for tp, offset in last.items():
            self.positions[tp] = offset + 1
        self.records_in += len(messages)

    def _ensure_transaction(self) -> None:
        if self.config.exactly_once and not self.in_transaction:
            self.producer.begin()
            self.in_transaction = True

    # --- commit and abort -------------------------------------------------------------------------

    def _commit(self) -> None:
        """Commit in the documented order; an abortable failure rolls back instead."""
        self._last_commit = time.monotonic()
        began = time.perf_counter()
        running = [s for s in self.slots.values() if not s.restoring]
        try:
            self._skip_transaction_markers()
            for slot in running:
                slot.task.flush_changelog()
            if self.config.exactly_once:
                if not self.in_transaction:
                    return
                self.producer.commit(
                    self.positions, self.consumer.group_metadata(), self._offset_metadata()
                )
                self.in_transaction = False
            else:
                self.producer.flush()
                self.consumer.commit(self.positions, self._offset_metadata())
        except KafkaRuntimeError as exc:
            if exc.fatal or not self.config.exactly_once:
                raise
            log.warning("commit failed, aborting the transaction: %s", exc)
            self._abort()
            return
        self.committed.update(self.positions)
        if self._purger is not None:
            self._purger.committed(self.positions)
        self.positions.clear()
        for slot in running:
            slot.task.commit_stores()
            slot.committed_stream_time = slot.task.stream_time
            if (
                not self.config.exactly_once
                and time.monotonic() - slot.last_checkpoint >= CHECKPOINT_INTERVAL_S
            ):
                self._write_checkpoint(slot)
        self.commits += 1
        self.metrics.commit(time.perf_counter() - began)
        if self._cache_overflow:
            self._cache_overflow = False

    def _skip_transaction_markers(self) -> None:
        """Move each position to be committed past a transaction marker that follows it.

        A processed record's ``offset + 1`` may be a commit marker of the producer's
        transaction; committing that offset would show a lag of 1 forever on a caught-up
        partition. The consumer's position is past such markers, and never past a record
        this worker has not processed, since every record it returned has been processed.
        """
        if not self.positions:
            return
        for tp, position in self.consumer.positions(self.positions).items():
            if position > self.positions[tp]:
                self.positions[tp] = position

    def _offset_metadata(self) -> dict[TP, str]:
        """Each task's stream time, committed beside its input offsets (see _on_assigned)."""
        return {
            tp: encode_offset_metadata(task.stream_time)
            for tp in self.positions
            if (task := self._task_by_tp.get(tp)) is not None
        }

    def _abort(self) -> None:
        """Abort the transaction, drop uncommitted state and rewind to committed offsets."""
        self.aborts += 1
        if self.in_transaction:
            try:
                self.producer.abort()
            except KafkaRuntimeError as exc:
                if exc.fatal:
                    raise
                log.warning("abort_transaction failed: %s", exc)
            self.in_transaction = False
        self.positions.clear()
        for slot in list(self.slots.values()):
            if slot.restoring:
                continue  # it processed nothing; the restorer still writes into its stores
            slot.task.discard_uncommitted()
            slot.task.close()
            slot.task = self._new_task(slot.id, slot.directory)
            slot.task.stream_time = slot.committed_stream_time
            for tp in slot.inputs:
                self._task_by_tp[tp] = slot.task
        inputs = [tp for slot in self.slots.values() for tp in slot.inputs]
        committed = self.consumer.committed(inputs)
        starts = self.consumer.log_start_offsets(inp for inp in inputs if inp not in committed)
        for tp in inputs:
            self.consumer.seek(tp, committed.get(tp, starts.get(tp, 0)))
        log.info("rolled back %d tasks to their committed offsets", len(self.slots))

    # --- tasks ------------------------------------------------------------------------------

    def _task_dir(self, task_id: TaskId) -> Path:
        return self._app_dir / str(task_id)

    def _new_task(self, task_id: TaskId, directory: Path) -> Task:
        sub = self.topology.subtopologies[task_id.subtopology]
        task = Task(
            self.topology,
            sub,
            task_id.partition,
            app_id=self.prefix,
            open_store=lambda name: open_locked(directory / name, name),
            sink=self._sink,
            clock=self.clock,
            global_stores=self.global_tables.stores,
            error_policy=self.config.error_policy,
        )
        task.counters = self.task_counters.setdefault(task_id, task.counters)
        return task

    def _write_checkpoint(self, slot: TaskSlot) -> None:
        """Record the changelog offsets the committed local state reflects.

        The stores are flushed to disk first, so a checkpoint never claims more than the
        store holds, even after a power loss.
        """
        for cache in slot.task.caches.values():
            cache.flush()
        slot.last_checkpoint = time.monotonic()
        # Called only after the producer's writes are committed (or flushed) and this task
        # is the partitions' only writer, so each changelog's end offset is what we reflect.
        changelogs = {
            name: (topic, slot.id.partition) for name, topic in slot.task.changelog_topics.items()
        }
        ends = self.restorer.end_offsets(list(changelogs.values())) if changelogs else {}
        for name, tp in changelogs.items():
            if ends[tp] > slot.changelog_offsets.get(name, 0):
                slot.changelog_offsets[name] = ends[tp]
        if slot.changelog_offsets:
            Checkpoint.write(slot.directory / CHECKPOINT_FILE, slot.changelog_offsets)

    def _open_slot(self, task_id: TaskId) -> TaskSlot:
        directory = self._task_dir(task_id)
        checkpoint_path = directory / CHECKPOINT_FILE
        checkpoint = Checkpoint.load(checkpoint_path) if checkpoint_path.exists() else {}
        sub = self.topology.subtopologies[task_id.subtopology]
        stores_with_changelog = [s for s in sub.stores if self.topology.store(s).changelog]
        if checkpoint and stores_with_changelog:
            # A checkpoint past a changelog's end means the changelog was deleted and created
            # again (streamer replay or reset): the local state belongs to the old one.
            tps = {
                s: (self.topology.store(s).changelog_topic(self.prefix), task_id.partition)
                for s in stores_with_changelog
            }
            ends = self.restorer.end_offsets(list(tps.values()))
            if any(checkpoint.get(s, 0) > ends[tp] for s, tp in tps.items()):
                log.warning(
                    "task %s: checkpoint is past its changelog's end (the changelog was "
                    "recreated, e.g. by streamer replay); rebuilding its state",
                    task_id,
                )
                checkpoint = {}
        if stores_with_changelog and not checkpoint and directory.exists():
            # No clean checkpoint: the local state may hold anything. Rebuild it.
            log.info("task %s: no checkpoint, wiping local state to rebuild it", task_id)
            for store in stores_with_changelog:
                if (directory / store).exists():
                    shutil.rmtree(directory / store)
        if self.config.exactly_once and checkpoint_path.exists():
            # Under exactly-once the checkpoint is only valid for the clean close that wrote it.
            checkpoint_path.unlink()
        directory.mkdir(parents=True, exist_ok=True)
        task = self._new_task(task_id, directory)
        slot = TaskSlot(task_id, task, directory, changelog_offsets=dict(checkpoint))
        changelogs = {
            name: (topic, task_id.partition) for name, topic in task.changelog_topics.items()
        }
        if changelogs:
            ends = self.restorer.end_offsets(list(changelogs.values()))
            for name, tp in changelogs.items():
                start = checkpoint.get(name)
                if start is not None and start >= ends[tp]:
                    continue
                if ends[tp] == 0:
                    continue
                slot.restoring = True
                self.restorer.add(str(task_id), tp, task.caches[name].inner, start, ends[tp])
        return slot

    def _restored(self, task: str, positions: dict[str, int]) -> None:
        for slot in self.slots.values():
            if str(slot.id) == task:
                slot.restoring = False
                slot.changelog_offsets.update(positions)
                for tp in slot.inputs:
                    self._task_by_tp[tp] = slot.task
                self.consumer.resume(slot.inputs)
                log.info("task %s: restored, processing resumes", task)

    def _close_slot(self, slot: TaskSlot, *, clean: bool) -> None:
        if slot.restoring:
            self.restorer.cancel_task(str(slot.id))
        if clean and not slot.restoring:
            slot.task.commit_stores()
            self._write_checkpoint(slot)
        slot.task.close()

    # --- rebalance callbacks (run inside consumer.consume) ----------------------------------

    def _on_assigned(self, partitions: list[TP]) -> None:
        self.rebalances += 1
        new_slots: list[TaskSlot] = []
        for tp in partitions:
            sub = self.topology.subtopology_for(tp[0], self.prefix)
            if sub is None:
                continue
            task_id = TaskId(sub.id, tp[1])
            slot = self.slots.get(task_id)
            if slot is None:
                slot = self._open_slot(task_id)
                self.slots[task_id] = slot
                new_slots.append(slot)
            slot.inputs.add(tp)
            self.tp_task[tp] = task_id
            if slot.restoring:
                self.consumer.pause([tp])
            else:
                self._task_by_tp[tp] = slot.task
        committed = self.consumer.committed_with_metadata(partitions)
        for slot in new_slots:
            # Stream time survives restarts and moves: windows closed before stay closed.
            stream_time = max(
                (decode_offset_metadata(committed[tp][1]) for tp in slot.inputs if tp in committed),
                default=-1,
            )
            slot.task.stream_time = slot.committed_stream_time = stream_time
        self._check_offsets_below_log_start({tp: o for tp, (o, _m) in committed.items()})
        log.info(
            "assigned %d partitions; %d new tasks (%d restoring): %s",
            len(partitions),
            len(new_slots),
            sum(1 for s in new_slots if s.restoring),
            describe_partitions(partitions),
        )

    def _check_offsets_below_log_start(self, committed: dict[TP, int]) -> None:
        starts = self.consumer.log_start_offsets(committed)
        for tp, offset in committed.items():
            if offset < starts[tp]:
                log.warning(
                    "%s[%d]: committed offset %d is below the log start %d; records "
                    "%d-%d were deleted by retention before being processed. Resuming at "
                    "the log start.",
                    tp[0],
                    tp[1],
                    offset,
                    starts[tp],
                    offset,
                    starts[tp] - 1,
                )
                self.consumer.seek(tp, starts[tp])

    def _on_revoked(self, partitions: list[TP]) -> None:
        self.rebalances += 1
        if self._failed:
            self._release(partitions, clean=False)
            return
        log.info(
            "revoked %d partitions; committing before releasing them: %s",
            len(partitions),
            describe_partitions(partitions),
        )
        self._commit()
        self._release(partitions, clean=True)

    def _on_lost(self, partitions: list[TP]) -> None:
        self.rebalances += 1
        log.warning("lost %d partitions; dropping uncommitted work", len(partitions))
        self._abort()
        self._release(partitions, clean=False)

    def _release(self, partitions: list[TP], *, clean: bool) -> None:
        for tp in partitions:
            self._task_by_tp.pop(tp, None)
            task_id = self.tp_task.pop(tp, None)
            self.positions.pop(tp, None)
            self.committed.pop(tp, None)
            if task_id is None:
                continue
            slot = self.slots[task_id]
            slot.inputs.discard(tp)
            if not slot.inputs:
                self._close_slot(slot, clean=clean)
                del self.slots[task_id]

    def _close(self, *, clean: bool) -> None:
        if not clean:
            # Offsets of records whose state or output was dropped must never be committed,
            # not even by the revoke callback that consumer.close() triggers.
            self._failed = True
            self.positions.clear()
        for slot in list(self.slots.values()):
            try:
                self._close_slot(slot, clean=clean and not self.in_transaction)
            except StreamerError:
                log.exception("closing task %s failed", slot.id)
        self.slots.clear()
        self.tp_task.clear()
        self._task_by_tp.clear()
        if not clean and self.in_transaction:
            with contextlib.suppress(KafkaRuntimeError):
                self.producer.abort()
            self.in_transaction = False
        for closer in (self.consumer.close, self.restorer.consumer.close):
            try:
                closer()
            except Exception:
                log.exception("closing a consumer failed")
        self.global_tables.close()
        try:
            self.producer.close()
        except Exception:
            log.exception("closing the producer failed")
        log.info(
            "worker %s stopped: %d records in, %d out, %d commits, %d aborts",
            self.config.slot,
            self.records_in,
            self.records_out,
            self.commits,
            self.aborts,
        )
