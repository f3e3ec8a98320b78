"""Where test Kafka comes from: an external cluster, a container, or local jars.

:func:`kafka_for_tests` picks, in this order:

1. ``STREAMER_BOOTSTRAP_SERVERS`` is set: :class:`ExternalKafka` (start/stop do nothing);
2. ``STREAMER_KAFKA_BACKEND=testcontainers`` and a Docker daemon answers:
   :class:`TestcontainersKafka` (single broker only);
3. otherwise :class:`~streamer.testing.kafka.cluster.LocalKafkaCluster`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol, runtime_checkable

from streamer.errors import KafkaHarnessError
from streamer.kafka.admin import KafkaAdmin, KafkaAdminError
from streamer.testing.kafka.cluster import LocalKafkaCluster

log = logging.getLogger(__name__)

BOOTSTRAP_ENV = "STREAMER_BOOTSTRAP_SERVERS"
BACKEND_ENV = "STREAMER_KAFKA_BACKEND"
IMAGE_ENV = "STREAMER_KAFKA_IMAGE"
# Confluent Platform 8.1 ships Apache Kafka 4.1.
DEFAULT_IMAGE = "confluentinc/cp-kafka:8.1.0"


@runtime_checkable
class KafkaCluster(Protocol):
    """What tests need from a Kafka cluster."""

    @property
    def bootstrap_servers(self) -> str: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...


class ExternalKafka:
    """A cluster someone else runs; ``start`` only checks that it answers."""

    def __init__(self, bootstrap_servers: str, *, brokers: int = 1, timeout: float = 30.0) -> None:
        self._bootstrap_servers = bootstrap_servers
        self.brokers = brokers
        self.timeout = timeout

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap_servers

    def start(self) -> ExternalKafka:
        try:
            KafkaAdmin(self._bootstrap_servers).wait_until_ready(self.brokers, self.timeout)
        except KafkaAdminError as exc:
            msg = f"the Kafka cluster in ${BOOTSTRAP_ENV} is not usable: {exc}"
            raise KafkaHarnessError(msg) from exc
        return self

    def stop(self) -> None:
        """Nothing to do: the cluster is not ours."""

    def __repr__(self) -> str:
        return f"ExternalKafka({self._bootstrap_servers})"


def docker_available() -> bool:
    """True when the Docker daemon answers a ping (the docker package comes with
    testcontainers)."""
    try:
        import docker

        client = docker.from_env(timeout=5)  # type: ignore[attr-defined]
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class TestcontainersKafka:
    """A single Kafka broker in a Docker container, through testcontainers (KRaft mode).

    The image defaults to ``$STREAMER_KAFKA_IMAGE`` or :data:`DEFAULT_IMAGE`. Not exercised
    by streamer's own test suite, which runs where there is no Docker.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, image: str | None = None) -> None:
        self.image = image or os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)
        self._container: Any = None
        self._bootstrap_servers: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self._bootstrap_servers is None:
            msg = "the Kafka container is not started"
            raise KafkaHarnessError(msg)
        return self._bootstrap_servers

    def start(self) -> TestcontainersKafka:
        if self._container is not None:
            return self
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError as exc:
            msg = "testcontainers is not installed: pip install 'testcontainers>=4.4'"
            raise KafkaHarnessError(msg) from exc
        container = KafkaContainer(self.image).with_kraft()
        container.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        container.with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        container.start()
        self._container = container
        self._bootstrap_servers = str(container.get_bootstrap_server())
        return self

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None
            self._bootstrap_servers = None

    def __repr__(self) -> str:
        return f"TestcontainersKafka({self.image})"


def kafka_for_tests(brokers: int = 1) -> KafkaCluster:
    """The Kafka cluster tests should use (not yet started; call ``start()``)."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        return ExternalKafka(external, brokers=brokers)
    backend = os.environ.get(BACKEND_ENV, "local").strip().lower()
    if backend == "testcontainers":
        if brokers > 1:
            log.info("testcontainers backend runs one broker; using local jars for %d", brokers)
        elif docker_available():
            return TestcontainersKafka()
        else:
            log.warning(
                "%s=testcontainers but no Docker daemon answers; using local jars", BACKEND_ENV
            )
    elif backend not in ("", "local"):
        msg = f"unknown {BACKEND_ENV}={backend!r}: use 'local' or 'testcontainers'"
        raise KafkaHarnessError(msg)
    return LocalKafkaCluster(brokers)
