"""The commit protocol: what a worker has processed, and making it permanent or undoing it.

It owns the positions to commit, the open transaction, the commit clock and the counts of
commits, aborts and records sent. Its :attr:`CommitProtocol.sink` is the tasks'
:class:`~streamer.runtime.task.RecordSink`: under exactly-once, the first record sent opens
the transaction.

Commit order (:meth:`CommitProtocol.commit`), every ``commit_interval``, on revoke and on a
clean stop:

1. move each position past a transaction marker that follows it;
2. each running task sends its dirty store keys to its changelog, once per key;
3. exactly-once: add the positions (with each task's stream time as metadata) to the
   transaction and commit it; then the task manager applies the cached writes to the local
   stores; repartition records below the positions may be purged.

At-least-once commits without waiting for the producer (:mod:`~streamer.runtime.intervals`):
step 2 ends an *interval*: its positions (with their metadata) are put aside with the
producer's :class:`~streamer.runtime.clients.DeliveryGroup` of every record sent since the
last one (outputs and changelog records alike), the task manager applies the cached writes
to the local stores and writes the checkpoints that are due, and processing goes on. Every
loop iteration then commits the positions of the oldest intervals whose records are all
delivered, in order, in one synchronous offset commit: an offset is never committed before
the outputs and changelog records of the records below it are acknowledged. A local store
may so hold writes whose changelog records are still in flight; the changelog positions it
records are read from the log ends (the producer is idempotent: each partition's records are
appended in order), so they stay a lower bound of what it holds, and a crash
makes the records past the committed offsets be processed again, as at-least-once allows.
The commit of a revoke or a clean stop (:meth:`CommitProtocol.commit` with ``wait=True``)
flushes the producer first, so every interval is committed before it returns.

An idle commit (nothing processed since the last one) still moves the committed offsets past
transaction markers that the consumer has read since (at most once a second,
:meth:`CommitProtocol.commit`): the marker that ends an upstream transaction can reach the
consumer after the commit of the records before it, and with nothing processed after it a
caught-up partition would otherwise show a lag of 1 forever. Only markers lie between the
committed offset and the consumer's position then, so this commits no unprocessed record;
under exactly-once it commits in a transaction of its own that holds no records.

A failure in steps 1-3 that Kafka calls abortable, under exactly-once, runs :meth:`abort`:
abort the transaction, drop the positions, roll the tasks back to their stores (which hold
only committed writes) and seek every input to its committed offset. Nothing is restored.
Any other failure propagates, and the worker closes without committing
(:meth:`stop_committing`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable

from streamer.kafka.runtime_clients import KafkaRuntimeError
from streamer.kafka.types import TP
from streamer.processors.api import Headers
from streamer.runtime.clients import GroupConsumerClient, ProducerClient
from streamer.runtime.intervals import Intervals
from streamer.runtime.purge import RepartitionPurger
from streamer.runtime.slots import encode_offset_metadata
from streamer.runtime.task import Task
from streamer.runtime.task_manager import TaskManager

log = logging.getLogger(__name__)

MARKER_CHECK_INTERVAL_S = 1.0
"""How often an idle commit looks for positions moved past transaction markers."""


class _OutputSink:
    """The tasks' RecordSink: opens the transaction on first use under exactly-once."""

    __slots__ = ("_protocol", "_send")

    def __init__(self, protocol: CommitProtocol) -> None:
        self._protocol = protocol
        self._send = protocol.producer.send

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
        protocol = self._protocol
        if protocol.exactly_once and not protocol.in_transaction:
            protocol.begin()
        self._send(topic, key, value, timestamp, headers, partition)
        protocol.records_out += 1


class CommitProtocol:
    """See the module docstring. One per worker; driven by the loop on its thread."""

    def __init__(
        self,
        *,
        exactly_once: bool,
        interval_s: float,
        producer: ProducerClient,
        consumer: GroupConsumerClient,
        tasks: TaskManager,
        purger: RepartitionPurger | None = None,
    ) -> None:
        self.exactly_once = exactly_once
        self.interval_s = interval_s
        self.producer = producer
        self._consumer = consumer
        self._tasks = tasks
        self._purger = purger
        self._positions: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        """The last committed offset of each owned input, as far as this worker knows."""
        self._next_marker_check = 0.0
        self._intervals = Intervals()
        self.in_transaction = False
        self._stopped = False
        self._last_commit = time.monotonic()
        self.commits = 0
        self.aborts = 0
        self.records_out = 0
        self.sink = _OutputSink(self)

    # --- between commits ------------------------------------------------------------------

    def begin(self) -> None:
        """Open a transaction unless one is open (exactly-once only)."""
        if self.exactly_once and not self.in_transaction:
            self.producer.begin()
            self.in_transaction = True

    def processed(self, last_offsets: dict[TP, int]) -> None:
        """Record the last offset processed per partition in a batch."""
        for tp, offset in last_offsets.items():
            self._positions[tp] = offset + 1

    def note_committed(self, offsets: dict[TP, int]) -> None:
        """The committed offsets of partitions just assigned (read from the group)."""
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[TP]) -> None:
        """Partitions that left this worker: their positions are not ours to commit."""
        partitions = list(partitions)
        for tp in partitions:
            self._positions.pop(tp, None)
            self._committed.pop(tp, None)
        self._intervals.forget(partitions)

    def purge_repartitions(self, purger: RepartitionPurger) -> None:
        """From now on, hand each commit's positions to ``purger`` once committed."""
        self._purger = purger

    def due(self) -> bool:
        return time.monotonic() - self._last_commit >= self.interval_s

    @property
    def committing_stopped(self) -> bool:
        return self._stopped

    def stop_committing(self) -> None:
        """After a failure: nothing may be committed from now on, not even by the revoke
        callback that closing the consumer triggers."""
        self._stopped = True
        self._positions.clear()
        self._intervals.clear()

    # --- commit and abort -----------------------------------------------------------------

    def commit(self, *, wait: bool = True) -> bool:
        """Commit in the documented order. Returns False when nothing was committed: the
        protocol was stopped, exactly-once had no open transaction, or it rolled back;
        at-least-once, when no interval's records were all delivered yet. ``wait=False``
        (at-least-once only) ends the interval without waiting for its deliveries."""
        if self._stopped:
            return False
        self._last_commit = time.monotonic()
        running = self._tasks.running_tasks()
        try:
            self._skip_transaction_markers()
            for task in running:
                task.flush_changelog()
            if not self.exactly_once:
                if not self._positions and not self._intervals:
                    return self._commit_markers_read()
                return self._end_interval(running, wait=wait)
            if not self.in_transaction:
                # Nothing in flight: the stores may record the positions they reached.
                self._tasks.committed(running)
                return self._commit_markers_read()
            metadata = self._offset_metadata()
            group = self._consumer.group_metadata()
            self.producer.commit(self._positions, group, metadata)
            self.in_transaction = False
            self._committed.update(self._positions)
        except KafkaRuntimeError as exc:
            if exc.fatal or not self.exactly_once:
                raise
            log.warning("commit failed, aborting the transaction: %s", exc)
            self.abort()
            return False
        if self._purger is not None:
            self._purger.committed(self._positions)
        self._positions.clear()
        self._tasks.committed(running)
        self.commits += 1
        return True

    def _end_interval(self, running: list[Task], *, wait: bool) -> bool:
        """At-least-once: put the interval aside, apply the stores, commit what is delivered."""
        self._intervals.end(self.producer.mark(), self._positions, self._offset_metadata())
        self._positions.clear()
        if wait:
            self.producer.flush()
        self._tasks.committed(running)
        return self.commit_delivered()

    def commit_delivered(self) -> bool:
        """At-least-once: commit the positions of the oldest intervals whose records are all
        delivered (see the module docstring); the loop calls this every iteration. Returns
        whether offsets were committed."""
        if self._stopped or not self._intervals:
            return False
        count, positions, metadata = self._intervals.delivered()
        if count == 0:
            return False
        self.producer.check_errors()
        if positions and not self._commit_offsets(positions, metadata):
            return False
        self._committed.update(positions)
        self._intervals.committed(count)
        if self._purger is not None and positions:
            self._purger.committed(positions)
        self.commits += 1
        return True

    def _commit_offsets(self, positions: dict[TP, int], metadata: dict[TP, str]) -> bool:
        """At-least-once: commit the positions. A commit that a rebalance refused (a stale
        member epoch) is not an error there: the output is delivered, and the positions stay
        to go with the next commit; a crash meanwhile only means records processed again.
        Returns whether the offsets were committed."""
        try:
            self._consumer.commit(positions, metadata)
        except KafkaRuntimeError as exc:
            if exc.fatal or not exc.retriable:
                raise
            log.warning("offset commit refused during a rebalance; retried at the next: %s", exc)
            return False
        return True

    def abort(self) -> None:
        """Abort the transaction, drop uncommitted state and rewind to committed offsets."""
        self.aborts += 1
        self._abort_transaction()
        self._positions.clear()
        self._intervals.clear()
        rolled = self._tasks.rollback()
        inputs = self._tasks.inputs()
        committed = self._consumer.committed(inputs)
        starts = self._consumer.log_start_offsets(tp for tp in inputs if tp not in committed)
        for tp in inputs:
            self._consumer.seek(tp, committed.get(tp, starts.get(tp, 0)))
        log.info("rolled back %d tasks to their committed offsets", rolled)

    def close(self) -> None:
        """Abort a transaction still open (an unclean stop); a failure is only logged."""
        with contextlib.suppress(KafkaRuntimeError):
            self._abort_transaction()

    def _abort_transaction(self) -> None:
        if not self.in_transaction:
            return
        self.in_transaction = False
        try:
            self.producer.abort()
        except KafkaRuntimeError as exc:
            if exc.fatal:
                raise
            log.warning("abort_transaction failed: %s", exc)

    def _skip_transaction_markers(self) -> None:
        """Move each position to be committed past a transaction marker that follows it.

        A processed record's ``offset + 1`` may be a commit marker of the producer's
        transaction; committing that offset would show a lag of 1 forever on a caught-up
        partition. The consumer's position is past such markers, and never past a record
        this worker has not processed, since every record it returned has been processed.
        """
        if not self._positions:
            return
        for tp, position in self._consumer.positions(self._positions).items():
            if position > self._positions[tp]:
                self._positions[tp] = position

    def _commit_markers_read(self) -> bool:
        """An idle commit: commit the positions of running tasks' inputs that moved past
        transaction markers only (see the module docstring; a restoring task's inputs are
        paused). Returns whether offsets were committed."""
        now = time.monotonic()
        if not self._committed or now < self._next_marker_check:
            return False
        self._next_marker_check = now + MARKER_CHECK_INTERVAL_S
        running = [tp for tp in self._committed if tp in self._tasks.running]
        moved = {
            tp: position
            for tp, position in self._consumer.positions(running).items()
            if position > self._committed[tp]
        }
        if not moved:
            return False
        metadata = self._offset_metadata(moved)
        if self.exactly_once:
            self.begin()
            self.producer.commit(moved, self._consumer.group_metadata(), metadata)
            self.in_transaction = False
        elif not self._commit_offsets(moved, metadata):
            return False
        self._committed.update(moved)
        self.commits += 1
        return True

    def _offset_metadata(self, positions: Iterable[TP] | None = None) -> dict[TP, str]:
        """Each task's stream time, committed beside its input offsets."""
        metadata: dict[TP, str] = {}
        for tp in self._positions if positions is None else positions:
            stream_time = self._tasks.stream_time_of(tp)
            if stream_time is not None:
                metadata[tp] = encode_offset_metadata(stream_time)
        return metadata
