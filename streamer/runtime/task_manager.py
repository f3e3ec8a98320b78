"""The task manager: which tasks a worker owns, and each task's lifecycle.

It owns the worker's :class:`~streamer.runtime.slots.TaskSlot` objects and the one index
from an input partition to its slot. Nothing outside reads those maps; the loop and the
commit protocol use the methods below.

Lifecycle of a task, in order:

1. **open** (:meth:`assign`): open its stores (waiting while the previous owner on this
   host still holds them), then read its checkpoint and its changelogs' ends, and decide
   what to restore. A store whose position (or checkpoint) is past its changelog's log end
   means the changelog was recreated (``replay`` or ``reset``): the store is wiped and
   restored in full, as is one with contents but no position. Under exactly-once a
   checkpoint is valid only for the clean close that wrote it, so it is deleted once read.
2. **restoring**: its input partitions stay paused until the restorer reports every store
   caught up (:meth:`restored`); only then does it appear in :attr:`running`.
3. **running**: records are processed; at each commit :meth:`committed` applies the cached
   writes and, under at-least-once, writes a checkpoint every ``CHECKPOINT_INTERVAL_S``.
4. **rolled back** (:meth:`rollback`) after an aborted transaction: caches dropped, the
   task recreated over its stores (which hold only committed writes), its stream time reset
   to the committed one.
5. **closed** (:meth:`release`, :meth:`close_all`): a clean close applies committed writes
   and writes a checkpoint; an unclean one drops what is not committed.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import StateError
from streamer.kafka.types import TP
from streamer.processors.api import TaskCounters
from streamer.runtime.metrics import TaskSnapshot
from streamer.runtime.restore import StateRestorer
from streamer.runtime.slots import TaskSlot, decode_offset_metadata, restore_starts
from streamer.runtime.task import Task, TaskId
from streamer.state import BytesStore, Checkpoint
from streamer.topology.graph import Topology

log = logging.getLogger(__name__)

CHECKPOINT_FILE = ".checkpoint"
CHECKPOINT_INTERVAL_S = 30.0
"""At-least-once: how often a running task writes its checkpoint (and flushes its stores)."""
POSITION_INTERVAL_S = 1.0
"""How often, at most, a commit reads the changelogs' ends to record the stores' positions
(one request for all tasks; reading it at every 100 ms commit cost about 15% throughput)."""

TaskFactory = Callable[[TaskId, Callable[[str], BytesStore]], Task]
"""Builds the task of an id over a store opener (the loop binds sink, clock and policy)."""
StoreOpener = Callable[[Path, str], BytesStore]
"""Opens the bytes store ``name`` at a path."""


@dataclass(frozen=True)
class Assignment:
    """What :meth:`TaskManager.assign` did: tasks opened, and partitions to keep paused."""

    new_tasks: tuple[TaskId, ...]
    paused: tuple[TP, ...]
    restoring: int


class TaskManager:
    """The tasks of one worker; see the module docstring for their lifecycle."""

    def __init__(
        self,
        topology: Topology,
        *,
        prefix: str,
        app_dir: Path,
        exactly_once: bool,
        restorer: StateRestorer,
        new_task: TaskFactory,
        open_store: StoreOpener,
        log_end_offsets: Callable[[list[TP]], Mapping[TP, int]],
    ) -> None:
        self._topology = topology
        self._prefix = prefix
        self._app_dir = app_dir
        self._exactly_once = exactly_once
        self._restorer = restorer
        self._new_task = new_task
        self._open_store = open_store
        self._log_end_offsets = log_end_offsets
        self._slots: dict[TaskId, TaskSlot] = {}
        self._slot_of: dict[TP, TaskSlot] = {}
        self.running: dict[TP, Task] = {}
        """The running task of each input partition; restoring tasks are absent. Read-only
        outside this class (the hot path reads it directly)."""
        self._counters: dict[TaskId, TaskCounters] = {}
        self._positions_read = 0.0
        """When positions were last read (monotonic seconds)."""

    # --- queries ----------------------------------------------------------------------------

    def running_tasks(self) -> list[Task]:
        return [slot.task for slot in self._slots.values() if not slot.restoring]

    def task_ids(self) -> set[str]:
        """The ids of every owned task, running or restoring."""
        return {str(task_id) for task_id in self._slots}

    def inputs(self) -> list[TP]:
        """Every input partition of every owned task."""
        return list(self._slot_of)

    def dirty_count(self) -> int:
        """Keys held in the write caches of running tasks, waiting for the next commit."""
        return sum(task.dirty_count() for task in self.running_tasks())

    def snapshot(self) -> tuple[TaskSnapshot, ...]:
        restores = self._restorer.tasks()
        return tuple(
            TaskSnapshot(
                id=str(slot.id),
                restoring=slot.restoring,
                inputs=tuple(sorted(slot.inputs)),
                store_sizes=slot.task.store_sizes(),
                counters=dict(slot.task.counters.values),
                restore=restores.get(str(slot.id)),
            )
            for slot in self._slots.values()
        )

    def counters(self) -> dict[str, dict[str, int]]:
        """Per task id, its counters since the worker started (they survive the task)."""
        return {str(tid): dict(c.values) for tid, c in self._counters.items()}

    # --- assignment -------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TP]) -> Assignment:
        """Open a task for each newly owned sub-topology partition; index the partitions."""
        new: list[TaskSlot] = []
        paused: list[TP] = []
        for tp in partitions:
            sub = self._topology.subtopology_for(tp[0], self._prefix)
            if sub is None:
                continue
            task_id = TaskId(sub.id, tp[1])
            slot = self._slots.get(task_id)
            if slot is None:
                slot = self._slots[task_id] = self._open(task_id)
                new.append(slot)
            slot.inputs.add(tp)
            self._slot_of[tp] = slot
            if slot.restoring:
                paused.append(tp)
            else:
                self.running[tp] = slot.task
        return Assignment(
            tuple(s.id for s in new), tuple(paused), sum(1 for s in new if s.restoring)
        )

    def resume_stream_times(
        self, task_ids: Iterable[TaskId], committed: Mapping[TP, tuple[int, str]]
    ) -> None:
        """Set each task's stream time from the metadata committed with its input offsets, so
        windows closed before a restart or a move stay closed."""
        for task_id in task_ids:
            slot = self._slots[task_id]
            stream_time = max(
                (decode_offset_metadata(committed[tp][1]) for tp in slot.inputs if tp in committed),
                default=-1,
            )
            slot.task.stream_time = slot.committed_stream_time = stream_time

    def restored(self, task: str, positions: Mapping[str, int]) -> list[TP]:
        """Mark ``task`` caught up with its changelogs; returns the inputs to resume."""
        for slot in self._slots.values():
            if str(slot.id) == task and slot.restoring:
                slot.restoring = False
                slot.changelog_offsets.update(positions)
                for tp in slot.inputs:
                    self.running[tp] = slot.task
                log.info("task %s: restored, processing resumes", task)
                return sorted(slot.inputs)
        return []

    def release(self, partitions: Iterable[TP], *, clean: bool) -> None:
        """Drop ``partitions``; a task left without inputs is closed (cleanly or not)."""
        for tp in partitions:
            self.running.pop(tp, None)
            slot = self._slot_of.pop(tp, None)
            if slot is None:
                continue
            slot.inputs.discard(tp)
            if not slot.inputs:
                self._close(slot, clean=clean)
                del self._slots[slot.id]

    def close_all(self, *, clean: bool) -> None:
        """Close every task; errors closing one are logged and the others still close."""
        for slot in list(self._slots.values()):
            try:
                self._close(slot, clean=clean)
            except Exception:
                log.exception("closing task %s failed", slot.id)
        self._slots.clear()
        self._slot_of.clear()
        self.running.clear()

    # --- commit and rollback ----------------------------------------------------------------

    def stream_time_of(self, tp: TP) -> int | None:
        task = self.running.get(tp)
        return None if task is None else task.stream_time

    def committed(self, tasks: Iterable[Task]) -> None:
        """After a successful commit (or an idle one): apply each task's cached writes to its
        stores, with the changelog positions they reach in the same write batch when due;
        remember each task's stream time; (at-least-once) write the checkpoints that are due.

        Positions are read at most every ``POSITION_INTERVAL_S``, in one request for every
        task whose stores changed since their last recorded position: the log ends of their
        changelog partitions, read before any write is applied. Under exactly-once every
        changelog record of the commits so far is acknowledged and none of the next one is
        sent yet, so each end is exactly what its store then holds (a commit marker may
        follow; a restore skips it). Under at-least-once records of earlier commits may
        still be in flight: the (idempotent) producer appends them in order past the end
        read, so the end is a lower bound of what the store holds.
        Between reads a store keeps its last position: a lower bound, so a restore after a
        crash replays at most about that interval of changelog writes.
        """
        now = time.monotonic()
        live = [
            (slot, task)
            for task in tasks
            if (slot := self._slots.get(task.id)) is not None and slot.task is task
        ]
        for slot, task in live:
            if task.changelog_topics and task.dirty_count():
                slot.positions_behind = True
        positions: dict[TaskId, dict[str, int]] = {}
        if now - self._positions_read >= POSITION_INTERVAL_S:
            behind = [slot.id for slot, _task in live if slot.positions_behind]
            if behind:
                positions = self._end_offsets(behind)
                self._positions_read = now
        for slot, task in live:
            task.commit_stores(positions.get(slot.id))
            if slot.id in positions:
                slot.positions_behind = False
            slot.committed_stream_time = task.stream_time
            if not self._exactly_once and now - slot.last_checkpoint >= CHECKPOINT_INTERVAL_S:
                self._write_checkpoint(slot)

    def rollback(self) -> int:
        """Drop uncommitted work of running tasks and recreate them over their stores."""
        rolled = 0
        for slot in self._slots.values():
            if slot.restoring:
                continue  # it processed nothing; the restorer still writes into its stores
            slot.task.discard_uncommitted()
            slot.task.close()
            slot.task = self._build(slot.id, slot.directory)
            slot.task.stream_time = slot.committed_stream_time
            for tp in slot.inputs:
                self.running[tp] = slot.task
            rolled += 1
        return rolled

    # --- internals --------------------------------------------------------------------------

    def _build(self, task_id: TaskId, directory: Path) -> Task:
        task = self._new_task(task_id, lambda name: self._open_store(directory / name, name))
        task.counters = self._counters.setdefault(task_id, task.counters)
        return task

    def _changelog_partitions(self, task_id: TaskId) -> dict[str, TP]:
        """Per changelogged store of the task: its changelog partition."""
        sub = self._topology.subtopologies[task_id.subtopology]
        return {
            name: (self._topology.store(name).changelog_topic(self._prefix), task_id.partition)
            for name in sub.stores
            if self._topology.store(name).changelog
        }

    def _changelog_ends(self, task_id: TaskId) -> dict[str, tuple[TP, int]]:
        """Per changelogged store: its changelog partition and the end a restore reads to
        (read_committed: the last stable offset)."""
        tps = self._changelog_partitions(task_id)
        ends = self._restorer.end_offsets(list(tps.values())) if tps else {}
        return {name: (tp, ends[tp]) for name, tp in tps.items()}

    def _end_offsets(self, task_ids: list[TaskId]) -> dict[TaskId, dict[str, int]]:
        """Per task, per changelogged store: its changelog partition's log end (not the last
        stable offset, which lags while a transaction's markers are being written), all
        read in one request."""
        tps = {task_id: self._changelog_partitions(task_id) for task_id in task_ids}
        wanted = [tp for stores in tps.values() for tp in stores.values()]
        ends = self._log_end_offsets(wanted) if wanted else {}
        return {
            task_id: {name: ends[tp] for name, tp in stores.items()}
            for task_id, stores in tps.items()
        }

    def _load_checkpoint(self, path: Path) -> dict[str, int]:
        checkpoint = Checkpoint.load(path) if path.exists() else {}
        if self._exactly_once and path.exists():
            # Under exactly-once the checkpoint is only valid for the clean close that wrote it.
            path.unlink()
        return dict(checkpoint)

    def _open(self, task_id: TaskId) -> TaskSlot:
        """Open the task's stores, then read their checkpoint and their changelogs' ends.

        In that order: opening a store waits while another process of this host (the task's
        previous owner, still committing and closing) holds it, and what that owner leaves
        (its last writes, their position, its checkpoint) is final only once it let go. Ends
        read before would be older than the store and make it look ahead of its changelog.
        """
        directory = self._app_dir / str(task_id)
        directory.mkdir(parents=True, exist_ok=True)
        changelogged = list(self._changelog_partitions(task_id))
        task = self._build_or_rebuild(task_id, directory, changelogged)
        try:
            checkpoint = self._load_checkpoint(directory / CHECKPOINT_FILE)
            ends = self._changelog_ends(task_id)
            log_ends = self._end_offsets([task_id])[task_id] if ends else {}
        except BaseException:
            task.close()
            raise
        starts, suspect = restore_starts(
            task_id, task.restore_targets(), checkpoint, ends, log_ends
        )
        if suspect:
            task.close()
            for store in suspect:
                shutil.rmtree(directory / store, ignore_errors=True)
            task = self._build(task_id, directory)
        slot = TaskSlot(task_id, task, directory, changelog_offsets=dict(starts))
        targets = task.restore_targets()
        for name, (tp, end) in ends.items():
            start = starts.get(name)
            if end == 0 or (start is not None and start >= end):
                continue
            slot.restoring = True
            self._restorer.add(str(task_id), tp, targets[name], start, end)
        return slot

    def _build_or_rebuild(self, task_id: TaskId, directory: Path, changelogged: list[str]) -> Task:
        """Open the task's stores; a changelogged store that cannot be opened (other than
        being locked by another process) is wiped, to be restored in full."""
        try:
            return self._build(task_id, directory)
        except StateError as exc:
            if "locked" in str(exc) or not changelogged:
                raise
            log.warning(
                "task %s: a store cannot be opened (%s); wiping its changelogged stores to "
                "restore them in full",
                task_id,
                exc,
            )
            for store in changelogged:
                shutil.rmtree(directory / store, ignore_errors=True)
            return self._build(task_id, directory)

    def _write_checkpoint(self, slot: TaskSlot) -> None:
        """Record the changelog offsets the committed local state reflects.

        Called only after the producer's writes are committed (or flushed) and while this
        task is its changelog partitions' only writer, so each end offset is what the stores
        reflect. The stores are flushed to disk first, so a checkpoint never claims more
        than the store holds, even after a power loss.
        """
        ends = self._end_offsets([slot.id])[slot.id]
        slot.task.commit_stores(ends)
        slot.task.flush_stores()
        slot.last_checkpoint = time.monotonic()
        for name, end in ends.items():
            if end > slot.changelog_offsets.get(name, 0):
                slot.changelog_offsets[name] = end
        if slot.changelog_offsets:
            Checkpoint.write(slot.directory / CHECKPOINT_FILE, slot.changelog_offsets)

    def _close(self, slot: TaskSlot, *, clean: bool) -> None:
        if slot.restoring:
            self._restorer.cancel_task(str(slot.id))
        if clean and not slot.restoring:
            self._write_checkpoint(slot)
        slot.task.close()
