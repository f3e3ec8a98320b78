"""Restoring task state from changelog topics, inside the worker's poll loop.

A task whose stores are behind their changelogs stays paused while the restorer replays
the changelog partitions from the checkpointed offset (or the beginning) to the end offset
read when restoration began. The restorer never blocks: the worker calls :meth:`step`
once per loop iteration, between polls of the group consumer, so the worker stays in the
group however long a restore takes.

Records are written straight into the bytes store under the write cache, one write batch
per changelog partition and ``write_batch`` records read, holding only the last value of
each key in that span (a restore's end state is the last value of each key).

Writes overlap with fetching: a batch's writes run on one writer thread (RocksDB releases
the GIL while it writes) while the loop consumes the next batch. The ordering rules:

* at most one batch of writes is in flight, and the writer is a single thread, so the
  writes of one store apply in changelog order;
* restore writes skip the store's write-ahead log, and a store is flushed before its task
  is reported restored: processing's logged writes never land on unflushed restored data;
* a task is reported restored only after every write of its stores has applied;
* a restoration that is cancelled or closed first waits for the writes in flight, so no
  write reaches a store after its task closes it;
* a failed write raises in the worker loop's thread, at the next wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from streamer.kafka.types import TP, Message
from streamer.runtime.clients import RestoreConsumerClient
from streamer.runtime.metrics import TaskRestore
from streamer.state import BytesStore

log = logging.getLogger(__name__)

WRITE_BATCH_RECORDS = 50_000
"""Records read before their writes are handed to the writer. Within one write batch only
the last value of each key is written, so a changelog that updates its keys often costs far
fewer RocksDB writes than records."""

IDLE_BATCH_FACTOR = 5
"""While the worker has no records to process, a step reads up to this many times ``batch``
records. Fewer, bigger reads restore faster (a 1,000,000-record changelog: about 0.8x a bare
read at 10,000 records per step, 1.05x at 50,000); while tasks process records, steps stay
small, so that a restore adds little to their latency."""

Batches = dict[TP, list[tuple[bytes, bytes | None]]]
"""Per changelog partition, the (key, value) entries to write; ``None`` deletes."""


@dataclass
class _Restoration:
    task: str
    store: BytesStore
    start: int | None
    end: int
    restored: int = 0
    position: int = 0
    """The offset after the last record read; what the store reaches once the unwritten
    entries are written."""
    unwritten: list[tuple[bytes, bytes | None]] = field(default_factory=list)


class StateRestorer:
    """Replays changelog partitions into stores; see the module docstring."""

    def __init__(
        self,
        consumer: RestoreConsumerClient,
        *,
        batch: int,
        write_batch: int = WRITE_BATCH_RECORDS,
        log_every: float = 5.0,
    ) -> None:
        self._consumer = consumer
        self.batch = batch
        self.write_batch = write_batch
        self.log_every = log_every
        self._active: dict[TP, _Restoration] = {}
        self._began: dict[str, float] = {}
        """When each task with an active restoration began restoring."""
        self._finished: dict[str, TaskRestore] = {}
        """The last completed restore of each task (kept for metrics)."""
        self._last_log = time.monotonic()
        self.cancelled = 0
        """Restorations stopped before they finished (their task was revoked)."""
        self.total_restored = 0
        """Changelog records applied since this restorer was created."""
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamer-restore")
        self._in_flight: Future[None] | None = None
        self._unwritten = 0
        """Entries read but not yet handed to the writer, over every restoration."""

    @property
    def active(self) -> bool:
        return bool(self._active)

    def end_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        return self._consumer.end_offsets(partitions)

    def add(self, task: str, changelog: TP, store: BytesStore, start: int | None, end: int) -> None:
        """Restore ``changelog`` into ``store`` from ``start`` (None: beginning) to ``end``."""
        self._active[changelog] = _Restoration(task, store, start, end, position=start or 0)
        self._began.setdefault(task, time.monotonic())
        self._finished.pop(task, None)
        self._consumer.add(changelog, start)
        log.info(
            "task %s: restoring %s from %s from offset %s to %d",
            task,
            store.name,
            changelog[0],
            "the beginning" if start is None else start,
            end,
        )

    def cancel_task(self, task: str) -> None:
        """Stop restoring ``task`` (its partitions were revoked); nothing stays open."""
        gone = [tp for tp, r in self._active.items() if r.task == task]
        if gone:
            self._wait_for_writes()
        if gone:
            self.cancelled += len(gone)
            log.info("task %s: restore stopped, the task moved away", task)
        for tp in gone:
            self._unwritten -= len(self._active.pop(tp).unwritten)
        self._began.pop(task, None)
        self._consumer.remove(gone)

    def pending_tasks(self) -> set[str]:
        return {r.task for r in self._active.values()}

    def step(
        self,
        timeout: float,
        on_task_done: Callable[[str, dict[str, int]], None],
        *,
        idle: bool = False,
    ) -> int:
        """Apply one batch (bigger when the worker is ``idle``: it has no records to
        process); call ``on_task_done(task, positions)`` for tasks now fully restored, with
        the changelog offset each of its stores now reflects."""
        if not self._active:
            return 0
        limit = self.batch * IDLE_BATCH_FACTOR if idle else self.batch
        records, at_end = self._consumer.consume(limit, timeout)
        self._apply(records)
        finished = [tp for tp, r in self._active.items() if r.position >= r.end or tp in at_end]
        if finished:
            self._wait_for_writes()
            self._write_unwritten()
            self._wait_for_writes()
            for tp in finished:
                # Restore writes skip the write-ahead log; flushed, they survive a crash.
                self._active[tp].store.flush()
        done_tasks: dict[str, dict[str, int]] = {}
        for tp in finished:
            restoration = self._active.pop(tp)
            self._consumer.remove([tp])
            log.info(
                "task %s: restored %s: %d records",
                restoration.task,
                restoration.store.name,
                restoration.restored,
            )
            done_tasks.setdefault(restoration.task, {})[restoration.store.name] = max(
                restoration.position, restoration.start or 0
            )
            self._count_finished(restoration)
        pending = self.pending_tasks()
        for task, positions in done_tasks.items():
            if task not in pending:
                self._task_done(task)
                on_task_done(task, positions)
        now = time.monotonic()
        if self._active and now - self._last_log >= self.log_every:
            self._last_log = now
            self._log_progress()
        return len(records)

    def _apply(self, records: list[Message]) -> None:
        """Write each changelog partition's records in one batch, with its new position, on
        the writer thread, once the previous batch's writes have applied.

        Per record only its key and value are read: the position comes from the last record
        of each partition, and counts from the batch sizes.
        """
        if not records:
            return
        if len(self._active) == 1 and _partition_of(records[0]) == _partition_of(records[-1]):
            batches, last = self._single_partition(records)
        else:
            batches, last = _by_partition(records)
        for tp, entries in batches.items():
            restoration = self._active.get(tp)
            if restoration is None:
                continue
            restoration.position = last[tp].offset() + 1
            restoration.restored += len(entries)
            self.total_restored += len(entries)
            restoration.unwritten += entries
            self._unwritten += len(entries)
        if self._unwritten >= self.write_batch:
            self._wait_for_writes()
            self._write_unwritten()

    def _write_unwritten(self) -> None:
        """Hand every restoration's unwritten entries, with its position, to the writer."""
        writes = []
        for restoration in self._active.values():
            if restoration.unwritten:
                writes.append((restoration.store, restoration.unwritten, restoration.position))
                restoration.unwritten = []
        self._unwritten = 0
        if writes:
            self._in_flight = self._writer.submit(_write_all, writes)

    def _single_partition(self, records: list[Message]) -> tuple[Batches, dict[TP, Message]]:
        """The records of the one partition being restored, without a per-record partition
        lookup: the consumer reads only the partitions of active restorations."""
        tp = _partition_of(records[0])
        entries = [(key, m.value()) for m in records if (key := m.key()) is not None]
        return {tp: entries}, {tp: records[-1]}

    def _wait_for_writes(self) -> None:
        """Block until the writes in flight have applied; re-raise their failure here."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def _count_finished(self, restoration: _Restoration) -> None:
        """Add a finished store's records to its task's running total."""
        done = self._finished.get(restoration.task)
        restored = restoration.restored + (done.restored if done is not None else 0)
        self._finished[restoration.task] = TaskRestore(restored, 0, 0.0)

    def _task_done(self, task: str) -> None:
        began = self._began.pop(task, time.monotonic())
        restored = self._finished[task].restored
        seconds = time.monotonic() - began
        self._finished[task] = TaskRestore(restored, 0, seconds, done=True)
        log.info(
            "task %s: restore done: %d records in %.1f s (%.0f records/s)",
            task,
            restored,
            seconds,
            restored / seconds if seconds > 0 else 0.0,
        )

    def tasks(self) -> dict[str, TaskRestore]:
        """Per task: its restore in progress, or its last completed one."""
        now = time.monotonic()
        result = {task: r for task, r in self._finished.items() if r.done}
        for task, began in self._began.items():
            mine = [r for r in self._active.values() if r.task == task]
            done = self._finished.get(task)
            restored = sum(r.restored for r in mine) + (done.restored if done else 0)
            remaining = sum(max(0, r.end - r.position) for r in mine)
            result[task] = TaskRestore(restored, remaining, now - began)
        return result

    def _log_progress(self) -> None:
        for task, progress in sorted(self.tasks().items()):
            if progress.done:
                continue
            total = progress.restored + progress.remaining
            rate = progress.rate
            eta = f"about {progress.remaining / rate:.0f} s left" if rate > 0 else "starting"
            log.info(
                "task %s: restoring: %d of %d records (%.0f%%), %.0f records/s, %s",
                task,
                progress.restored,
                total,
                100.0 * progress.restored / total if total else 100.0,
                rate,
                eta,
            )

    def close(self) -> None:
        """Stop every restoration, wait for the writes in flight and close the consumer.
        Entries not handed to the writer are dropped with the position they would reach."""
        self._active.clear()
        self._unwritten = 0
        try:
            self._wait_for_writes()
        except Exception:
            log.exception("a restore write failed while the restorer was closing")
        self._writer.shutdown()
        self._consumer.close()

    def remaining(self) -> int:
        """Changelog records left to restore, over every active restoration."""
        return sum(max(0, r.end - r.position) for r in self._active.values())


def _write_all(writes: list[tuple[BytesStore, list[tuple[bytes, bytes | None]], int]]) -> None:
    """Apply each store's entries, the position in the same batch: a crash mid-restore
    resumes from there."""
    for store, entries, position in writes:
        latest = list(dict(entries).items())  # the last value of each key
        store.write_batch(latest, position=position, logged=False)


def _by_partition(records: list[Message]) -> tuple[Batches, dict[TP, Message]]:
    """Each partition's (key, value) entries, and its last record; null keys are skipped."""
    batches: Batches = {}
    last: dict[TP, Message] = {}
    for message in records:
        key = message.key()
        if key is None:
            continue
        tp = (message.topic(), message.partition())
        entries = batches.get(tp)
        if entries is None:
            entries = batches[tp] = []
        entries.append((key, message.value()))
        last[tp] = message
    return batches, last


def _partition_of(message: Message) -> TP:
    return (message.topic(), message.partition())
