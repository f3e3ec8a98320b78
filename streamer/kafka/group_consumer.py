"""The worker's consumer-group member: batches of records and assignment changes.

Part of the Kafka edge (with :mod:`streamer.kafka.runtime_clients`): the only other place
the runtime touches confluent-kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamer.kafka.diagnostics import (
    authorization_code,
    not_authorized,
    principal_of,
    with_diagnostics,
)
from streamer.kafka.runtime_clients import (
    KafkaRuntimeError,
    check_failure,
    offsets_with_metadata,
    tps_of,
    wrap_error,
)
from streamer.kafka.types import TP, Message

log = logging.getLogger(__name__)

_REFUSED_BY_A_REBALANCE = frozenset(
    {
        KafkaError.STALE_MEMBER_EPOCH,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)
"""Offset commit errors of a member whose assignment is changing: the next commit, after
the consumer has caught up with the group, succeeds."""


class GroupConsumer:
    """A consumer-group member that hands over batches and reports assignment changes.

    Rebalance callbacks run inside :meth:`consume`, on the caller's thread. ``on_assigned``
    runs after the partitions are added to the assignment (so they can be paused);
    ``on_revoked`` runs before they are removed (so work on them can be committed);
    ``on_lost`` runs when they are already gone.

    A failed authentication or TLS handshake, and a missing READ ACL on the group or on a
    topic, end :meth:`consume` with a fatal :class:`KafkaRuntimeError` naming the cause.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        on_assigned: Callable[[list[TP]], None],
        on_revoked: Callable[[list[TP]], None],
        on_lost: Callable[[list[TP]], None],
    ) -> None:
        self._group = str(config.get("group.id", ""))
        self._principal = principal_of(config)
        conf, self._errors = with_diagnostics(config)
        self._consumer = Consumer(conf)
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._on_lost = on_lost

    def subscribe(self, topics: Sequence[str]) -> None:
        def assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            consumer.incremental_assign(partitions)
            self._on_assigned(tps_of(partitions))

        def revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self._on_revoked(tps_of(partitions))
            consumer.incremental_unassign(partitions)

        def lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self._on_lost(tps_of(partitions))
            consumer.incremental_unassign(partitions)

        self._consumer.subscribe(list(topics), on_assign=assign, on_revoke=revoke, on_lost=lost)

    def consume(self, max_records: int, timeout: float) -> list[Message]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds; per-partition
        errors other than EOF raise.

        One batch call with a short timeout. (Measured: a zero-timeout batch followed by a
        single-message ``poll`` to wait for the first record starved the fetcher under a
        steady trickle, adding seconds of latency; keep the batch call.)
        """
        consumer = self._consumer
        try:
            messages = consumer.consume(num_messages=max_records, timeout=timeout)
        except KafkaException as exc:
            raise wrap_error(exc, "consume", ("READ", self._group), self._principal) from exc
        check_failure(self._errors)
        good: list[Message] = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(cast(Message, message))
            elif error.code() != KafkaError._PARTITION_EOF:
                self._raise_if_denied(error, message.topic())
                if error.fatal():
                    msg = f"consumer failed: {error.str()}"
                    raise KafkaRuntimeError(msg, fatal=True)
                log.warning("consumer error: %s", error.str())
        return good

    def _raise_if_denied(self, error: KafkaError, topic: str | None) -> None:
        """A missing READ ACL on a topic or the group is fatal: retrying cannot help."""
        code = authorization_code(error)
        name = self._group if code == KafkaError.GROUP_AUTHORIZATION_FAILED else topic
        denied = not_authorized(code, "READ", name, principal=self._principal)
        if denied is not None:
            raise KafkaRuntimeError(denied, denied=True)

    def pause(self, partitions: Iterable[TP]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions]
        if tps:
            self._consumer.pause(tps)

    def resume(self, partitions: Iterable[TP]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions]
        if tps:
            self._consumer.resume(tps)

    def seek(self, partition: TP, offset: int) -> None:
        self._consumer.seek(TopicPartition(partition[0], partition[1], offset))

    def committed(self, partitions: Iterable[TP], timeout: float = 30.0) -> dict[TP, int]:
        """Committed offsets; partitions with none are left out."""
        return {
            tp: o for tp, (o, _meta) in self.committed_with_metadata(partitions, timeout).items()
        }

    def committed_with_metadata(
        self, partitions: Iterable[TP], timeout: float = 30.0
    ) -> dict[TP, tuple[int, str]]:
        """Committed offsets with the metadata string committed beside each."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        if not tps:
            return {}
        try:
            result = self._consumer.committed(tps, timeout=timeout)
        except KafkaException as exc:
            raise wrap_error(exc, "fetching committed offsets") from exc
        return {
            (tp.topic, tp.partition): (tp.offset, tp.metadata or "")
            for tp in result
            if tp.offset >= 0
        }

    def positions(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """The next offset the application will see per partition; partitions without a
        valid position are left out. After the last record of a transaction this is past
        its commit marker, which ``offset + 1`` of that record is not."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        if not tps:
            return {}
        try:
            result = self._consumer.position(tps)
        except KafkaException as exc:
            raise wrap_error(exc, "fetching positions") from exc
        return {(tp.topic, tp.partition): tp.offset for tp in result if tp.offset >= 0}

    def log_start_offsets(self, partitions: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
        result: dict[TP, int] = {}
        for topic, partition in partitions:
            low, _high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            result[(topic, partition)] = low
        return result

    def commit(self, offsets: Mapping[TP, int], metadata: Mapping[TP, str] | None = None) -> None:
        """Commit ``offsets`` (next offsets to read) synchronously, each with its metadata."""
        if not offsets:
            return
        tps = offsets_with_metadata(offsets, metadata)
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            error = wrap_error(exc, "offset commit")
            code = exc.args[0].code() if exc.args and isinstance(exc.args[0], KafkaError) else None
            if code in _REFUSED_BY_A_REBALANCE:
                error.retriable = True
            raise error from exc

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def member_id(self) -> str:
        return str(self._consumer.memberid() or "")

    def close(self) -> None:
        """Leave the group (revoke callbacks run first) and close."""
        self._consumer.close()
