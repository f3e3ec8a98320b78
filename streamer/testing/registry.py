"""A real schema registry for tests: Apicurio Registry, run from its Maven Central distribution.

Apicurio Registry is an Apache-2.0 schema registry that serves the Confluent Schema Registry
REST API under ``/apis/ccompat/v7`` and, by default, keeps its schemas in an in-memory
database: it needs no Kafka and starts in a few seconds. Its 2.6 line runs on Java 17 (the
3.x line needs Java 21). The distribution ``io.apicurio:apicurio-registry-app:<version>``
(classifier ``all``, a ``tar.gz`` of a Quarkus application) is fetched once with
``mvn dependency:copy`` into ``${STREAMER_CACHE_DIR:-~/.cache/streamer}/apicurio-registry/
<version>`` and unpacked there; a marker file is written only when that succeeded.

:class:`LocalSchemaRegistry` starts it as a child JVM on a free loopback port::

    with LocalSchemaRegistry() as registry:
        client = SchemaRegistryClient(registry.url)

Its schema ids are Apicurio content ids: the same schema text registered under two subjects
gets one id, as with Confluent. Where ``STREAMER_SCHEMA_REGISTRY_URL`` is set,
:func:`registry_for_tests` returns that registry instead of starting one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from streamer.errors import KafkaHarnessError
from streamer.testing.kafka.config import free_ports
from streamer.testing.kafka.jars import (
    check_java_version,
    default_cache_dir,
    find_java,
    find_mvn,
)
from streamer.testing.kafka.node import _parent_death_signal, tail

log = logging.getLogger(__name__)

APICURIO_VERSION = "2.6.13.Final"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
RUNNER_JAR = f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
CCOMPAT_PATH = "/apis/ccompat/v7"
MARKER_NAME = ".streamer-complete"
URL_ENV = "STREAMER_SCHEMA_REGISTRY_URL"
DEFAULT_JVM_OPTS = (
    "-Xms64m",
    "-Xmx384m",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
)

_LIVE: weakref.WeakSet[LocalSchemaRegistry] = weakref.WeakSet()


def _stop_live() -> None:
    for registry in list(_LIVE):
        registry.stop(timeout=5)


atexit.register(_stop_live)


def registry_dir_for(version: str = APICURIO_VERSION, *, cache_dir: Path | None = None) -> Path:
    """Where the unpacked distribution of ``version`` lives."""
    base = cache_dir if cache_dir is not None else default_cache_dir()
    return base / "apicurio-registry" / version


def resolve_registry(*, cache_dir: Path | None = None) -> Path:
    """The directory of the unpacked Apicurio Registry distribution, fetching it if needed.

    Raises :class:`~streamer.errors.MissingToolError` without java or mvn, and
    :class:`~streamer.errors.KafkaHarnessError` when Maven or unpacking fails.
    """
    target = registry_dir_for(cache_dir=cache_dir)
    if _complete(target):
        return target
    find_java()
    mvn = find_mvn()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{APICURIO_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(target):
            return target
        if target.exists():
            shutil.rmtree(target)
        log.info("fetching %s with Maven into %s", ARTIFACT, target)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="streamer-registry-", dir=target.parent) as work:
            archive = _download(mvn, Path(work))
            unpacked = Path(work) / "unpacked"
            try:
                with tarfile.open(archive) as tar:
                    tar.extractall(unpacked, filter="data")
            except (OSError, tarfile.TarError) as exc:
                msg = f"cannot unpack {archive}: {exc}"
                raise KafkaHarnessError(msg) from exc
            if not (unpacked / RUNNER_JAR).is_file():
                msg = f"{archive} holds no {RUNNER_JAR}"
                raise KafkaHarnessError(msg)
            unpacked.rename(target)
        (target / MARKER_NAME).write_text(ARTIFACT + "\n")
        elapsed = time.monotonic() - started
        log.info("Apicurio Registry %s ready in %.1f s", APICURIO_VERSION, elapsed)
    return target


def _complete(target: Path) -> bool:
    try:
        return (target / MARKER_NAME).read_text().strip() == ARTIFACT
    except OSError:
        return False


def _download(mvn: str, work: Path) -> Path:
    cmd = [
        mvn,
        "-B",
        "-ntp",
        "dependency:copy",
        f"-Dartifact={ARTIFACT}",
        f"-DoutputDirectory={work}",
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=work, capture_output=True, text=True, timeout=1800, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"running Maven failed: {exc}"
        raise KafkaHarnessError(msg) from exc
    archives = sorted(work.glob("*.tar.gz"))
    if proc.returncode != 0 or not archives:
        output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        msg = (
            f"Maven could not fetch {ARTIFACT} (exit {proc.returncode}); check network "
            f"access to Maven Central. Last lines of its output:\n{output}"
        )
        raise KafkaHarnessError(msg)
    return archives[0]


class LocalSchemaRegistry:
    """Apicurio Registry as a child JVM on ``127.0.0.1:<port>``, schemas in memory.

    ``url`` is the root of its Confluent-compatible API, for
    :class:`~streamer.serde.SchemaRegistryClient`. The JVM's output goes to
    ``<work_dir>/registry.log``; the work dir is temporary unless given.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        work_dir: Path | None = None,
        cache_dir: Path | None = None,
        jvm_opts: Sequence[str] = DEFAULT_JVM_OPTS,
    ) -> None:
        self.port = port
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir
        self.cache_dir = cache_dir
        self.jvm_opts = list(jvm_opts)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            msg = "the schema registry has not been started"
            raise KafkaHarnessError(msg)
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    @property
    def log_path(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "registry.log"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"LocalSchemaRegistry(port={self.port}, {state})"

    def start(self, timeout: float = 120.0) -> LocalSchemaRegistry:
        """Start the JVM and wait until the API answers; retries once on a taken port."""
        if self.is_running:
            return self
        home = resolve_registry(cache_dir=self.cache_dir)
        java = find_java()
        check_java_version(java)
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="streamer-registry-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port is not None
        retry = not fixed_port
        while True:
            if not fixed_port:
                self.port = free_ports(1)[0]
            self._launch(java, home)
            try:
                self._wait_ready(timeout)
            except KafkaHarnessError:
                taken = "Address already in use" in tail(self.log_path, 200)
                self.stop()
                if not (retry and taken):
                    raise
                retry = False
                log.info("port %s was taken; starting the schema registry again", self.port)
            else:
                return self

    def _launch(self, java: str, home: Path) -> None:
        cmd = [
            java,
            *self.jvm_opts,
            f"-Dquarkus.http.port={self.port}",
            "-Dquarkus.http.host=127.0.0.1",
            "-jar",
            str(home / RUNNER_JAR),
        ]
        log.info("starting Apicurio Registry %s on 127.0.0.1:%s", APICURIO_VERSION, self.port)
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )
        _LIVE.add(self)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = f"{self.url}/subjects"
        while time.monotonic() < deadline:
            if not self.is_running:
                msg = (
                    f"the schema registry exited with status {self.returncode}. "
                    f"Last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
                raise KafkaHarnessError(msg)
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(probe, timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        msg = (
            f"the schema registry did not answer {probe} within {timeout:.0f} s. "
            f"Last lines of {self.log_path}:\n{tail(self.log_path)}"
        )
        raise KafkaHarnessError(msg)

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; removes a temporary work dir."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(30)
        _LIVE.discard(self)

    def cleanup(self) -> None:
        """Remove the work dir if this object created it (after :meth:`stop`)."""
        if self._own_work_dir and self.work_dir is not None and not self.is_running:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def __enter__(self) -> LocalSchemaRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.cleanup()


class ExternalSchemaRegistry:
    """A schema registry somebody else runs (``STREAMER_SCHEMA_REGISTRY_URL``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def start(self) -> ExternalSchemaRegistry:
        return self

    def stop(self, timeout: float = 10.0) -> None:
        pass

    def cleanup(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"ExternalSchemaRegistry({self.url!r})"


def registry_for_tests() -> LocalSchemaRegistry | ExternalSchemaRegistry:
    """The registry named by ``STREAMER_SCHEMA_REGISTRY_URL``, else a new local one."""
    url = os.environ.get(URL_ENV)
    return ExternalSchemaRegistry(url) if url else LocalSchemaRegistry()


__all__ = [
    "APICURIO_VERSION",
    "ExternalSchemaRegistry",
    "LocalSchemaRegistry",
    "registry_for_tests",
    "resolve_registry",
]
