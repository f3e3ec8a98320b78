"""The in-memory partitioner agrees with where the worker's producer puts keyed records.

Records go out through :func:`streamer.kafka.clients.produce` with the worker's producer
settings (``partitioner: murmur2_random``), then are read back with their partitions.
"""

from __future__ import annotations

import pytest

from streamer.kafka.clients import produce
from streamer.partitioner import partition_for_key
from streamer.runtime.client_config import producer_config
from streamer.runtime.config import AppConfig, Guarantee
from streamer.testing.kafka import KafkaCluster
from streamer.testing.kafka.pytest_plugin import TopicFactory
from tests.integration.support import read_to_end

PARTITIONS = 7


@pytest.mark.kafka
def test_keyed_records_land_on_partition_for_key(
    kafka: KafkaCluster, new_topic: TopicFactory
) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)
    worker = producer_config(
        AppConfig(
            app_id="partitioner", bootstrap_servers=bootstrap, guarantee=Guarantee.AT_LEAST_ONCE
        ),
        {},
    )
    assert worker["partitioner"] == "murmur2_random"
    keys = [f"key-{i}".encode() for i in range(200)] + [b"", b"21", "clé-ü".encode()]
    sent = produce(bootstrap, topic, [(key, b"v") for key in keys], config=worker)
    assert sent == len(keys)

    landed = {key: partition for partition, _offset, key, _value in read_to_end(bootstrap, topic)}
    assert len(landed) == len(keys)
    assert {key: partition_for_key(key, PARTITIONS) for key in keys} == landed
    assert len(set(landed.values())) == PARTITIONS
