"""Small, typed helpers over confluent-kafka's producer and consumer.

These are for tools, demos and tests that move a bounded number of records. The worker
runtime has its own batched, transactional client loop. Like every streamer client, they log
through the folded ``streamer.librdkafka`` logger, and a failed authentication or TLS
handshake fails them with one line naming it (:mod:`streamer.kafka.diagnostics`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from streamer.errors import StreamerError
from streamer.kafka.diagnostics import ClientErrors, with_diagnostics

KEYED_PLACEMENT = {"partitioner": "murmur2_random"}
"""The helpers place keyed records as Kafka's Java clients and the worker's producer do
(librdkafka's own default, ``consistent_random``, places them elsewhere), so that a store's
key is found on the partition that ``streamer.partitioner`` computes for it."""


class KafkaClientError(StreamerError):
    """A produce or consume through the helper clients failed."""


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...]


def _check(errors: ClientErrors) -> None:
    if errors.failure is not None:
        raise KafkaClientError(errors.failure)


class _DeliveryTally:
    """Counts a producer's delivery reports; ``errors`` keeps every failure's message."""

    def __init__(self) -> None:
        self.delivered = 0
        self.errors: list[str] = []

    def on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.delivered += 1

    def raise_if_failed(self, topic: str, remaining: int, timeout: float) -> None:
        """Raise :class:`KafkaClientError` if a record failed or was still queued at flush."""
        if self.errors:
            msg = (
                f"producing to {topic!r} failed: {self.errors[0]} "
                f"({len(self.errors)} records failed)"
            )
            raise KafkaClientError(msg)
        if remaining:
            msg = f"{remaining} records to {topic!r} were not delivered within {timeout} s"
            raise KafkaClientError(msg)


def _produce_one(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    tally: _DeliveryTally,
    *,
    backoff: float,
    extra: Mapping[str, Any],
) -> None:
    """Queue one record, serving delivery reports for ``backoff`` s while the queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=tally.on_delivery, **extra)
            return
        except BufferError:
            producer.poll(backoff)


def produce(
    bootstrap_servers: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    config: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
    partition: int | None = None,
    timestamp: int | None = None,
) -> int:
    """Produce ``(key, value)`` pairs with ``acks=all`` and wait for every delivery. Keyed
    records are placed by Kafka's murmur2 (:data:`KEYED_PLACEMENT`).

    ``partition`` sends every record to that partition instead of partitioning by key;
    ``timestamp`` (ms since the epoch) stamps every record instead of the wall clock.

    Returns the number delivered; raises :class:`KafkaClientError` naming the first failure.
    """
    conf, errors = with_diagnostics(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            **KEYED_PLACEMENT,
            **dict(config or {}),
        }
    )
    producer = Producer(conf)
    tally = _DeliveryTally()
    extra: dict[str, Any] = {}
    if partition is not None:
        extra["partition"] = partition
    if timestamp is not None:
        extra["timestamp"] = timestamp
    for key, value in records:
        _produce_one(producer, topic, key, value, tally, backoff=0.1, extra=extra)
        producer.poll(0)
        _check(errors)
    remaining = producer.flush(timeout)
    _check(errors)
    tally.raise_if_failed(topic, remaining, timeout)
    return tally.delivered


def _wait_until_due(producer: Producer, due_ms: int, stop: threading.Event | None) -> None:
    """Serve delivery reports until the wall clock reaches ``due_ms`` or ``stop`` is set."""
    while (wait := due_ms / 1000 - time.time()) > 0:
        if stop is not None and stop.is_set():
            return
        producer.poll(min(wait, 0.05))


def produce_paced(
    bootstrap_servers: str,
    topic: str,
    records: Iterable[tuple[int | None, bytes | None, bytes | None]],
    *,
    config: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[int], None] | None = None,
    progress_interval: float = 0.5,
    timeout: float = 30.0,
) -> int:
    """Produce ``(due_ms, key, value)`` records in order, none before its due time.

    ``due_ms`` is a wall-clock time in ms since the epoch (None: at once), so records whose
    due times are their event times go out in real time and the rate is theirs. A producer
    that falls behind sends at once until it catches up. ``on_progress(sent)`` is called
    about every ``progress_interval`` seconds and once at the end; setting ``stop`` ends
    early. Keyed records are placed by Kafka's murmur2 (:data:`KEYED_PLACEMENT`). Returns
    the number delivered; raises :class:`KafkaClientError` on failures.
    """
    conf, errors = with_diagnostics(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "linger.ms": 5,
            **KEYED_PLACEMENT,
            **dict(config or {}),
        }
    )
    producer = Producer(conf)
    tally = _DeliveryTally()
    sent = 0
    next_progress = time.monotonic() + progress_interval
    for due_ms, key, value in records:
        if stop is not None and stop.is_set():
            break
        if due_ms is not None:
            _wait_until_due(producer, due_ms, stop)
        _produce_one(producer, topic, key, value, tally, backoff=0.05, extra={})
        sent += 1
        producer.poll(0)
        _check(errors)
        if tally.errors:
            break
        if on_progress is not None and time.monotonic() >= next_progress:
            next_progress = time.monotonic() + progress_interval
            on_progress(sent)
    remaining = producer.flush(timeout)
    if on_progress is not None:
        on_progress(sent)
    _check(errors)
    tally.raise_if_failed(topic, remaining, timeout)
    return tally.delivered


class TopicTail:
    """Follows every partition of ``topic`` from its first record, reading committed
    records only (``read_committed``), without joining a consumer group.

    Partitions added to the topic after construction are not followed.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        config: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.topic = topic
        conf, self._errors = with_diagnostics(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": f"streamer-tail-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                **dict(config or {}),
            }
        )
        self._consumer = Consumer(conf)
        try:
            metadata = self._consumer.list_topics(topic, timeout=timeout)
            info = metadata.topics.get(topic)
            if info is None or info.error is not None or not info.partitions:
                msg = f"topic {topic!r} is not available: {info.error if info else 'not found'}"
                raise KafkaClientError(msg)
            self._consumer.assign(
                [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(info.partitions)]
            )
        except BaseException:
            self._consumer.close()
            raise

    def poll(self, max_records: int = 1000, timeout: float = 0.1) -> list[ConsumedRecord]:
        """The records that arrived, up to ``max_records``; waits at most ``timeout`` for the
        first one and returns as soon as it is there."""
        out: list[ConsumedRecord] = []
        first = self._consumer.poll(timeout)
        _check(self._errors)
        if first is None:
            return out
        more = (
            self._consumer.consume(num_messages=max_records - 1, timeout=0)
            if max_records > 1
            else []
        )
        for message in [first, *more]:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                msg = f"reading {self.topic!r} failed: {error.str()}"
                raise KafkaClientError(msg)
            out.append(_to_record(message))
        return out

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def consume(
    bootstrap_servers: str,
    topic: str,
    count: int,
    *,
    group_id: str,
    timeout: float = 30.0,
    config: Mapping[str, Any] | None = None,
) -> list[ConsumedRecord]:
    """Read ``count`` records of ``topic`` from the earliest offset, as group ``group_id``.

    Raises :class:`KafkaClientError` if fewer arrive within ``timeout`` seconds.
    """
    conf, errors = with_diagnostics(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **dict(config or {}),
        }
    )
    consumer = Consumer(conf)
    records: list[ConsumedRecord] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while len(records) < count and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=count - len(records), timeout=0.5)
            _check(errors)
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                records.append(_to_record(message))
    finally:
        consumer.close()
    if len(records) < count:
        msg = f"read {len(records)} of {count} records from {topic!r} within {timeout} s"
        raise KafkaClientError(msg)
    return records


def _to_record(message: Any) -> ConsumedRecord:
    headers = message.headers() or ()
    return ConsumedRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
        timestamp=message.timestamp()[1],
        headers=tuple((str(k), v if v is None else bytes(v)) for k, v in headers),
    )
