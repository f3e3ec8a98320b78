"""The pytest plugin's markers and log keeping, with a stand-in cluster (no broker)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
from pathlib import Path

from importlib.metadata import entry_points

import pytest

from streamer.testing.kafka import pytest_plugin
from streamer.testing.kafka.cluster import LocalKafkaCluster

# Installing streamer registers no plugin: a project loads it, as users do in conftest.py.
pytest_plugins = ["streamer.testing.kafka.pytest_plugin"]


class StandIn(LocalKafkaCluster):
    def start(self):
        return self

    def keep_logs_to(self, dest: Path) -> Path:
        (dest / "node-1").mkdir(parents=True)
        (dest / "node-1" / "server.log").write_text("broker log")
        return dest


@pytest.fixture(scope="session")
def kafka(pytestconfig):
    cluster = StandIn()
    pytest_plugin._start(cluster, pytestconfig, "kafka")
    yield cluster
"""

TESTS = """
def test_passes(kafka):
    pass

def test_fails(kafka):
    assert False

def test_without_kafka():
    assert False
"""


def test_kafka_tests_are_marked_and_keep_logs_on_failure(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=TESTS)
    # test_without_kafka has no kafka marker; none of them has the cluster marker.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "kafka and not cluster")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    kept = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*.log"))
    assert kept == ["var/test-logs/test_sample.py_test_fails/kafka/node-1/server.log"]
    result.stdout.fnmatch_lines(["*kafka broker logs*", "*copied to *test_fails*"])


def test_installing_streamer_registers_no_pytest_plugin() -> None:
    # The harness is optional (the `testing` extra): it must not load into every pytest run
    # of an environment that merely installs streamer.
    plugins = entry_points(group="pytest11")
    assert [e.value for e in plugins if e.value.startswith("streamer")] == []
