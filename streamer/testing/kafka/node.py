"""One Kafka KRaft node (combined broker and controller) running as a child JVM."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from streamer.errors import KafkaHarnessError
from streamer.testing.kafka.config import NodeSpec, render_properties, server_properties

log = logging.getLogger(__name__)

LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")
# C1-only JIT and the serial GC: start-up time matters more than peak throughput for test
# brokers (a 3-node cluster starts about 35% faster on two cores). Extra options from
# $STREAMER_KAFKA_JVM_OPTS come last and win.
DEFAULT_JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
)
# What Kafka's own start scripts use (kafka-server-start.sh, kafka-run-class.sh): a 1 GiB
# heap and G1 with short pauses. For measurements, where steady-state speed matters.
SERVER_JVM_OPTS = (
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
BIND_ERROR = "Address already in use"

# Nodes started by this interpreter (not detached): killed when it exits.
_LIVE_NODES: weakref.WeakSet[KafkaNode] = weakref.WeakSet()


def _kill_live_nodes() -> None:
    for node in list(_LIVE_NODES):
        node.kill()


atexit.register(_kill_live_nodes)


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function that makes Linux SIGKILL the child when this thread dies.

    Covers the case where the Python process is killed hard and atexit does not run. Used
    only from the main thread: the signal fires when the *thread* that forked exits.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return preexec


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or a note that it does not exist."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (zombies count as gone; our own children are reaped)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class KafkaNode:
    """A single Kafka KRaft node whose files live under ``node_dir``.

    ``node_dir`` holds ``server.properties``, ``data/`` (the log dir) and ``logs/`` (the
    broker's log files, ``server.log`` among them). :meth:`start` only launches the JVM;
    readiness is checked by :class:`~streamer.testing.kafka.cluster.LocalKafkaCluster`.
    """

    def __init__(
        self,
        spec: NodeSpec,
        *,
        voters: Sequence[NodeSpec],
        cluster_id: str,
        node_dir: Path,
        jars_dir: Path,
        java: str = "java",
        config_overrides: Mapping[str, str] | None = None,
        jvm_opts: Sequence[str] = DEFAULT_JVM_OPTS,
        detached: bool = False,
        listener: str = "PLAINTEXT",
        format_args: Sequence[str] = (),
    ) -> None:
        self.spec = spec
        self.voters = list(voters)
        self.cluster_id = cluster_id
        self.node_dir = node_dir
        self.jars_dir = jars_dir
        self.java = java
        self.config_overrides = dict(config_overrides or {})
        self.jvm_opts = list(jvm_opts)
        extra = os.environ.get("STREAMER_KAFKA_JVM_OPTS")
        if extra:
            self.jvm_opts += shlex.split(extra)
        self.detached = detached
        self.listener = listener
        self.format_args = list(format_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._formatted = False

    # -- identity ---------------------------------------------------------------------
    @property
    def node_id(self) -> int:
        return self.spec.node_id

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>`` of the client listener (PLAINTEXT, or SASL_SSL)."""
        return self.spec.bootstrap

    @property
    def properties_path(self) -> Path:
        return self.node_dir / "server.properties"

    @property
    def data_path(self) -> Path:
        return self.node_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.node_dir / "logs"

    @property
    def log_path(self) -> Path:
        """The broker's main log file."""
        return self.logs_dir / "server.log"

    @property
    def stdout_path(self) -> Path:
        return self.logs_dir / "stdout.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"KafkaNode(id={self.node_id}, {self.bootstrap}, {state})"

    # -- files ------------------------------------------------------------------------
    def properties(self) -> dict[str, str]:
        return server_properties(
            self.spec,
            voters=self.voters,
            log_dir=self.data_path,
            overrides=self.config_overrides,
            listener=self.listener,
        )

    def write_config(self) -> None:
        """Write ``server.properties``, readable by its owner only (it may hold the
        password the brokers authenticate with)."""
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        fd = os.open(self.properties_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(render_properties(self.properties()))
        self.properties_path.chmod(0o600)

    def _java_cmd(self, main_class: str, *args: str) -> list[str]:
        return [
            self.java,
            *self.jvm_opts,
            "-cp",
            str(self.jars_dir / "*"),
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            main_class,
            *args,
        ]

    def format_command(self) -> list[str]:
        return self._java_cmd(
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            self.cluster_id,
            "-c",
            str(self.properties_path),
            *self.format_args,
        )

    def start_format(self) -> subprocess.Popen[str]:
        """Write the config and launch ``kafka-storage format`` (see :meth:`finish_format`)."""
        self.write_config()
        return subprocess.Popen(
            self.format_command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.node_dir,
        )

    def finish_format(self, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if proc.returncode != 0:
            msg = (
                f"formatting the storage of Kafka node {self.node_id} failed "
                f"(exit {proc.returncode}):\n{output.strip()[-3000:]}"
            )
            raise KafkaHarnessError(msg)
        self._formatted = True

    def format(self, timeout: float = 120.0) -> None:
        """Format the node's log dir for its cluster id (idempotent)."""
        self.finish_format(self.start_format(), timeout)

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Launch the broker JVM (formatting its storage first if needed)."""
        if self.is_running:
            return
        if not self._formatted:
            self.format()
        self.write_config()
        cmd = self._java_cmd("kafka.Kafka", str(self.properties_path))
        log.debug("starting Kafka node %s: %s", self.node_id, shlex.join(cmd))
        with open(self.stdout_path, "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.node_dir,
                start_new_session=True,
                preexec_fn=None if self.detached else _parent_death_signal(),
            )
        if not self.detached:
            _LIVE_NODES.add(self)

    def failed_to_bind(self) -> bool:
        """True when the node exited because one of its ports was taken."""
        if self.is_running:
            return False
        return BIND_ERROR in tail(self.log_path, 200) or BIND_ERROR in tail(self.stdout_path)

    def describe_failure(self) -> str:
        """A short report: exit status and the tail of the broker log."""
        status = "is running" if self.is_running else f"exited with status {self.returncode}"
        parts = [
            f"Kafka node {self.node_id} ({self.bootstrap}) {status}.",
            f"Last lines of {self.log_path}:",
            tail(self.log_path),
        ]
        stdout = tail(self.stdout_path, 20)
        if stdout.strip() and not stdout.startswith("(no log"):
            parts += [f"Last lines of {self.stdout_path}:", stdout]
        return "\n".join(parts)

    def terminate(self) -> None:
        """Send SIGTERM without waiting."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "Kafka node %s ignored SIGTERM for %.0f s; killing it", self.node_id, timeout
            )
            self.kill()

    def kill(self) -> None:
        """SIGKILL the broker (a crash: no clean shutdown) and reap it."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop (if running) and start again with the same id, ports and data."""
        self.stop(timeout)
        self.start()

    def wait_stopped(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.is_running and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.is_running
