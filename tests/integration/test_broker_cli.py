"""``streamer broker up`` / ``down`` start and stop real background brokers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.kafka.admin import KafkaAdmin
from streamer.testing.kafka.node import pid_alive


def streamer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.kafka
def test_broker_up_then_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    up = streamer("broker", "up", "--data-dir", str(data_dir), cwd=tmp_path)
    state_file = data_dir / "streamer-broker.json"
    pids: list[int] = []
    try:
        assert up.returncode == 0, up.stderr
        last = up.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"bootstrap\.servers=127\.0\.0\.1:\d+", last), up.stdout
        state = json.loads(state_file.read_text())
        pids = [node["pid"] for node in state["nodes"]]
        assert len(pids) == 1
        assert all(pid_alive(pid) for pid in pids), "brokers outlive the 'up' command"
        bootstrap = last.split("=", 1)[1]
        assert state["bootstrap_servers"] == bootstrap
        assert KafkaAdmin(bootstrap).broker_ids() == {1}

        again = streamer("broker", "up", "--data-dir", str(data_dir), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1] == last, "a second 'up' reuses it"
    finally:
        down = streamer("broker", "down", "--data-dir", str(data_dir), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert pids
    assert not any(pid_alive(pid) for pid in pids)
    assert not state_file.exists()
    assert (data_dir / "node-1" / "logs" / "server.log").is_file(), "data and logs are kept"

    status = streamer("broker", "status", "--data-dir", str(data_dir), cwd=tmp_path)
    assert status.returncode == 1
