"""No worker outlives its supervisor: SIGKILL ``streamer run`` and its workers stop too.

Each worker asked Linux for SIGTERM on its parent's death (``PR_SET_PDEATHSIG``), so the
workers of a killed supervisor stop as on a normal SIGTERM: they commit, close their stores
and leave the group, then exit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from streamer.kafka.clients import produce
from streamer.testing.kafka import KafkaCluster
from tests.integration import apps
from tests.integration.support import start_streamer_run


def _exited(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody has reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_until(condition: object, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def _worker_pids(text: str) -> dict[int, int]:
    """Slot -> pid of the workers the supervisor started, from its log."""
    return {int(s): int(p) for s, p in re.findall(r"worker (\d+) started \(pid (\d+)\)", text)}


def test_workers_stop_cleanly_when_their_supervisor_is_killed(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    bootstrap = kafka.bootstrap_servers
    produce(
        bootstrap, source, [(f"k{n}".encode(), json.dumps({"n": n}).encode()) for n in range(20)]
    )
    log = tmp_path / "run.log"
    args = [
        "tests.integration.apps:running_count",
        "--app-id",
        f"it-orphans-{os.getpid()}-{time.monotonic_ns() % 10**6}",
        "--bootstrap-servers",
        bootstrap,
        "--processes",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
    ]
    supervisor = start_streamer_run(args, {apps.INPUT: source, apps.OUTPUT: sink}, log)
    pids: dict[int, int] = {}
    try:

        def both_assigned() -> bool:
            text = log.read_text(errors="replace")
            return all(
                re.search(rf"\[worker {slot}\].*assigned [1-9][0-9]* partitions", text)
                for slot in (0, 1)
            )

        _wait_until(both_assigned, "both workers own partitions", log, timeout=120)
        pids = _worker_pids(log.read_text())
        assert sorted(pids) == [0, 1]
        supervisor.send_signal(signal.SIGKILL)
        assert supervisor.wait(30) == -signal.SIGKILL
        _wait_until(
            lambda: all(_exited(pid) for pid in pids.values()),
            "the workers of the killed supervisor exit",
            log,
            timeout=30,
        )
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for pid in pids.values():
            if not _exited(pid):
                os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    for slot in (0, 1):  # SIGTERM, not SIGKILL: each committed, closed and left the group
        assert re.search(rf"\[worker {slot}\].*worker {slot} stopped", text), text[-3000:]
