"""The demo's worker group: ``streamer.runtime.child`` processes, one per slot, each logging
to its own file so the demo can tell when they own partitions and why one died."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from streamer.errors import StreamerError
from streamer.runtime.config import AppConfig
from streamer.runtime.launch import WorkerOptions, launch_worker


class WorkerGroup:
    """``count`` ``streamer.runtime.child`` processes, logging to ``log_dir``."""

    def __init__(
        self,
        spec: str,
        config: AppConfig,
        count: int,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        http_port: int | None = None,
    ) -> None:
        """``env`` adds to the workers' environment (``FRAUD_*`` settings, for instance);
        with ``http_port``, worker ``i`` serves queries and the console on its port plus
        ``i`` (loopback only)."""
        self.spec = spec
        self.env = {**os.environ, **dict(env or {})}
        self.config = config
        self.count = count
        self.log_dir = log_dir
        self.http_port = http_port
        self.processes: list[subprocess.Popen[bytes]] = []

    def log_path(self, instance: int) -> Path:
        return self.log_dir / f"worker-{instance}.log"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for instance in range(self.count):
            config = dataclasses.replace(self.config, instance=instance)
            with self.log_path(instance).open("wb") as log:
                self.processes.append(
                    launch_worker(
                        self.spec,
                        config,
                        self._options(instance),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=self.env,
                    )
                )

    def _options(self, instance: int) -> WorkerOptions:
        if self.http_port is None:
            return WorkerOptions()
        port = self.http_port + instance
        return WorkerOptions(http_port=port, advertised_url=f"http://127.0.0.1:{port}")

    def all_assigned(self) -> bool:
        """True once every worker's log says it was assigned partitions."""
        for instance in range(len(self.processes)):
            path = self.log_path(instance)
            text = path.read_text(errors="replace") if path.exists() else ""
            if not re.search(r"assigned [1-9][0-9]* partitions", text):
                return False
        return True

    def check_alive(self) -> None:
        for instance, process in enumerate(self.processes):
            code = process.poll()
            if code is not None:
                tail = self.log_path(instance).read_text(errors="replace")[-3000:]
                msg = f"worker {instance} exited with code {code}; its log ends with:\n{tail}"
                raise StreamerError(msg)

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM every worker (they commit and leave the group), SIGKILL stragglers."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for process in self.processes:
            try:
                codes.append(process.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes.append(None)
        return codes
