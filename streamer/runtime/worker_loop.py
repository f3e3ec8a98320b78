"""The loop that drives a worker's parts; see :mod:`streamer.runtime.worker` for the order.

A :class:`WorkerLoop` lives for one :meth:`Worker.run <streamer.runtime.worker.Worker.run>`:
its constructor builds every client and part, :meth:`WorkerLoop.start` prepares topics,
loads global tables and subscribes, :meth:`WorkerLoop.close` takes it all down. The parts
own their state; the loop only calls their methods and publishes a snapshot of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.errors import StreamerError
from streamer.kafka.types import TP, Message
from streamer.runtime.clients import ClientFactory
from streamer.runtime.commit import CommitProtocol
from streamer.runtime.config import AppConfig
from streamer.runtime.global_tables import GlobalTables
from streamer.runtime.metrics import (
    SNAPSHOT_INTERVAL_S,
    WorkerInfo,
    WorkerMetrics,
    WorkerSnapshot,
)
from streamer.runtime.purge import RepartitionPurger
from streamer.runtime.restore import StateRestorer
from streamer.runtime.slots import WallClock, describe_partitions, open_locked
from streamer.runtime.standby import StandbyReplicas
from streamer.runtime.task import RecordSink, StoreOpener, Task, TaskId
from streamer.runtime.task_manager import TaskManager
from streamer.runtime.topics import TopicLayout, prepare_topics
from streamer.state import BytesStore, open_store
from streamer.state.markers import write_marker
from streamer.topology.graph import Topology

if TYPE_CHECKING:
    from streamer.runtime.tracing import Tracing

log = logging.getLogger(__name__)

StoreWrapper = Callable[[Path, str, BytesStore], BytesStore]
"""Given every task store as it is opened (its path, name and store), returns the store
the task uses: an observer such as the query server wraps it to read it from its threads."""

MAX_DIRTY_KEYS = 50_000
"""Commit early once the write caches of this worker hold this many dirty keys."""


class WorkerLoop:
    """One run of a worker: its clients, its parts and the loop over them."""

    def __init__(
        self,
        topology: Topology,
        config: AppConfig,
        *,
        clients: ClientFactory,
        metrics: WorkerMetrics,
        tracing: Tracing | None,
        stop: threading.Event,
        publish: Callable[[WorkerSnapshot], None],
        wrap_store: StoreWrapper | None = None,
    ) -> None:
        self._topology = topology
        self._config = config
        self._wrap_store = wrap_store
        self._metrics = metrics
        self._tracing = tracing
        self._stop = stop
        self._publish = publish
        self._clock = WallClock()
        self._info = WorkerInfo(config.app_id, config.slot, config.guarantee.value)
        self._latest = WorkerSnapshot(self._info)
        app_dir = config.state_dir / config.app_id
        self._build_clients(clients, app_dir)
        self._tasks = TaskManager(
            topology,
            prefix=config.prefix,
            app_dir=app_dir,
            exactly_once=config.exactly_once,
            restorer=self._restorer,
            new_task=self._new_task,
            open_store=self._open_task_store,
            log_end_offsets=self._admin.log_end_offsets,
        )
        self._commit = CommitProtocol(
            exactly_once=config.exactly_once,
            interval_s=config.commit_interval,
            producer=self._producer,
            consumer=self._consumer,
            tasks=self._tasks,
        )
        self._sink: RecordSink = self._commit.sink
        self._layout: TopicLayout | None = None
        self._records_in = 0
        self._rebalances = 0
        self._cache_overflow = False
        self._next_publish = 0.0

    def _build_clients(self, clients: ClientFactory, app_dir: Path) -> None:
        """The admin, producer, restorer, global tables, standbys and group consumer, in
        that order; a client that fails to build closes the ones built before it."""
        with ExitStack() as built:
            self._admin = clients.admin()
            self._producer = clients.producer()
            built.callback(self._producer.close)
            restore_consumer = clients.restore_consumer()
            self._restorer = StateRestorer(restore_consumer, batch=self._config.restore_batch)
            built.callback(self._restorer.close)
            self._globals = GlobalTables(
                self._topology,
                app_dir / f"global-{self._config.slot}",
                consumer=clients.restore_consumer,
                admin=lambda: self._admin,
            )
            self._standbys = self._build_standbys(clients, app_dir)
            if self._standbys is not None:
                built.callback(self._standbys.close)
            self._consumer = clients.group_consumer(
                on_assigned=self._on_assigned, on_revoked=self._on_revoked, on_lost=self._on_lost
            )
            built.pop_all()

    # --- start and stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Prepare topics, load global tables, then join the group."""
        cfg = self._config
        write_marker(cfg.state_dir, cfg.app_id)
        layout = self._layout = prepare_topics(self._topology, cfg, self._admin)
        interval = cfg.repartition_purge_interval_ms / 1000
        self._commit.purge_repartitions(
            RepartitionPurger(self._admin, layout.repartition, interval=interval)
        )
        if self._tracing is not None:
            self._sink = self._tracing.wrap_sink(self._sink, skip_topics=layout.changelogs)
        if cfg.exactly_once:
            self._producer.init_transactions()
        self._globals.load(self._stop)
        self._consumer.subscribe(layout.source_topics(self._topology, cfg.prefix))
        self._metrics.started(self._info)
        self._publish_now()
        log.info("worker %s of %s started (%s)", cfg.slot, cfg.app_id, cfg.guarantee.value)

    def commit(self) -> None:
        """Commit now (the last commit of a clean stop)."""
        self._timed_commit()

    def close(self, *, clean: bool) -> None:
        """Close tasks, clients and stores. Unclean: nothing more is committed, and an open
        transaction is aborted. Errors closing one client are logged; the rest still close."""
        if not clean:
            self._commit.stop_committing()
        self._tasks.close_all(clean=clean and not self._commit.in_transaction)
        if not clean:
            self._commit.close()
        closers = [self._consumer.close, self._restorer.close, self._producer.close]
        if self._standbys is not None:
            closers.append(self._standbys.close)
        for closer in closers:
            try:
                closer()
            except Exception:
                log.exception("closing a Kafka client failed")
        self._globals.close()
        snapshot = self.snapshot()
        self._publish(snapshot)
        log.info(
            "worker %s stopped: %d records in, %d out, %d commits, %d aborts",
            self._config.slot,
            snapshot.records_in,
            snapshot.records_out,
            snapshot.commits,
            snapshot.aborts,
        )

    # --- the loop ---------------------------------------------------------------------------

    def run_once(self) -> None:
        """One iteration of the loop; see :mod:`streamer.runtime.worker`."""
        cfg = self._config
        restoring = self._restorer.active
        timeout = 0.0 if restoring else cfg.poll_timeout_ms / 1000
        messages = self._consumer.consume(cfg.max_batch, timeout)
        if messages:
            self._commit.begin()
            began = time.perf_counter()
            if self._tracing is None:
                self._process_batch(messages)
            else:
                self._tracing.process_batch(messages, self._process_batch)
            self._metrics.batch(messages, time.perf_counter() - began)
        if self._restorer.active:
            self._restorer.step(0.0 if messages else 0.05, self._on_restored, idle=not messages)
        if self._standbys is not None:
            self._standbys.step(self._tasks.task_ids, restoring=self._restorer.active)
        self._globals.poll()
        for task in self._tasks.running_tasks():
            task.punctuate_wall_clock()
        self._producer.poll()
        if messages and not self._cache_overflow:
            self._cache_overflow = self._tasks.dirty_count() >= MAX_DIRTY_KEYS
        if self._cache_overflow or self._commit.due():
            self._timed_commit(wait=False)
        else:
            self._commit.commit_delivered()  # at-least-once intervals delivered meanwhile
        now = time.monotonic()
        if now >= self._next_publish:
            self._publish_now(now)
        self._metrics.tick(self._latest)

    def _process_batch(self, messages: list[Message]) -> None:
        """The hot path: hand each record to its task. Positions are recorded per batch."""
        tasks = self._tasks.running
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
        self._commit.processed(last)
        self._records_in += len(messages)

    def _timed_commit(self, *, wait: bool = True) -> None:
        began = time.perf_counter()
        if self._commit.commit(wait=wait):
            self._metrics.commit(time.perf_counter() - began)
        self._cache_overflow = False

    def _partition_count(self, topic: str) -> int:
        if self._layout is None:
            msg = "a task was built before the app's topics were prepared"
            raise StreamerError(msg)
        return self._layout.partition_count(topic)

    def _new_task(self, task_id: TaskId, open_store: StoreOpener) -> Task:
        return Task(
            self._topology,
            self._topology.subtopologies[task_id.subtopology],
            task_id.partition,
            app_id=self._config.prefix,
            open_store=open_store,
            sink=self._sink,
            clock=self._clock,
            global_stores=self._globals.views,
            error_policy=self._config.error_policy,
            log_payloads=self._config.log_payloads,
            partition_count=self._partition_count,
        )

    def _build_standbys(self, clients: ClientFactory, app_dir: Path) -> StandbyReplicas | None:
        cfg = self._config
        if cfg.standby_replicas <= 0:
            return None
        return StandbyReplicas(
            self._topology,
            prefix=cfg.prefix,
            me=f"{cfg.app_id}-{cfg.slot}",
            app_dir=app_dir,
            replicas=cfg.standby_replicas,
            consumer=clients.restore_consumer(),
            group=clients.group_view(),
            log_end_offsets=self._admin.log_end_offsets,
            open_store=self._open_standby_store,
            batch=cfg.restore_batch,
        )

    def _open_standby_store(self, path: Path, name: str) -> BytesStore:
        """A standby copy's store, given to ``wrap_store`` when there is one (it stays
        wrapped when a task takes it over)."""
        store = open_store("rocksdb", name, path)
        return store if self._wrap_store is None else self._wrap_store(path, name, store)

    def _open_task_store(self, path: Path, name: str) -> BytesStore:
        """A task's store: handed over by its standby copy in this worker, else opened;
        then given to ``wrap_store`` when there is one."""
        if self._standbys is not None:
            taken = self._standbys.take(path)
            if taken is not None:
                return taken  # wrapped already, when the copy was opened
        store: BytesStore = open_locked(path, name)
        return store if self._wrap_store is None else self._wrap_store(path, name, store)

    # --- snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> WorkerSnapshot:
        return WorkerSnapshot(
            self._info,
            records_in=self._records_in,
            records_out=self._commit.records_out,
            commits=self._commit.commits,
            aborts=self._commit.aborts,
            rebalances=self._rebalances,
            restored=self._restorer.total_restored,
            restore_remaining=self._restorer.remaining(),
            restores_cancelled=self._restorer.cancelled,
            tasks=self._tasks.snapshot(),
            task_counters=self._tasks.counters(),
            standby_lags=self._standbys.lags() if self._standbys is not None else {},
        )

    def _publish_now(self, now: float | None = None) -> None:
        self._latest = self.snapshot()
        self._publish(self._latest)
        self._next_publish = (now or time.monotonic()) + SNAPSHOT_INTERVAL_S

    # --- rebalance callbacks (run inside consumer.consume) ----------------------------------

    def _on_assigned(self, partitions: list[TP]) -> None:
        self._rebalances += 1
        # First: under read_committed the offset fetch asks for stable offsets, so it waits
        # for a transaction the previous owner left pending. Once that transaction is
        # complete its changelog markers are written too, so the changelog ends read by
        # assign() below include its writes.
        committed = self._consumer.committed_with_metadata(partitions)
        assignment = self._tasks.assign(partitions)
        self._consumer.pause(assignment.paused)
        self._tasks.resume_stream_times(assignment.new_tasks, committed)
        offsets = {tp: offset for tp, (offset, _m) in committed.items()}
        self._commit.note_committed(offsets)
        self._skip_deleted_records(offsets)
        log.info(
            "assigned %d partitions; %d new tasks (%d restoring): %s",
            len(partitions),
            len(assignment.new_tasks),
            assignment.restoring,
            describe_partitions(partitions),
        )
        self._publish_now()

    def _skip_deleted_records(self, committed: dict[TP, int]) -> None:
        """Seek past committed offsets that retention deleted meanwhile, saying so."""
        starts = self._consumer.log_start_offsets(committed)
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
                self._consumer.seek(tp, starts[tp])

    def _on_revoked(self, partitions: list[TP]) -> None:
        self._rebalances += 1
        if self._commit.committing_stopped:
            self._release(partitions, clean=False)
            return
        log.info(
            "revoked %d partitions; committing before releasing them: %s",
            len(partitions),
            describe_partitions(partitions),
        )
        self._timed_commit()
        self._release(partitions, clean=True)

    def _on_lost(self, partitions: list[TP]) -> None:
        self._rebalances += 1
        log.warning("lost %d partitions; dropping uncommitted work", len(partitions))
        self._commit.abort()
        self._release(partitions, clean=False)

    def _release(self, partitions: list[TP], *, clean: bool) -> None:
        self._commit.forget(partitions)
        self._tasks.release(partitions, clean=clean)
        self._publish_now()

    def _on_restored(self, task: str, positions: dict[str, int]) -> None:
        self._consumer.resume(self._tasks.restored(task, positions))
        self._publish_now()


__all__ = ["MAX_DIRTY_KEYS", "WorkerLoop"]
