"""The single-broker harness against a real Kafka: produce/consume, groups, transactions,
compaction."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, Producer, TopicPartition

from streamer.testing.kafka import KafkaCluster
from streamer.testing.kafka.pytest_plugin import TopicFactory

TIMEOUT = 30.0


def producer(kafka: KafkaCluster, **config: Any) -> Producer:
    return Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 5, **config})


def consumer(kafka: KafkaCluster, group: str | None = None, **config: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": group or f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )


def produce_all(p: Producer, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for key, value in records:
        p.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert p.flush(TIMEOUT) == 0, "records still in flight"
    assert not errors


def read_until(
    c: Consumer, done: Callable[[list[Message]], bool], timeout: float = TIMEOUT
) -> list[Message]:
    """Poll ``c`` until ``done(messages)``; fail on timeout."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"timed out with {len(got)} messages"
        msg = c.poll(0.2)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append(msg)
    return got


def read_to_end(c: Consumer, topic: str, partitions: int = 1) -> list[Message]:
    """Everything in ``topic`` up to its current end (for ``c``'s isolation level)."""
    ends = {
        p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1]
        for p in range(partitions)
    }
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[Message] = []
    deadline = time.monotonic() + TIMEOUT
    positions = dict.fromkeys(ends, 0)
    while any(positions[p] < ends[p] for p in ends):
        assert time.monotonic() < deadline, f"timed out reading {topic}: {positions} / {ends}"
        msg = c.poll(0.2)
        if msg is None:
            # Transaction markers take offsets but are never returned: ask the position.
            for tp in c.position([TopicPartition(topic, p) for p in ends]):
                positions[tp.partition] = max(positions[tp.partition], tp.offset)
            continue
        if msg.error() is not None and msg.error().code() == KafkaError._PARTITION_EOF:
            continue
        assert msg.error() is None, msg.error()
        got.append(msg)
        positions[msg.partition()] = msg.offset() + 1
    return got


def values(messages: Iterable[Message]) -> list[str]:
    return [m.value().decode() for m in messages]


def test_produce_and_consume(kafka: KafkaCluster, new_topic: TopicFactory) -> None:
    topic = new_topic(partitions=2)
    records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(50)]
    produce_all(producer(kafka), topic, records)

    c = consumer(kafka)
    c.subscribe([topic])
    try:
        got = read_until(c, lambda msgs: len(msgs) >= len(records))
    finally:
        c.close()
    assert sorted((m.key(), m.value()) for m in got) == sorted(records)
    # The same key always lands in the same partition.
    by_key: dict[bytes, set[int]] = {}
    for m in got:
        by_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in by_key.values())


def test_consumer_group_splits_partitions(kafka: KafkaCluster, new_topic: TopicFactory) -> None:
    topic = new_topic(partitions=4)
    group = f"group-{uuid.uuid4().hex[:8]}"
    members = [consumer(kafka, group), consumer(kafka, group)]
    for c in members:
        c.subscribe([topic])
    try:
        # Poll both until the group has settled on two partitions each.
        deadline = time.monotonic() + TIMEOUT
        while sorted(len(c.assignment()) for c in members) != [2, 2]:
            assert time.monotonic() < deadline, [c.assignment() for c in members]
            for c in members:
                msg = c.poll(0.1)
                assert msg is None, "nothing was produced yet"
        owned = [{tp.partition for tp in c.assignment()} for c in members]
        assert owned[0] | owned[1] == {0, 1, 2, 3}
        assert not owned[0] & owned[1]

        p = producer(kafka)
        for i in range(40):
            p.produce(topic, value=f"v{i}".encode(), partition=i % 4)
        assert p.flush(TIMEOUT) == 0

        got: list[list[Message]] = [[], []]
        deadline = time.monotonic() + TIMEOUT
        while sum(map(len, got)) < 40:
            assert time.monotonic() < deadline, [len(g) for g in got]
            for i, c in enumerate(members):
                msg = c.poll(0.1)
                if msg is not None:
                    assert msg.error() is None, msg.error()
                    got[i].append(msg)
    finally:
        for c in members:
            c.close()
    for i in range(2):
        assert len(got[i]) == 20, "each member reads its two partitions"
        assert {m.partition() for m in got[i]} == owned[i]
    assert sorted(values(got[0] + got[1])) == sorted(f"v{i}" for i in range(40))


def test_transactions_commit_and_abort(kafka: KafkaCluster, new_topic: TopicFactory) -> None:
    topic = new_topic()
    p = producer(kafka, **{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(TIMEOUT)

    p.begin_transaction()
    p.produce(topic, value=b"committed-1")
    p.produce(topic, value=b"committed-2")
    p.commit_transaction(TIMEOUT)

    p.begin_transaction()
    p.produce(topic, value=b"aborted-1")
    p.flush(TIMEOUT)  # the aborted record really is in the log
    p.abort_transaction(TIMEOUT)

    p.begin_transaction()
    p.produce(topic, value=b"committed-3")
    p.commit_transaction(TIMEOUT)

    committed = consumer(kafka, **{"isolation.level": "read_committed"})
    uncommitted = consumer(kafka, **{"isolation.level": "read_uncommitted"})
    try:
        assert values(read_to_end(committed, topic)) == [
            "committed-1",
            "committed-2",
            "committed-3",
        ]
        # The aborted record is in the log: a read_uncommitted consumer sees it.
        assert values(read_to_end(uncommitted, topic)) == [
            "committed-1",
            "committed-2",
            "aborted-1",
            "committed-3",
        ]
    finally:
        committed.close()
        uncommitted.close()


def test_send_offsets_to_transaction(kafka: KafkaCluster, new_topic: TopicFactory) -> None:
    source, sink = new_topic(), new_topic()
    produce_all(producer(kafka), source, [(b"k", f"in-{i}".encode()) for i in range(10)])

    group = f"txgroup-{uuid.uuid4().hex[:8]}"
    c = consumer(kafka, group, **{"isolation.level": "read_committed"})
    p = producer(kafka, **{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(TIMEOUT)
    c.subscribe([source])
    tp = TopicPartition(source, 0)
    try:
        batch = read_until(c, lambda msgs: len(msgs) >= 6)[:6]
        c.seek(TopicPartition(source, 0, batch[-1].offset() + 1))
        position = [TopicPartition(source, 0, batch[-1].offset() + 1)]

        # An aborted transaction does not commit the group's offsets ...
        p.begin_transaction()
        for m in batch:
            p.produce(sink, value=b"out-" + m.value())
        p.send_offsets_to_transaction(position, c.consumer_group_metadata(), TIMEOUT)
        p.abort_transaction(TIMEOUT)
        assert c.committed([tp], timeout=TIMEOUT)[0].offset == OFFSET_INVALID

        # ... a committed one does, atomically with its output.
        p.begin_transaction()
        for m in batch:
            p.produce(sink, value=b"out-" + m.value())
        p.send_offsets_to_transaction(position, c.consumer_group_metadata(), TIMEOUT)
        p.commit_transaction(TIMEOUT)
        assert c.committed([tp], timeout=TIMEOUT)[0].offset == 6
    finally:
        c.close()

    reader = consumer(kafka, **{"isolation.level": "read_committed"})
    try:
        assert values(read_to_end(reader, sink)) == [f"out-in-{i}" for i in range(6)]
    finally:
        reader.close()


def test_compacted_topic_keeps_latest_value_per_key(
    kafka: KafkaCluster, new_topic: TopicFactory
) -> None:
    topic = new_topic(
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": "100",
        }
    )
    p = producer(kafka)
    keys = [f"key-{i}" for i in range(5)]
    for round_ in range(3):
        produce_all(p, topic, [(k.encode(), f"{k}=v{round_}".encode()) for k in keys])
        time.sleep(0.15)  # let each round land in its own segment

    expected = {k: f"{k}=v2" for k in keys}
    deadline = time.monotonic() + 60
    while True:
        # The active segment is never cleaned: roll it with a record of another key.
        produce_all(p, topic, [(b"roll", b"roll")])
        c = consumer(kafka)
        try:
            log = [(m.key().decode(), m.value().decode()) for m in read_to_end(c, topic)]
        finally:
            c.close()
        data = [(k, v) for k, v in log if k != "roll"]
        if len(data) == len(keys):
            break
        assert time.monotonic() < deadline, f"not compacted after 60 s: {data}"
        time.sleep(0.5)
    assert dict(data) == expected
    assert len(data) == len(dict(data)), "one record per key"
