"""Runs a worker group of N processes on this host and restarts crashed ones.

Each child is ``python -m streamer.runtime.child`` with the app configuration and its slot
(instance number), so a restarted child keeps its ``transactional.id`` and fences its
zombie. A child that exits non-zero is restarted after an exponential backoff (1 s, 2 s, ...,
at most 30 s). When a child fails ``max_failures`` times in a row without running for at
least ``healthy_after`` seconds in between, the supervisor stops the group and exits
non-zero: a poison record under the ``fail`` policy does not crash-loop forever.

SIGTERM and SIGINT are forwarded to the children, which finish their batch, commit, close
their stores and leave the group.

With ``metrics_port`` P, child ``i`` (``i = 0..N-1``) serves Prometheus metrics on port
``P + i``, and keeps its port across restarts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError
from streamer.runtime.config import AppConfig

log = logging.getLogger(__name__)


def config_to_json(config: AppConfig) -> str:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif hasattr(value, "value"):
            value = value.value
        elif f.name.endswith("_config"):
            value = dict(value)
        data[f.name] = value
    return json.dumps(data)


def config_from_json(text: str) -> AppConfig:
    from streamer.runtime.config import ErrorPolicy, Guarantee

    data = json.loads(text)
    data["state_dir"] = Path(data["state_dir"])
    data["guarantee"] = Guarantee(data["guarantee"])
    data["error_policy"] = ErrorPolicy(data["error_policy"])
    return AppConfig(**data)


@dataclass
class _Child:
    instance: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


class Supervisor:
    def __init__(
        self,
        topology_spec: str,
        config: AppConfig,
        *,
        processes: int,
        max_failures: int = 5,
        healthy_after: float = 30.0,
        group_protocol: str = "consumer",
        metrics_port: int | None = None,
        metrics_address: str = "0.0.0.0",
    ) -> None:
        self.topology_spec = topology_spec
        self.config = config
        if processes < 1 or max_failures < 1:
            msg = f"need at least 1 process and max_failures >= 1, got {processes}, {max_failures}"
            raise ConfigError(msg)
        self.children = [_Child(config.instance + i) for i in range(processes)]
        self.max_failures = max_failures
        self.healthy_after = healthy_after
        self.group_protocol = group_protocol
        self.metrics_port = metrics_port
        self.metrics_address = metrics_address
        self._stopping = False

    def _spawn(self, child: _Child) -> None:
        config = dataclasses.replace(self.config, instance=child.instance)
        argv = [
            sys.executable,
            "-m",
            "streamer.runtime.child",
            self.topology_spec,
            config_to_json(config),
            self.group_protocol,
        ]
        if self.metrics_port is not None:
            port = self.metrics_port + child.instance - self.config.instance
            argv.append(json.dumps({"metrics_port": port, "metrics_address": self.metrics_address}))
        child.process = subprocess.Popen(argv)
        child.started = time.monotonic()
        log.info("worker %d started (pid %d)", child.instance, child.process.pid)

    def _signal(self, signum: int, _frame: Any) -> None:
        self._stopping = True
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    def run(self) -> int:
        """Run until stopped by a signal (exit 0) or until a child keeps failing (exit 1)."""
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        for child in self.children:
            self._spawn(child)
        exit_code = 0
        while True:
            running = 0
            for child in self.children:
                if child.process is None:
                    if not self._stopping and time.monotonic() >= child.restart_at:
                        self._spawn(child)
                    running += not self._stopping
                    continue
                code = child.process.poll()
                if code is None:
                    running += 1
                    continue
                child.process = None
                if self._stopping:
                    continue
                lived = time.monotonic() - child.started
                if code == 0:
                    log.warning(
                        "worker %d exited on its own after %.1f s; restarting it",
                        child.instance,
                        lived,
                    )
                    child.restart_at = time.monotonic()
                    running += 1
                    continue
                child.failures = 1 if lived >= self.healthy_after else child.failures + 1
                log.error(
                    "worker %d exited with code %d after %.1f s (failure %d of %d)",
                    child.instance,
                    code,
                    lived,
                    child.failures,
                    self.max_failures,
                )
                if child.failures >= self.max_failures:
                    log.error("worker %d keeps failing; stopping the group", child.instance)
                    exit_code = 1
                    self._signal(signal.SIGTERM, None)
                    continue
                backoff = min(30.0, 2.0 ** (child.failures - 1))
                child.restart_at = time.monotonic() + backoff
                running += 1
            if running == 0:
                return exit_code
            time.sleep(0.2)
