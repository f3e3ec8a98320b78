"""A real Apache Kafka (KRaft) broker or cluster for tests, started from Maven-resolved jars.

Needs Java 17+ and Maven; no Docker. See :class:`LocalKafkaCluster` and the pytest fixtures
in :mod:`streamer.testing.kafka.pytest_plugin` (``kafka``, ``kafka_cluster``, ``new_topic``,
``new_cluster_topic``, ``secure_kafka``). ``LocalKafkaCluster(security=KafkaSecurity())``
starts a SASL_SSL cluster with ACLs; :class:`SecuredKafka` creates its users and grants.
"""

from __future__ import annotations

from streamer.testing.kafka.backends import (
    ExternalKafka,
    KafkaCluster,
    TestcontainersKafka,
    kafka_for_tests,
)
from streamer.testing.kafka.cluster import LocalKafkaCluster
from streamer.testing.kafka.jars import resolve_broker_jars
from streamer.testing.kafka.node import KafkaNode
from streamer.testing.kafka.secured import SecuredKafka
from streamer.testing.kafka.security import Credentials, KafkaSecurity

__all__ = [
    "Credentials",
    "ExternalKafka",
    "KafkaCluster",
    "KafkaNode",
    "KafkaSecurity",
    "LocalKafkaCluster",
    "SecuredKafka",
    "TestcontainersKafka",
    "kafka_for_tests",
    "resolve_broker_jars",
]
