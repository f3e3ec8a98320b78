"""Runs a worker group of N processes on this host and restarts crashed ones.

Each child is started by :func:`streamer.runtime.launch.launch_worker` with the app
configuration (through a private pipe, never on its command line) and its slot (instance
number), so a restarted child keeps its ``transactional.id`` and fences its zombie.

**Restarts and giving up.** A child that exits non-zero is restarted after an exponential
backoff (1 s, 2 s, ..., at most 30 s). Each failure has a *reason*: the line the child wrote
on its status pipe (its error, such as ``ProcessingError: step 'parse' failed ...``), or
its exit code or signal when it wrote none. A failure is a **repeat** when the child ran
less than ``healthy_after`` seconds, or when its reason is the same as the previous
failure's, however long the child ran. A repeat adds one to the child's failure count; any
other failure starts a new count at 1. When a count reaches ``max_failures``, the
supervisor stops the group and exits 1. So a poison record under the ``fail`` policy stops
the group whether each attempt fails at once or only after a restore of many minutes, while
a worker that fails now and then, each time for another reason, is always restarted. A
child that exits 0 without being asked to stop is restarted at once, and its failure count
is kept.

A child that exits with ``EXIT_PERMANENT`` (3) failed in a way no restart can fix: its
configuration or topology is wrong, or the cluster refused it (authentication, TLS, a
missing ACL). The supervisor stops the group at once, so such an error is reported once.

**Stopping.** SIGTERM and SIGINT are forwarded to the children, which finish their batch,
commit, close their stores and leave the group. If the supervisor itself dies, even by
SIGKILL, each child gets SIGTERM from the kernel (see :mod:`streamer.runtime.child`), so no
worker outlives it; launching happens on the thread that calls :meth:`Supervisor.run`.

With ``metrics_port`` P, child ``i`` (``i = 0..N-1``) serves Prometheus metrics on port
``P + i``, and keeps its port across restarts. ``http`` (options with ``http_port`` H)
likewise starts child ``i``'s query server on port ``H + i``, advertised at
:func:`~streamer.runtime.launch.worker_url`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamer.errors import ConfigError
from streamer.runtime.config import AppConfig
from streamer.runtime.launch import (
    EXIT_PERMANENT,
    WorkerOptions,
    config_from_json,
    config_to_json,
    launch_worker,
    worker_url,
)

log = logging.getLogger(__name__)

__all__ = ["FailureCount", "Supervisor", "config_from_json", "config_to_json"]

Launcher = Callable[[AppConfig, WorkerOptions, int], "subprocess.Popen[bytes]"]
"""Starts one child: ``(config, options, status_fd) -> process``. Tests pass their own."""


@dataclass
class FailureCount:
    """The give-up rule of one slot (see the module docstring): pure, so it is unit-tested
    without processes."""

    max_failures: int
    healthy_after: float
    count: int = 0
    last_reason: str | None = None

    def failed(self, reason: str, lived: float) -> int:
        """Record a failure after ``lived`` seconds; return the new count."""
        repeat = lived < self.healthy_after or reason == self.last_reason
        self.count = self.count + 1 if repeat else 1
        self.last_reason = reason
        return self.count

    @property
    def exhausted(self) -> bool:
        return self.count >= self.max_failures


def exit_reason(code: int, reported: str) -> str:
    """The reason of a failure: what the child reported, else its exit code or signal."""
    if reported:
        return reported
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Child:
    instance: int
    failures: FailureCount
    process: subprocess.Popen[bytes] | None = None
    status: int | None = None
    started: float = 0.0
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
        http: WorkerOptions | None = None,
        verbose: bool = False,
        backoff_base: float = 1.0,
        launcher: Launcher | None = None,
    ) -> None:
        self.topology_spec = topology_spec
        self.config = config
        if processes < 1 or max_failures < 1:
            msg = f"need at least 1 process and max_failures >= 1, got {processes}, {max_failures}"
            raise ConfigError(msg)
        self.children = [
            _Child(config.instance + i, FailureCount(max_failures, healthy_after))
            for i in range(processes)
        ]
        self.max_failures = max_failures
        self.options = dataclasses.replace(
            http or WorkerOptions(),
            group_protocol=group_protocol,
            metrics_address=metrics_address,
            verbose=verbose,
        )
        self.metrics_port = metrics_port
        self.backoff_base = backoff_base
        self._launch = launcher or self._launch_child
        self._stopping = False

    def _launch_child(
        self, config: AppConfig, options: WorkerOptions, status_fd: int
    ) -> subprocess.Popen[bytes]:
        return launch_worker(self.topology_spec, config, options, status_fd=status_fd)

    def _spawn(self, child: _Child) -> None:
        config = dataclasses.replace(self.config, instance=child.instance)
        options = self.options
        if self.metrics_port is not None:
            port = self.metrics_port + child.instance - self.config.instance
            options = dataclasses.replace(options, metrics_port=port)
        if options.http_port is not None:
            offset = child.instance - self.config.instance
            port = options.http_port + offset
            url = worker_url(options.advertised_url, options.http_address, port, offset)
            options = dataclasses.replace(options, http_port=port, advertised_url=url)
        status_read, status_write = os.pipe()
        try:
            child.process = self._launch(config, options, status_write)
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
        os.set_blocking(status_read, False)
        child.status = status_read
        child.started = time.monotonic()
        log.info("worker %d started (pid %d)", child.instance, child.process.pid)

    def _reported(self, child: _Child) -> str:
        """The reason line the exited child wrote, if any; closes its status pipe."""
        if child.status is None:
            return ""
        data = b""
        try:
            while chunk := os.read(child.status, 4096):
                data += chunk
        except BlockingIOError:
            pass  # a descendant still holds the write end: use what is there
        finally:
            os.close(child.status)
            child.status = None
        return data.decode(errors="replace").strip()

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop the group: forward ``signum`` to every running child."""
        self._stopping = True
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    def _signal(self, signum: int, _frame: Any) -> None:
        self.request_stop(signum)

    def run(self) -> int:
        """Run until stopped by a signal (exit 0) or until a child keeps failing (exit 1).

        On the main thread, SIGTERM and SIGINT are handled while it runs and the previous
        handlers come back afterwards.
        """
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._signal) for sig in handled}
        try:
            for child in self.children:
                self._spawn(child)
            exit_code = 0
            while True:
                running = 0
                for child in self.children:
                    alive, gave_up = self._step(child)
                    running += alive
                    exit_code = 1 if gave_up else exit_code
                if running == 0:
                    return exit_code
                time.sleep(0.2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _step(self, child: _Child) -> tuple[bool, bool]:
        """Look after one child: ``(still running or due for a restart, gave up now)``."""
        if child.process is None:
            if self._stopping:
                return False, False
            if time.monotonic() >= child.restart_at:
                self._spawn(child)
            return True, False
        code = child.process.poll()
        if code is None:
            return True, False
        child.process = None
        reason = exit_reason(code, self._reported(child))
        if self._stopping:
            return False, False
        lived = time.monotonic() - child.started
        if code == 0:
            log.warning(
                "worker %d exited on its own after %.1f s; restarting it", child.instance, lived
            )
            child.restart_at = time.monotonic()
            return True, False
        if code == EXIT_PERMANENT:
            log.error(
                "worker %d failed, and no restart can fix it: %s; stopping the group",
                child.instance,
                reason,
            )
            self.request_stop()
            return False, True
        count = child.failures.failed(reason, lived)
        log.error(
            "worker %d exited after %.1f s (failure %d of %d): %s",
            child.instance,
            lived,
            count,
            self.max_failures,
            reason,
        )
        if child.failures.exhausted:
            log.error("worker %d keeps failing; stopping the group", child.instance)
            self.request_stop()
            return False, True
        child.restart_at = time.monotonic() + min(30.0, self.backoff_base * 2.0 ** (count - 1))
        return True, False
