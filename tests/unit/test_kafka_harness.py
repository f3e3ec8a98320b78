"""The Kafka harness without a broker: tool checks, jar cache, configuration, backends."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from streamer.errors import KafkaHarnessError, MissingToolError
from streamer.kafka.admin import TopicSpec
from streamer.testing.kafka import backends, jars
from streamer.testing.kafka.backends import ExternalKafka, TestcontainersKafka, kafka_for_tests
from streamer.testing.kafka.cluster import LocalKafkaCluster
from streamer.testing.kafka.config import (
    NodeSpec,
    allocate_nodes,
    free_ports,
    random_cluster_id,
    render_properties,
    server_properties,
)


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only a fake ``java`` (version 17); tests add a fake ``mvn``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(bin_dir / "java", "echo 'openjdk version \"17.0.9\" 2023-10-17' >&2\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return bin_dir


FAKE_MVN = """
PATH=/usr/bin:/bin
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
done
echo "$@" >> "$(dirname "$0")/mvn-calls"
mkdir -p "$out"
touch "$out/kafka_2.13-4.1.1.jar" "$out/kafka-clients-4.1.1.jar"
"""


# -- missing tools --------------------------------------------------------------------
def test_missing_java_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "java" else real_which(name)
    )
    with pytest.raises(MissingToolError) as info:
        jars.resolve_broker_jars(cache_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("java not found on PATH: install a Java 17+ JDK")
    assert "apt-get install openjdk-17-jre-headless" in message
    assert "\n" not in message


def test_missing_mvn_says_what_to_install(fake_bin: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingToolError) as info:
        jars.resolve_broker_jars(cache_dir=tmp_path / "cache")
    assert str(info.value) == (
        "mvn not found on PATH: install Apache Maven (Debian/Ubuntu: apt-get install maven)"
    )
    assert isinstance(info.value, KafkaHarnessError)


def test_old_java_is_rejected(tmp_path: Path) -> None:
    java = write_script(tmp_path / "java", "echo 'openjdk version \"11.0.21\" 2023' >&2\n")
    with pytest.raises(MissingToolError, match="Java 11, Kafka 4 brokers need Java 17"):
        jars.check_java_version(str(java))
    java8 = write_script(tmp_path / "java8", "echo 'java version \"1.8.0_392\"' >&2\n")
    with pytest.raises(MissingToolError, match="Java 8"):
        jars.check_java_version(str(java8))
    java21 = write_script(tmp_path / "java21", "echo 'openjdk version \"21\" 2023-09' >&2\n")
    assert jars.check_java_version(str(java21)) == 21


def test_java_home_wins_over_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = write_script(home / "bin" / "java", "exit 0\n")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert jars.find_java() == str(java)


# -- jar cache ------------------------------------------------------------------------
def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_CACHE_DIR", str(tmp_path))
    assert jars.default_cache_dir() == tmp_path
    assert jars.jars_dir_for("4.1.1") == tmp_path / "kafka" / "4.1.1"
    monkeypatch.delenv("STREAMER_CACHE_DIR")
    assert jars.default_cache_dir() == Path.home() / ".cache" / "streamer"


def test_kafka_version_comes_from_the_pom() -> None:
    version = jars.kafka_version()
    assert version.split(".")[0] == "4"
    assert f"<kafka.version>{version}</kafka.version>" in jars.POM_PATH.read_text()


def test_marker_is_written_only_after_maven_succeeds(fake_bin: Path, tmp_path: Path) -> None:
    write_script(fake_bin / "mvn", FAKE_MVN)
    cache = tmp_path / "cache"
    target = jars.jars_dir_for(jars.kafka_version(), cache_dir=cache)

    assert jars.resolve_broker_jars(cache_dir=cache) == target
    assert (target / "kafka_2.13-4.1.1.jar").is_file()
    assert jars.is_complete(target)
    calls = (fake_bin / "mvn-calls").read_text()
    assert "dependency:copy-dependencies" in calls
    assert f"-DoutputDirectory={target}" in calls

    # Cached: Maven is not run again.
    jars.resolve_broker_jars(cache_dir=cache)
    assert len((fake_bin / "mvn-calls").read_text().splitlines()) == 1


def test_interrupted_download_is_redone(fake_bin: Path, tmp_path: Path) -> None:
    write_script(fake_bin / "mvn", FAKE_MVN)
    cache = tmp_path / "cache"
    target = jars.jars_dir_for(jars.kafka_version(), cache_dir=cache)
    target.mkdir(parents=True)
    (target / "half-downloaded.jar").write_bytes(b"")  # no marker: incomplete

    jars.resolve_broker_jars(cache_dir=cache)
    assert not (target / "half-downloaded.jar").exists()
    assert jars.is_complete(target)


def test_marker_from_another_pom_does_not_count(tmp_path: Path) -> None:
    jars.mark_complete(tmp_path)
    assert jars.is_complete(tmp_path)
    (tmp_path / jars.MARKER_NAME).write_text("digest-of-another-pom\n")
    assert not jars.is_complete(tmp_path)
    assert not jars.is_complete(tmp_path / "missing")


def test_maven_failure_shows_its_output(fake_bin: Path, tmp_path: Path) -> None:
    write_script(
        fake_bin / "mvn",
        "echo '[ERROR] Could not resolve dependencies for project io.streamer'\n"
        "echo '[ERROR] BUILD FAILURE'\nexit 1\n",
    )
    cache = tmp_path / "cache"
    with pytest.raises(KafkaHarnessError, match="BUILD FAILURE") as info:
        jars.resolve_broker_jars(cache_dir=cache)
    assert "Could not resolve dependencies" in str(info.value)
    assert not jars.is_complete(jars.jars_dir_for(jars.kafka_version(), cache_dir=cache))


# -- configuration --------------------------------------------------------------------
def test_single_node_config(tmp_path: Path) -> None:
    node = NodeSpec(node_id=1, port=19092, controller_port=19093)
    props = server_properties(node, voters=[node], log_dir=tmp_path / "data")
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert props["controlled.shutdown.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_three_node_config(tmp_path: Path) -> None:
    nodes = [NodeSpec(i, 20000 + 2 * i, 20001 + 2 * i) for i in (1, 2, 3)]
    all_props = [
        server_properties(n, voters=nodes, log_dir=tmp_path / str(n.node_id)) for n in nodes
    ]
    voters = {p["controller.quorum.voters"] for p in all_props}
    assert voters == {"1@127.0.0.1:20003,2@127.0.0.1:20005,3@127.0.0.1:20007"}
    assert len({p["listeners"] for p in all_props}) == 3
    assert len({p["log.dirs"] for p in all_props}) == 3
    for props in all_props:
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"


def test_overrides_win_and_rendering(tmp_path: Path) -> None:
    node = NodeSpec(1, 1, 2)
    props = server_properties(
        node, voters=[node], log_dir=Path("C:\\data"), overrides={"num.partitions": "6"}
    )
    assert props["num.partitions"] == "6"
    text = render_properties(props)
    assert "num.partitions=6\n" in text
    assert "log.dirs=C:\\\\data\n" in text  # backslashes escaped for Java
    assert text.startswith("#")


def test_ports_and_ids() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    assert all(p > 0 for p in ports)
    nodes = allocate_nodes(3)
    assert [n.node_id for n in nodes] == [1, 2, 3]
    assert len({n.port for n in nodes} | {n.controller_port for n in nodes}) == 6
    ids = {random_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_topic_spec_defaults() -> None:
    spec = TopicSpec("t")
    assert (spec.partitions, spec.replication_factor, dict(spec.config)) == (1, 1, {})
    assert hash(spec) == hash(TopicSpec("t", config={"cleanup.policy": "compact"}))


# -- backends -------------------------------------------------------------------------
def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMER_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("STREAMER_KAFKA_BACKEND", raising=False)
    assert isinstance(kafka_for_tests(), LocalKafkaCluster)

    monkeypatch.setenv("STREAMER_KAFKA_BACKEND", "testcontainers")
    monkeypatch.setattr(backends, "docker_available", lambda: False)
    assert isinstance(kafka_for_tests(), LocalKafkaCluster), "no Docker: local jars"
    monkeypatch.setattr(backends, "docker_available", lambda: True)
    assert isinstance(kafka_for_tests(), TestcontainersKafka)
    assert isinstance(kafka_for_tests(brokers=3), LocalKafkaCluster), "one broker only"

    monkeypatch.setenv("STREAMER_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    external = kafka_for_tests()
    assert isinstance(external, ExternalKafka)
    assert external.bootstrap_servers == "127.0.0.1:9092"
    external.stop()  # a no-op

    monkeypatch.delenv("STREAMER_BOOTSTRAP_SERVERS")
    monkeypatch.setenv("STREAMER_KAFKA_BACKEND", "podman")
    with pytest.raises(KafkaHarnessError, match="unknown STREAMER_KAFKA_BACKEND"):
        kafka_for_tests()


def test_unstarted_cluster_has_no_address() -> None:
    cluster = LocalKafkaCluster()
    with pytest.raises(KafkaHarnessError, match="not started"):
        _ = cluster.bootstrap_servers
    with pytest.raises(KafkaHarnessError, match="at least one broker"):
        LocalKafkaCluster(0)
    cluster.stop()  # stopping an unstarted cluster is harmless
