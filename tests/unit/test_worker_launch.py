"""A worker process gets its configuration through a pipe, never its command line, and dies
with the process that launched it. Real child processes, no broker: the topology file they
load blocks until they are signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.runtime.config import AppConfig
from streamer.runtime.launch import EXIT_PERMANENT, config_from_json, config_to_json, launch_worker

SECRET = "not-a-real-password-6f1c2e"

BLOCKING_TOPOLOGY = """
import os
import signal
from pathlib import Path

Path(os.environ["STREAMER_TEST_READY"]).touch()
signal.pause()  # until SIGTERM; then the module ends without a topology, and the worker fails
"""


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture
def blocking(tmp_path: Path) -> tuple[str, Path]:
    spec = tmp_path / "blocking_topology.py"
    spec.write_text(BLOCKING_TOPOLOGY)
    return str(spec), tmp_path / "ready"


def test_the_configuration_travels_through_a_pipe_not_the_command_line(
    blocking: tuple[str, Path], tmp_path: Path
) -> None:
    spec, ready = blocking
    config = AppConfig(
        "orders",
        "127.0.0.1:9",
        instance_prefix="piped-",
        kafka_config={"sasl.password": SECRET, "sasl.username": "orders"},
        producer_config={"ssl.key.password": SECRET},
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = launch_worker(
            spec,
            config,
            env={**os.environ, "STREAMER_TEST_READY": str(ready)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(ready.exists, "the worker to load its topology")
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert SECRET.encode() not in cmdline
        assert b"sasl" not in cmdline
        assert b"{" not in cmdline
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    text = log.read_text()
    assert code == EXIT_PERMANENT, text  # its topology is not one: no restart can help
    assert "[worker piped-0]" in text  # the slot came through the pipe
    assert SECRET not in text


def test_the_json_channel_keeps_every_field() -> None:
    config = AppConfig(
        "orders",
        "k:9092",
        log_payloads=True,
        kafka_config={"sasl.password": SECRET, "socket.timeout.ms": 1000},
        admin_config={"request.timeout.ms": 5000},
    )
    assert config_from_json(config_to_json(config)) == config


def test_a_worker_dies_when_its_launcher_is_killed(blocking: tuple[str, Path]) -> None:
    spec, ready = blocking
    launcher = (
        "import signal, sys\n"
        "from streamer.runtime.config import AppConfig\n"
        "from streamer.runtime.launch import launch_worker\n"
        "child = launch_worker(sys.argv[1], AppConfig('orders', '127.0.0.1:9'))\n"
        "print(child.pid, flush=True)\n"
        "signal.pause()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", launcher, spec],
        stdout=subprocess.PIPE,
        env={**os.environ, "STREAMER_TEST_READY": str(ready)},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        _wait_for(ready.exists, "the worker to start")
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        _wait_for(lambda: _gone(child), "the orphaned worker to exit", timeout=20)
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_a_worker_whose_parent_is_already_gone_does_not_start() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.runtime.child",
            "x.py",
            "--config-fd",
            "0",
            "--parent-pid",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "supervisor exited before it started" in result.stderr
