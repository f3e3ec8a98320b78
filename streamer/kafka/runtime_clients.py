"""The worker's Kafka clients: a restore consumer, and the error type and conversions it
shares with :mod:`streamer.kafka.group_consumer` and :mod:`streamer.kafka.output_producer`
(the worker's producer). With those modules, the only place the runtime touches
confluent-kafka.

Partitions are plain ``(topic, partition)`` tuples outside this module. Messages are handed
over as :class:`Message` objects that expose only what the runtime reads.

Every client logs through the folded ``streamer.librdkafka`` logger and checks its error
events (:mod:`streamer.kafka.diagnostics`): a failed authentication or TLS handshake, and a
missing ACL, end the worker with a fatal :class:`KafkaRuntimeError` naming the cause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streamer.errors import StreamerError
from streamer.kafka.diagnostics import (
    ClientErrors,
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
