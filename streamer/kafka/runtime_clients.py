"""The worker's Kafka clients: a restore consumer, a (transactional) producer, and the error
type and conversions they share with :mod:`streamer.kafka.group_consumer`. With that module,
the only place the runtime touches confluent-kafka.

Partitions are plain ``(topic, partition)`` tuples outside this module. Messages are handed
over as :class:`Message` objects that expose only what the runtime reads.

Every client logs through the folded ``streamer.librdkafka`` logger and checks its error
events (:mod:`streamer.kafka.diagnostics`): a failed authentication or TLS handshake, and a
missing ACL, end the worker with a fatal :class:`KafkaRuntimeError` naming the cause.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from streamer.errors import StreamerError
from streamer.kafka.diagnostics import (
    SLICE_S,
    ClientErrors,
    authorization_code,
    not_authorized,
    principal_of,
    with_diagnostics,
)
from streamer.kafka.types import TP, Message

log = logging.getLogger(__name__)


class KafkaRuntimeError(StreamerError):
    """A Kafka client operation failed. ``retriable``/``abortable``/``fatal`` classify it;
    ``denied`` (always fatal) means the cluster refused us: authentication, TLS or a missing
    ACL, which no restart can fix."""

    def __init__(
        self,
        message: str,
        *,
        fatal: bool = False,
        abortable: bool = False,
        retriable: bool = False,
        denied: bool = False,
    ) -> None:
        super().__init__(message)
        self.fatal = fatal or denied
        self.abortable = abortable
        self.retriable = retriable
        self.denied = denied


def check_failure(errors: ClientErrors) -> None:
    """Raise a fatal :class:`KafkaRuntimeError` if the client reported a failure."""
    if errors.failure is not None:
        raise KafkaRuntimeError(errors.failure, denied=True)


def wrap_error(
    exc: KafkaException,
    what: str,
    acl: tuple[str, str | None] | None = None,
    principal: str | None = None,
) -> KafkaRuntimeError:
    """A confluent-kafka exception as our error, classified and saying what failed.
    ``acl`` (operation, resource name) names what a missing ACL denied: such an error is
    fatal, and its message says which ACL is missing."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and acl is not None:
        denied = not_authorized(error.code(), acl[0], acl[1], principal=principal)
        if denied is not None:
            return KafkaRuntimeError(denied, denied=True)
    if isinstance(error, KafkaError):
        return KafkaRuntimeError(
            f"{what} failed: {error.str()} ({error.name()})",
            fatal=bool(error.fatal()),
            abortable=bool(error.txn_requires_abort()),
            retriable=bool(error.retriable()),
        )
    return KafkaRuntimeError(f"{what} failed: {exc}")


def offsets_with_metadata(
    offsets: Mapping[TP, int], metadata: Mapping[TP, str] | None
) -> list[TopicPartition]:
    meta = metadata or {}
    return [TopicPartition(t, p, o, metadata=meta.get((t, p))) for (t, p), o in offsets.items()]


_LEADER_PENDING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def _leader_pending(exc: KafkaException) -> bool:
    """True for the errors of a partition whose leader is not known yet (a new topic)."""
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in _LEADER_PENDING)


def tps_of(partitions: Iterable[TopicPartition]) -> list[TP]:
    """``(topic, partition)`` tuples of confluent-kafka's TopicPartition objects."""
    return [(p.topic, p.partition) for p in partitions]


class RestoreConsumer:
    """A group-less consumer that reads changelog and global-table partitions by hand."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        conf = dict(config)
        conf.update({"enable.partition.eof": True, "enable.auto.commit": False})
        conf.setdefault("group.id", "streamer-restore-unused")
        self._principal = principal_of(conf)
        conf, self._errors = with_diagnostics(conf)
        self._consumer = Consumer(conf)
        self._assigned: dict[TP, int] = {}

    def end_offsets(self, partitions: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
        """High watermarks (the log end, or the last stable offset for read_committed).

        A retriable error (a partition whose leader is still being elected, as right after
        its topic was created) is asked again until ``timeout`` runs out.
        """
        deadline = time.monotonic() + timeout
        result: dict[TP, int] = {}
        for topic, partition in partitions:
            while True:
                left = max(0.1, deadline - time.monotonic())
                try:
                    _low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=left
                    )
                    break
                except KafkaException as exc:
                    error = wrap_error(
                        exc,
                        f"reading the end offset of {topic}[{partition}]",
                        ("DESCRIBE", topic),
                        self._principal,
                    )
                    if error.fatal or not _leader_pending(exc) or time.monotonic() >= deadline:
                        raise error from exc
                    log.info("%s; asking again", error)
                    time.sleep(0.1)
            result[(topic, partition)] = high
        return result

    def add(self, partition: TP, offset: int | None) -> None:
        """Start reading ``partition`` at ``offset`` (None: the beginning)."""
        start = OFFSET_BEGINNING if offset is None else offset
        self._consumer.incremental_assign([TopicPartition(partition[0], partition[1], start)])
        self._assigned[partition] = start

    def remove(self, partitions: Iterable[TP]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions if (t, p) in self._assigned]
        if tps:
            self._consumer.incremental_unassign(tps)
        for tp in tps:
            self._assigned.pop((tp.topic, tp.partition), None)

    def consume(self, max_records: int, timeout: float) -> tuple[list[Message], dict[TP, int]]:
        """A batch of records, and the partitions that reported end-of-partition, each with
        the offset it reached: past every record handed out before, and past the commit
        markers of transactions (which no record's offset shows)."""
        if not self._assigned:
            return [], {}
        try:
            messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        except KafkaException as exc:
            raise wrap_error(exc, "restore consume") from exc
        check_failure(self._errors)
        records: list[Message] = []
        at_end: dict[TP, int] = {}
        for message in messages:
            error = message.error()
            if error is None:
                records.append(cast(Message, message))
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end[(str(message.topic()), int(message.partition() or 0))] = int(
                    message.offset() or 0
                )
            else:
                denied = not_authorized(
                    error.code(), "READ", message.topic(), principal=self._principal
                )
                if denied is not None:
                    raise KafkaRuntimeError(denied, denied=True)
                msg = f"restore consumer error: {error.str()}"
                raise KafkaRuntimeError(msg, fatal=bool(error.fatal()))
        return records, at_end

    def close(self) -> None:
        self._consumer.close()


class DeliveryGroup:
    """Records sent between two :meth:`OutputProducer.mark` calls, counted as sent and as
    reported; ``done`` once closed and every one has its delivery report."""

    __slots__ = ("_on_failure", "closed", "reported", "sent")

    def __init__(self, on_failure: Callable[[KafkaError, Any], None]) -> None:
        self._on_failure = on_failure
        self.sent = 0
        self.reported = 0
        self.closed = False

    def report(self, err: KafkaError | None, message: Any) -> None:
        """The delivery callback of each record of the group (served by ``poll``)."""
        self.reported += 1
        if err is not None:
            self._on_failure(err, message)

    @property
    def done(self) -> bool:
        return self.closed and self.reported >= self.sent


class OutputProducer:
    """The worker's producer. Transactional when ``transactional.id`` is configured.

    Transactional, only failed deliveries are reported back (``delivery.report.only.error``),
    so a successful record costs no Python callback: the transaction's commit says all were
    delivered. Otherwise every record is reported to the :class:`DeliveryGroup` it was sent
    in, so the worker can commit an interval's offsets once that interval's records are
    delivered (:meth:`mark`) without waiting for later ones. Failures are kept and raised
    by :meth:`check_errors` at the next flush or commit. A delivery refused for a missing
    WRITE ACL makes the next commit, flush or failed transaction call raise a fatal error
    naming the topic, rather than the transaction error it causes.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        conf = dict(config)
        self.transactional = "transactional.id" in config
        conf["delivery.report.only.error"] = self.transactional
        conf["on_delivery"] = self._on_delivery
        self._principal = principal_of(conf)
        self._transactional_id = conf.get("transactional.id")
        conf, self._client_errors = with_diagnostics(conf)
        self._producer = Producer(conf)
        self._produce = self._producer.produce
        self._errors: list[str] = []
        self._denied: list[str] = []
        self._group: DeliveryGroup | None = None
        if not self.transactional:
            self._start_group()

    def _start_group(self) -> None:
        self._group = group = DeliveryGroup(self._on_delivery)
        self._produce = functools.partial(self._producer.produce, on_delivery=group.report)

    def mark(self) -> DeliveryGroup:
        """Close the group of records sent since the last mark and return it; the records
        sent from now on go to a new group. At-least-once (non-transactional) only."""
        group = self._group
        if group is None:
            msg = "a transactional producer has no delivery groups: its commit delivers"
            raise KafkaRuntimeError(msg, fatal=True)
        group.closed = True
        self._start_group()
        return group

    def _on_delivery(self, err: KafkaError | None, message: Any) -> None:
        if err is not None:
            self._errors.append(f"{message.topic()}[{message.partition()}]: {err.str()}")
            denied = not_authorized(err.code(), "WRITE", message.topic(), principal=self._principal)
            if denied is not None and denied not in self._denied:
                self._denied.append(denied)

    def _failed(self, exc: KafkaException, what: str, acl: tuple[str, str | None]) -> Exception:
        """The error to raise for a failed call: a refused WRITE (seen in delivery reports
        or the log), a missing ACL the call's error names, or a failed authentication come
        first, since they are the cause; else the call's own error."""
        with contextlib.suppress(KafkaException):  # a fatal error raises here too
            self._producer.poll(0)  # serve delivery reports and error events
        denied = self._denied_write()
        if denied is not None:
            return KafkaRuntimeError(denied, denied=True)
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError):
            code = authorization_code(error)
            line = not_authorized(code, acl[0], acl[1], principal=self._principal)
            if line is not None:
                return KafkaRuntimeError(line, denied=True)
        if self._client_errors.failure is not None:
            return KafkaRuntimeError(self._client_errors.failure, denied=True)
        return wrap_error(exc, what, acl, self._principal)

    def _denied_write(self) -> str | None:
        if self._denied:
            return self._denied[0]
        topics = self._client_errors.denied_topics
        if topics:
            code = KafkaError.TOPIC_AUTHORIZATION_FAILED
            return not_authorized(code, "WRITE", topics[0], principal=self._principal)
        return None

    def init_transactions(self, timeout: float = 60.0) -> None:
        """Get the producer id (fencing older producers of the same transactional id).

        Asked in slices: a timed-out ``init_transactions`` may be called again, and between
        slices a failed authentication or TLS handshake ends the wait at once."""
        deadline = time.monotonic() + timeout
        acl = ("WRITE", self._transactional_id)
        while True:
            left = max(0.1, min(4 * SLICE_S, deadline - time.monotonic()))
            try:
                self._producer.init_transactions(left)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                again = isinstance(error, KafkaError) and not error.fatal()
                if isinstance(error, KafkaError):
                    again = again and (error.retriable() or error.code() == KafkaError._TIMED_OUT)
                if not again or time.monotonic() >= deadline:
                    raise self._failed(exc, "init_transactions", acl) from exc
                self._producer.poll(0)
                check_failure(self._client_errors)

    def begin(self) -> None:
        try:
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise self._failed(exc, "begin_transaction", ("WRITE", self._transactional_id)) from exc

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
    ) -> None:
        """Queue one record; a full local queue is drained (poll) and retried, never dropped."""
        group = self._group
        if group is not None:
            group.sent += 1  # reports are served by poll, on this thread: none can come first
        if partition is None and not headers:  # the common case, kept short
            try:
                self._produce(topic, value, key, timestamp=timestamp)
                return
            except BufferError:
                pass  # retried below, after serving delivery reports
            except KafkaException as exc:
                raise self._failed(exc, f"produce to {topic}", ("WRITE", topic)) from exc
        while True:
            try:
                if partition is None:
                    if headers:
                        self._produce(topic, value, key, timestamp=timestamp, headers=list(headers))
                    else:
                        self._produce(topic, value, key, timestamp=timestamp)
                elif headers:
                    self._produce(
                        topic, value, key, partition, timestamp=timestamp, headers=list(headers)
                    )
                else:
                    self._produce(topic, value, key, partition, timestamp=timestamp)
                return
            except BufferError:
                # The local queue is full: serve delivery reports, then try again.
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise self._failed(exc, f"produce to {topic}", ("WRITE", topic)) from exc

    def poll(self) -> None:
        try:
            self._producer.poll(0)
        except KafkaException as exc:
            raise self._failed(exc, "producer poll", ("WRITE", self._transactional_id)) from exc
        if self._client_errors.failure is not None:
            raise KafkaRuntimeError(self._client_errors.failure, denied=True)

    def commit(
        self,
        offsets: Mapping[TP, int],
        group_metadata: Any,
        metadata: Mapping[TP, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Add consumer ``offsets`` (with their metadata) to the open transaction; commit it."""
        tps = offsets_with_metadata(offsets, metadata)
        try:
            if tps:
                self._producer.send_offsets_to_transaction(tps, group_metadata, timeout)
            self._producer.commit_transaction(timeout)
        except KafkaException as exc:
            raise self._failed(exc, "commit_transaction", ("READ", None)) from exc
        self.check_errors()

    def abort(self, timeout: float = 60.0) -> None:
        try:
            self._producer.abort_transaction(timeout)
        except KafkaException as exc:
            raise self._failed(exc, "abort_transaction", ("WRITE", self._transactional_id)) from exc
        self._errors.clear()

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            msg = f"{remaining} records were not delivered within {timeout} s"
            raise KafkaRuntimeError(msg, retriable=True)
        self.check_errors()

    def check_errors(self) -> None:
        denied = self._denied_write()
        if denied is not None:
            raise KafkaRuntimeError(denied, denied=True)
        check_failure(self._client_errors)
        if self._errors:
            errors, self._errors = self._errors, []
            msg = f"{len(errors)} records failed delivery, first: {errors[0]}"
            raise KafkaRuntimeError(msg, abortable=self.transactional)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
