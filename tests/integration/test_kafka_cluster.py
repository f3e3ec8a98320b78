"""The 3-broker harness: acks=all writes survive a SIGKILLed broker, which then rejoins."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streamer.kafka.admin import KafkaAdmin
from streamer.testing.kafka import KafkaCluster, LocalKafkaCluster
from streamer.testing.kafka.pytest_plugin import TopicFactory

TIMEOUT = 60.0


def produce_acks_all(p: Producer, topic: str, values: list[str]) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for i, value in enumerate(values):
        p.produce(topic, key=str(i).encode(), value=value.encode(), on_delivery=on_delivery)
    assert p.flush(TIMEOUT) == 0, "records still in flight"
    assert not errors, errors


def wait_for(condition_name: str, check: object, timeout: float = TIMEOUT) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {condition_name}"
        time.sleep(0.2)


def test_acks_all_writes_survive_a_killed_broker(
    kafka_cluster: KafkaCluster, new_cluster_topic: TopicFactory
) -> None:
    if not isinstance(kafka_cluster, LocalKafkaCluster):
        pytest.skip("needs a cluster whose brokers the harness can kill")
    topic = new_cluster_topic(partitions=3, config={"min.insync.replicas": "2"})
    admin = KafkaAdmin(kafka_cluster.bootstrap_servers)
    placement = admin.partitions(topic)
    assert all(len(p.replicas) == 3 and len(p.isr) == 3 for p in placement.values())

    p = Producer(
        {
            "bootstrap.servers": kafka_cluster.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 45000,
        }
    )
    produce_acks_all(p, topic, [f"before-{i}" for i in range(30)])

    # Kill the leader of partition 0 (hard: SIGKILL, no clean shutdown).
    leader = placement[0].leader
    index = next(i for i, n in enumerate(kafka_cluster.nodes) if n.node_id == leader)
    victim = kafka_cluster.kill_broker(index)
    assert not victim.is_running
    try:
        # Two of three replicas remain: min.insync.replicas=2 still accepts acks=all.
        produce_acks_all(p, topic, [f"during-{i}" for i in range(30)])
        after_kill = admin.partitions(topic)
        assert all(info.leader != leader for info in after_kill.values())
    finally:
        kafka_cluster.restart_broker(index)

    assert leader in admin.broker_ids()
    wait_for(
        f"broker {leader} back in every ISR",
        lambda: all(leader in info.isr for info in admin.partitions(topic).values()),
    )
    produce_acks_all(p, topic, [f"after-{i}" for i in range(30)])

    c = Consumer(
        {
            "bootstrap.servers": kafka_cluster.bootstrap_servers,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, part, 0) for part in range(3)])
    got: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(got) < 90:
            assert time.monotonic() < deadline, f"read {len(got)} of 90"
            msg = c.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg.value().decode())
    finally:
        c.close()
    expected = [f"{phase}-{i}" for phase in ("before", "during", "after") for i in range(30)]
    assert sorted(got) == sorted(expected), "no record lost or duplicated"


def test_cluster_lists_three_brokers(kafka_cluster: KafkaCluster) -> None:
    assert len(KafkaAdmin(kafka_cluster.bootstrap_servers).broker_ids()) == 3
