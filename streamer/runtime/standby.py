"""Standby replicas: warm copies of other workers' task stores, kept by tailing changelogs.

With ``standby_replicas = N``, each task with changelogged stores is copied, besides its
active owner, by up to ``N`` other workers, each on another host. A copy is the task's own
store directories (``<state_dir>/<app_id>/<task>/<store>``, the layout an active task
uses), kept by a consumer of its own (not in the group, ``read_committed``) that tails the
task's changelog partitions, one write batch per partition and poll, with the changelog
position in the same batch. So a copy holds only committed writes and records the position
it reflects, exactly like an active store after a crash; when the task is assigned to a
worker holding a copy, the task manager finds that position and restores only the tail.

**Placement.** Workers cannot choose their assignment (the group's assignor is on the
broker, or is cooperative-sticky), so each worker decides on its own which copies to keep,
from the group's description (members and their partitions, read every
``REFRESH_INTERVAL_S``): for each task, the candidate hosts are the hosts of the group's
members other than the active owner's; each host is ranked by a rendezvous hash of (task,
host), the first ``N`` hosts keep a copy, and within a host the member with the highest
rendezvous hash of (task, member) holds it. A host is a slot prefix: the members
``<app-id>-<prefix><n>`` of one ``streamer run`` share a state directory. Every worker
computes the same placement from the same description, and a change of membership moves
only the copies of the hosts that came or went.

**Handover.** A copy's stores stay open in the worker that keeps them. When that worker is
assigned the task, the task manager's store opener calls :meth:`StandbyReplicas.take`, which
stops tailing the store and hands over the open store: the same RocksDB is never opened
twice. A copy that is no longer placed here is closed (its files stay, as those of a task
that moved away do).

Standby work never delays active work: a standby step runs only while no active restore is
running, and applies at most one batch per loop iteration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import StateError, StreamerError
from streamer.kafka.types import TP, Message
from streamer.runtime.clients import GroupView, RestoreConsumerClient
from streamer.runtime.placement import host_of, range_successor, standby_members
from streamer.runtime.task import TaskId
from streamer.state import BytesStore
from streamer.topology.graph import Topology

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 2.0
"""How often the group's description is read to place copies and the changelogs' ends to
measure their lag."""


@dataclass
class _Copy:
    task: str
    path: Path
    store: BytesStore
    position: int
    end: int = 0
    caught_up: bool = False
    announced: bool = False
    """Whether its first catch-up was logged."""


class StandbyReplicas:
    """The standby copies one worker keeps; see the module docstring."""

    def __init__(
        self,
        topology: Topology,
        *,
        prefix: str,
        me: str,
        app_dir: Path,
        replicas: int,
        consumer: RestoreConsumerClient,
        group: GroupView,
        log_end_offsets: Callable[[list[TP]], Mapping[TP, int]],
        open_store: Callable[[Path, str], BytesStore],
        batch: int,
        refresh_interval: float = REFRESH_INTERVAL_S,
    ) -> None:
        self._topology = topology
        self._prefix = prefix
        self._me = me
        self._app_dir = app_dir
        self._replicas = replicas
        self._consumer = consumer
        self._group = group
        self._log_end_offsets = log_end_offsets
        self._open_store = open_store
        self._batch = batch
        self._refresh_interval = refresh_interval
        self._copies: dict[TP, _Copy] = {}
        self._next_refresh = 0.0
        self.applied = 0
        """Changelog records applied to copies since the worker started."""

    # --- queries ----------------------------------------------------------------------------

    def lags(self) -> dict[str, int]:
        """Per task with a copy here: changelog records its copy is behind (as of the last
        log ends read, at most ``REFRESH_INTERVAL_S`` old)."""
        result: dict[str, int] = {}
        for copy in self._copies.values():
            lag = 0 if copy.caught_up else max(0, copy.end - copy.position)
            result[copy.task] = result.get(copy.task, 0) + lag
        return result

    # --- the loop's calls -------------------------------------------------------------------

    def step(self, active: Callable[[], set[str]], *, restoring: bool) -> int:
        """Re-place copies when due, then (unless an active restore runs) apply one batch."""
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + self._refresh_interval
            self.refresh(active())
        if restoring or not self._copies:
            return 0
        records, at_end = self._consumer.consume(self._batch, 0.0)
        self._apply(records)
        for tp, end in at_end.items():
            copy = self._copies.get(tp)
            if copy is None:
                continue
            if end > copy.position:
                # Past the commit markers that follow its last record: a copy handed over
                # now starts at the changelog's end, with nothing to restore.
                copy.position = end
                copy.store.write_batch((), position=end)
            copy.caught_up = True
            copy.end = max(copy.end, copy.position)
            if not copy.announced:
                copy.announced = True
                log.info(
                    "task %s: standby copy of %s caught up at offset %d",
                    copy.task,
                    copy.store.name,
                    copy.position,
                )
        return len(records)

    def refresh(self, active: set[str]) -> None:
        """Keep the copies placed here (see the module docstring), drop the others, and read
        the changelogs' log ends for the lag. A group that cannot be described keeps the
        copies as they are.

        The ends come from the admin client, in one request: asked of the standby consumer,
        each would wait behind that consumer's fetch, which the broker holds for up to
        ``fetch.wait.max.ms`` once the copies are caught up."""
        try:
            wanted = self._placed(self._group.members(), active)
            held = {copy.task for copy in self._copies.values()}
            for task in sorted(held - wanted.keys()):
                self._drop(task)
            for task in sorted(wanted.keys() - held):
                self._keep(task, wanted[task])
            ends = self._log_end_offsets(list(self._copies)) if self._copies else {}
        except StreamerError as exc:
            if isinstance(exc, StateError):
                raise
            log.warning("standby replicas: %s; trying again in %.0f s", exc, self._refresh_interval)
            return
        for tp, end in ends.items():
            copy = self._copies[tp]
            if end > copy.end:
                copy.end = end
                copy.caught_up = copy.position >= end

    def take(self, path: Path) -> BytesStore | None:
        """Hand over the open store at ``path`` to an active task, or None if no copy here
        holds it. The copy stops tailing that store."""
        for tp, copy in self._copies.items():
            if copy.path == path:
                del self._copies[tp]
                self._consumer.remove([tp])
                log.info(
                    "task %s: %s taken over from its standby copy at offset %d",
                    copy.task,
                    copy.store.name,
                    copy.position,
                )
                return copy.store
        return None

    def close(self) -> None:
        """Close every copy's stores and the consumer."""
        for copy in self._copies.values():
            try:
                copy.store.close()
            except StateError:
                log.exception("closing the standby copy of %s failed", copy.store.name)
        self._copies.clear()
        self._consumer.close()

    # --- internals --------------------------------------------------------------------------

    def _changelogs(self, task_id: TaskId) -> dict[str, TP]:
        sub = self._topology.subtopologies[task_id.subtopology]
        return {
            name: (self._topology.store(name).changelog_topic(self._prefix), task_id.partition)
            for name in sub.stores
            if self._topology.store(name).changelog
        }

    def _placed(self, members: Mapping[str, Sequence[TP]], active: set[str]) -> dict[str, TaskId]:
        """The tasks whose copy this worker keeps, by id. A copy of a task that the
        description already shows assigned to this worker, or assigned to no one, is kept
        until the assignment reaches a worker and the copy is taken over or placed."""
        if self._me not in members:
            return {}
        owners: dict[TaskId, tuple[str, str]] = {}
        by_topic: dict[str, dict[int, str]] = {}
        for member, partitions in members.items():
            for topic, partition in partitions:
                by_topic.setdefault(topic, {})[partition] = member
                sub = self._topology.subtopology_for(topic, self._prefix)
                if sub is not None:
                    owners[TaskId(sub.id, partition)] = (member, topic)
        held = {copy.task: copy for copy in self._copies.values()}
        placed: dict[str, TaskId] = {}
        for task, (owner, topic) in owners.items():
            if str(task) in active or not self._changelogs(task):
                continue
            if owner == self._me and str(task) in held:
                placed[str(task)] = task  # assigned here, not opened yet: about to be taken over
                continue
            gone = {m for m in members if host_of(m) == host_of(owner)}
            successor = range_successor(by_topic[topic], task.partition, gone)
            chosen = standby_members(str(task), owner, members, self._replicas, successor)
            if self._me in chosen:
                placed[str(task)] = task
        # A task that no member owns right now is moving (its owner left or is handing it
        # over): its copy stays, since it may be the one the next owner takes over.
        owned = {str(task) for task in owners}
        for moving in held.keys() - owned - active:
            placed[moving] = self._task_id(moving)
        return placed

    @staticmethod
    def _task_id(task: str) -> TaskId:
        subtopology, partition = task.split("_")
        return TaskId(int(subtopology), int(partition))

    def _keep(self, task: str, task_id: TaskId) -> None:
        """Open the task's stores and start tailing their changelogs from their positions.
        A store locked by another process of this host, without a recorded position but with
        contents, or ahead of its changelog is left alone (the task that opens it decides)."""
        changelogs = self._changelogs(task_id)
        opened: dict[TP, BytesStore] = {}
        try:
            for name, tp in changelogs.items():
                opened[tp] = self._open_store(self._app_dir / task / name, name)
            ends = self._log_end_offsets(list(opened))
            for tp, store in opened.items():
                position = store.changelog_position()
                if position is None and next(iter(store.range(None, None)), None) is not None:
                    msg = f"store {store.name} has contents but no recorded position"
                    raise StateError(msg)
                if position is not None and position > ends[tp]:
                    msg = f"store {store.name} is ahead of its changelog"
                    raise StateError(msg)
        except StateError as exc:
            log.info("task %s: no standby copy here: %s", task, exc)
            for store in opened.values():
                store.close()
            return
        for tp, store in opened.items():
            position = store.changelog_position()
            path = self._app_dir / task / store.name
            self._copies[tp] = _Copy(task, path, store, position or 0, ends[tp])
            self._consumer.add(tp, position)
        starts = ", ".join(
            f"{s.name} from offset {self._copies[tp].position}" for tp, s in opened.items()
        )
        log.info("task %s: keeping a standby copy (%s)", task, starts)

    def _drop(self, task: str) -> None:
        gone = [tp for tp, copy in self._copies.items() if copy.task == task]
        self._consumer.remove(gone)
        for tp in gone:
            self._copies.pop(tp).store.close()
        log.info("task %s: standby copy closed (placed elsewhere now)", task)

    def _apply(self, records: list[Message]) -> None:
        """Write each changelog partition's records in one batch, with its new position."""
        batches: dict[TP, list[tuple[bytes, bytes | None]]] = {}
        last: dict[TP, int] = {}
        for message in records:
            key = message.key()
            if key is None:
                continue
            tp = (message.topic(), message.partition())
            batches.setdefault(tp, []).append((key, message.value()))
            last[tp] = message.offset()
        for tp, entries in batches.items():
            copy = self._copies.get(tp)
            if copy is None:
                continue
            copy.position = last[tp] + 1
            copy.caught_up = False
            self.applied += len(entries)
            copy.store.write_batch(entries, position=copy.position)


__all__ = ["REFRESH_INTERVAL_S", "StandbyReplicas"]
