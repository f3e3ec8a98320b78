"""Small, typed helpers over confluent-kafka's producer and consumer.

These are for tools, demos and tests that move a bounded number of records. The worker
runtime has its own batched, transactional client loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from streamer.errors import StreamerError


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


def produce(
    bootstrap_servers: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    config: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
    partition: int | None = None,
) -> int:
    """Produce ``(key, value)`` pairs with ``acks=all`` and wait for every delivery.

    ``partition`` sends every record to that partition instead of partitioning by key.

    Returns the number delivered; raises :class:`KafkaClientError` naming the first failure.
    """
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "acks": "all", **dict(config or {})}
    )
    errors: list[str] = []
    delivered = 0

    def on_delivery(err: KafkaError | None, _msg: Any) -> None:
        nonlocal delivered
        if err is not None:
            errors.append(str(err))
        else:
            delivered += 1

    for key, value in records:
        while True:
            try:
                if partition is None:
                    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                else:
                    producer.produce(
                        topic, key=key, value=value, partition=partition, on_delivery=on_delivery
                    )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    if errors:
        msg = f"producing to {topic!r} failed: {errors[0]} ({len(errors)} records failed)"
        raise KafkaClientError(msg)
    if remaining:
        msg = f"{remaining} records to {topic!r} were not delivered within {timeout} s"
        raise KafkaClientError(msg)
    return delivered


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
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **dict(config or {}),
        }
    )
    records: list[ConsumedRecord] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while len(records) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=count - len(records), timeout=0.5):
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
