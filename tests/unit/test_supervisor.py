"""The supervisor's give-up rule, with a pure counter and with tiny child processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from streamer.runtime.config import AppConfig
from streamer.runtime.launch import WorkerOptions
from streamer.runtime.supervisor import FailureCount, Supervisor, exit_reason


def test_fast_failures_count_whatever_their_reason() -> None:
    count = FailureCount(max_failures=3, healthy_after=30.0)
    assert count.failed("A", lived=1.0) == 1
    assert count.failed("B", lived=2.0) == 2
    assert count.failed("C", lived=0.5) == 3
    assert count.exhausted


def test_slow_failures_with_the_same_reason_count_however_long_each_ran() -> None:
    count = FailureCount(max_failures=3, healthy_after=30.0)
    for expected in (1, 2, 3):  # a poison record met after a 10-minute restore, each time
        assert count.failed("ProcessingError: bad record at t[0]@7", lived=600.0) == expected
    assert count.exhausted


def test_a_slow_failure_with_a_new_reason_starts_a_new_count() -> None:
    count = FailureCount(max_failures=3, healthy_after=30.0)
    assert count.failed("A", lived=1.0) == 1
    assert count.failed("A", lived=2.0) == 2
    assert count.failed("B", lived=3600.0) == 1
    assert count.failed("A", lived=3600.0) == 1
    assert count.failed("A", lived=5.0) == 2
    assert not count.exhausted


def test_a_failure_without_a_reported_reason_is_told_by_its_exit() -> None:
    assert exit_reason(-9, "") == "killed by signal SIGKILL"
    assert exit_reason(3, "") == "exit code 3"
    assert exit_reason(1, "StateError: locked") == "StateError: locked"


class ScriptedChildren:
    """A launcher of tiny processes: launch ``i`` writes ``reasons[i]`` on the status pipe
    and exits 1. After the last one it stops the supervisor and starts a child that exits 0."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        self.launched: list[tuple[AppConfig, WorkerOptions]] = []
        self.supervisor: Supervisor | None = None

    def __call__(
        self, config: AppConfig, options: WorkerOptions, status_fd: int
    ) -> subprocess.Popen[bytes]:
        self.launched.append((config, options))
        index = len(self.launched) - 1
        if index >= len(self.reasons):
            assert self.supervisor is not None
            self.supervisor.request_stop()
            return subprocess.Popen([sys.executable, "-c", "pass"])
        code = (
            f"import os, sys; os.write({status_fd}, {self.reasons[index]!r}.encode()); sys.exit(1)"
        )
        return subprocess.Popen([sys.executable, "-c", code], pass_fds=[status_fd])


def supervise(children: ScriptedChildren, *, healthy_after: float, max_failures: int) -> int:
    supervisor = Supervisor(
        "unused.py",
        AppConfig("orders", "127.0.0.1:9"),
        processes=1,
        max_failures=max_failures,
        healthy_after=healthy_after,
        backoff_base=0.001,
        launcher=children,
    )
    children.supervisor = supervisor
    return supervisor.run()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="streamer.runtime.supervisor"):
        yield caplog


def test_children_that_ran_long_but_fail_the_same_way_stop_the_group(
    logs: pytest.LogCaptureFixture,
) -> None:
    # healthy_after=0: every run counts as long, so only the repeated reason stops it.
    children = ScriptedChildren(["ProcessingError: poison at t[0]@7"] * 5)
    assert supervise(children, healthy_after=0.0, max_failures=3) == 1
    assert len(children.launched) == 3
    assert "(failure 3 of 3): ProcessingError: poison at t[0]@7" in logs.text
    assert "worker 0 keeps failing; stopping the group" in logs.text


def test_children_that_ran_long_and_fail_differently_are_restarted(
    logs: pytest.LogCaptureFixture,
) -> None:
    children = ScriptedChildren(["KafkaRuntimeError: A", "StateError: B"] * 3)
    assert supervise(children, healthy_after=0.0, max_failures=2) == 0
    assert len(children.launched) == 7  # six failures, none repeated, then a clean stop
    assert "keeps failing" not in logs.text


def test_children_that_fail_fast_stop_the_group_whatever_the_reason() -> None:
    children = ScriptedChildren(["A", "B", "C", "D"])
    assert supervise(children, healthy_after=60.0, max_failures=3) == 1
    assert len(children.launched) == 3


def test_the_supervisor_gives_each_child_its_slot_and_metrics_port() -> None:
    children = ScriptedChildren([])
    supervisor = Supervisor(
        "unused.py",
        AppConfig("orders", "127.0.0.1:9", instance_prefix="a-"),
        processes=2,
        metrics_port=9400,
        group_protocol="classic",
        launcher=children,
    )
    children.supervisor = supervisor
    assert supervisor.run() == 0
    (first, first_options), (second, second_options) = children.launched
    assert (first.slot, second.slot) == ("a-0", "a-1")
    assert (first_options.metrics_port, second_options.metrics_port) == (9400, 9401)
    assert first_options.group_protocol == "classic"


def test_a_real_worker_that_no_restart_can_fix_stops_the_group_with_its_reason_once(
    logs: pytest.LogCaptureFixture,
) -> None:
    """A configuration error (here a missing topology file) would fail every restart the
    same way: the worker reports it through its status pipe and the group stops at once."""
    pipes_before = _open_pipes()
    supervisor = Supervisor(
        "no/such/topology.py",
        AppConfig("orders", "127.0.0.1:9"),
        processes=1,
        max_failures=5,
        backoff_base=0.001,
    )
    assert supervisor.run() == 1
    assert logs.text.count("topology file 'no/such/topology.py' does not exist") == 1
    assert "no restart can fix it: ConfigError: topology file" in logs.text
    assert logs.text.count("worker 0 started") == 1
    assert _open_pipes() == pipes_before  # no config or status pipe leaks


def _open_pipes() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
        except OSError:
            continue
    return count
