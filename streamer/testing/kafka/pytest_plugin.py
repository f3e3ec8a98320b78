"""pytest fixtures for tests against a real Kafka (``pip install "streamer[testing]"``).

Not registered on install: load it with
``pytest_plugins = ["streamer.testing.kafka.pytest_plugin"]`` in a top-level conftest.py.

Fixtures:

``kafka``              session-wide single broker (a :class:`KafkaCluster`)
``kafka_cluster``      session-wide 3-broker cluster; tests that kill brokers restart them
                       (a broker left dead is restarted after the test, with a warning)
``new_topic``          factory creating uniquely named topics on ``kafka``
``new_cluster_topic``  the same on ``kafka_cluster`` (replication factor 3 by default)
``secure_kafka``       session-wide single broker with a SASL_SSL listener (SCRAM-SHA-512,
                       TLS from a throwaway CA) and ACLs enforced: a
                       :class:`~streamer.testing.kafka.secured.SecuredKafka` with the
                       bootstrap servers, the CA file, the admin's credentials, and
                       ``create_user(name, acls=...)`` (needs the ``cryptography`` package)

Tests using them get the ``kafka`` marker (and ``cluster`` for the 3-broker ones,
``secure`` for the secured one). When such a test fails, the broker logs are copied to
``var/test-logs/<test>/<fixture>/``. ``STREAMER_BOOTSTRAP_SERVERS`` points ``kafka`` and
``kafka_cluster`` at an existing cluster instead; ``secure_kafka`` is then skipped.
"""

from __future__ import annotations

import logging
import re
import uuid
import warnings
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path

import pytest

from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.testing.kafka.backends import ExternalKafka, KafkaCluster, kafka_for_tests
from streamer.testing.kafka.cluster import LocalKafkaCluster
from streamer.testing.kafka.secured import SecuredKafka
from streamer.testing.kafka.security import KafkaSecurity

log = logging.getLogger(__name__)

CLUSTER_SIZE = 3
LOGS_DIR = Path("var") / "test-logs"
SINGLE_FIXTURES = frozenset({"kafka", "new_topic"})
CLUSTER_FIXTURES = frozenset({"kafka_cluster", "new_cluster_topic"})
SECURE_FIXTURES = frozenset({"secure_kafka"})
FIXTURE_USERS = {
    "kafka": SINGLE_FIXTURES,
    "kafka_cluster": CLUSTER_FIXTURES,
    "secure_kafka": SECURE_FIXTURES,
}
"""For each cluster fixture, the fixture names whose tests use that cluster."""
# fixture name -> the cluster it started, for copying logs when a test fails
_CLUSTERS = pytest.StashKey[dict[str, KafkaCluster]]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs a real Kafka broker (started by the harness)")
    config.addinivalue_line("markers", "cluster: needs a 3-broker Kafka cluster")
    config.addinivalue_line("markers", "secure: needs a SASL_SSL Kafka broker with ACLs")
    config.stash[_CLUSTERS] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & (SINGLE_FIXTURES | CLUSTER_FIXTURES | SECURE_FIXTURES):
            item.add_marker(pytest.mark.kafka)
        if names & CLUSTER_FIXTURES:
            item.add_marker(pytest.mark.cluster)
        if names & SECURE_FIXTURES:
            item.add_marker(pytest.mark.secure)


def _slug(text: str, limit: int = 120) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")[:limit] or "test"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.failed and report.when in ("setup", "call"):
        for dest in _keep_logs(item):
            report.sections.append(("kafka broker logs", f"copied to {dest}"))
    return report


def _keep_logs(item: pytest.Item) -> list[Path]:
    """Copy the logs of the clusters ``item`` used into var/test-logs/<test>/<fixture>."""
    names = set(getattr(item, "fixturenames", ()))
    clusters = item.config.stash.get(_CLUSTERS, {})
    kept: list[Path] = []
    for fixture, cluster in clusters.items():
        fixture_names = FIXTURE_USERS.get(fixture, frozenset())
        if not names & fixture_names or not isinstance(cluster, LocalKafkaCluster):
            continue
        dest = item.config.rootpath / LOGS_DIR / _slug(item.nodeid) / fixture
        try:
            kept.append(cluster.keep_logs_to(dest))
        except OSError as exc:
            log.warning("could not copy Kafka logs to %s: %s", dest, exc)
    return kept


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Restart brokers of the shared cluster that a test left dead."""
    if not set(getattr(item, "fixturenames", ())) & CLUSTER_FIXTURES:
        return
    cluster = item.config.stash.get(_CLUSTERS, {}).get("kafka_cluster")
    if not isinstance(cluster, LocalKafkaCluster):
        return
    for index, node in enumerate(cluster.nodes):
        if not node.is_running:
            warnings.warn(
                f"{item.nodeid} left Kafka node {node.node_id} stopped; restarting it",
                stacklevel=1,
            )
            cluster.restart_broker(index)


def _start(cluster: KafkaCluster, config: pytest.Config, fixture: str) -> None:
    cluster.start()
    config.stash[_CLUSTERS][fixture] = cluster


@pytest.fixture(scope="session")
def kafka(pytestconfig: pytest.Config) -> Iterator[KafkaCluster]:
    """A single Kafka broker shared by the whole test session."""
    cluster = kafka_for_tests(brokers=1)
    _start(cluster, pytestconfig, "kafka")
    try:
        yield cluster
    finally:
        pytestconfig.stash[_CLUSTERS].pop("kafka", None)
        cluster.stop()


@pytest.fixture(scope="session")
def kafka_cluster(pytestconfig: pytest.Config) -> Iterator[KafkaCluster]:
    """A 3-broker Kafka cluster shared by the whole test session.

    A test that kills or stops brokers must restart them before it ends.
    """
    cluster = kafka_for_tests(brokers=CLUSTER_SIZE)
    if isinstance(cluster, ExternalKafka):
        brokers = KafkaAdmin(cluster.bootstrap_servers).broker_ids(timeout=10)
        if len(brokers) < CLUSTER_SIZE:
            pytest.skip(f"the external Kafka has {len(brokers)} broker(s), not {CLUSTER_SIZE}")
    _start(cluster, pytestconfig, "kafka_cluster")
    try:
        yield cluster
    finally:
        pytestconfig.stash[_CLUSTERS].pop("kafka_cluster", None)
        cluster.stop()


@pytest.fixture(scope="session")
def secure_kafka(pytestconfig: pytest.Config) -> Iterator[SecuredKafka]:
    """A single broker with SASL_SSL (SCRAM-SHA-512), TLS and ACLs, shared by the session.

    The admin (``secure_kafka.admin``) is a super user; other users hold only the ACLs
    granted to them. Users and ACLs outlive a test: give each test its own user names.
    """
    if isinstance(kafka_for_tests(brokers=1), ExternalKafka):
        pytest.skip("secure_kafka starts its own broker; not with STREAMER_BOOTSTRAP_SERVERS")
    cluster = LocalKafkaCluster(security=KafkaSecurity())
    _start(cluster, pytestconfig, "secure_kafka")
    try:
        yield SecuredKafka(cluster)
    finally:
        pytestconfig.stash[_CLUSTERS].pop("secure_kafka", None)
        cluster.stop()


class TopicFactory:
    """Creates topics with unique names derived from the test name; returns the name.

    Topics keep records forever (``retention.ms=-1``) unless ``config`` says otherwise:
    test records often carry event times from long ago, and a broker deletes records older
    than a topic's time retention within seconds, even before they are read.
    """

    def __init__(
        self, bootstrap_servers: str, prefix: str, *, default_replication_factor: int = 1
    ) -> None:
        self.admin = KafkaAdmin(bootstrap_servers)
        self.prefix = prefix
        self.default_replication_factor = default_replication_factor
        self.created: list[str] = []

    def __call__(
        self,
        partitions: int = 1,
        *,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> str:
        topic = name or f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        rf = replication_factor or self.default_replication_factor
        settings = {"retention.ms": "-1", **dict(config or {})}
        self.admin.create_topics([TopicSpec(topic, partitions, rf, settings)])
        self.created.append(topic)
        return topic


def _prefix(request: pytest.FixtureRequest) -> str:
    # Kafka topic names: [A-Za-z0-9._-], at most 249 characters.
    return re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name).strip("-")[:80] or "topic"


@pytest.fixture
def new_topic(kafka: KafkaCluster, request: pytest.FixtureRequest) -> TopicFactory:
    """``new_topic(partitions=1, *, replication_factor=1, config=None, name=None) -> str``."""
    return TopicFactory(kafka.bootstrap_servers, _prefix(request))


@pytest.fixture
def new_cluster_topic(kafka_cluster: KafkaCluster, request: pytest.FixtureRequest) -> TopicFactory:
    """Like ``new_topic`` on the 3-broker cluster; replication factor 3 by default."""
    return TopicFactory(
        kafka_cluster.bootstrap_servers,
        _prefix(request),
        default_replication_factor=CLUSTER_SIZE,
    )
