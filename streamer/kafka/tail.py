"""The last records of a topic: for a console that shows what an app wrote lately.

Reads committed records only (``read_committed``), without joining a consumer group: each
partition is assigned from ``count`` records before its end, read up to that end, and the
records of all partitions are merged by timestamp. A partition that holds transaction
markers yields fewer than ``count`` records; the newest ones are kept.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from streamer.kafka.clients import ConsumedRecord, KafkaClientError, _check, _to_record
from streamer.kafka.diagnostics import with_diagnostics


def last_records(
    bootstrap_servers: str,
    topic: str,
    count: int,
    *,
    config: Mapping[str, Any] | None = None,
    timeout: float = 5.0,
) -> list[ConsumedRecord]:
    """Up to ``count`` of the newest committed records of ``topic``, oldest first."""
    conf, errors = with_diagnostics(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"streamer-last-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            **dict(config or {}),
        }
    )
    consumer = Consumer(conf)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            msg = f"topic {topic!r} is not available: {info.error if info else 'not found'}"
            raise KafkaClientError(msg)
        assigned = []
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout, cached=False
            )
            if high > low:
                assigned.append(TopicPartition(topic, partition, max(low, high - count)))
        if not assigned:
            return []
        consumer.assign(assigned)
        records = _read_to_end(consumer, len(assigned), time.monotonic() + timeout)
        _check(errors)
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    return records[-count:]


def _read_to_end(consumer: Any, partitions: int, deadline: float) -> list[ConsumedRecord]:
    records: list[ConsumedRecord] = []
    at_end: set[int] = set()
    while len(at_end) < partitions and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=500, timeout=0.2):
            error = message.error()
            if error is None:
                records.append(_to_record(message))
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
            else:
                msg = f"reading {message.topic()!r} failed: {error.str()}"
                raise KafkaClientError(msg)
    return records


__all__ = ["last_records"]
