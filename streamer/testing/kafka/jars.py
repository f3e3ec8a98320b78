"""Resolve the Apache Kafka broker classpath with Maven, once, into a cache directory.

The jars come from Maven Central through ``pom.xml`` (shipped beside this module). They are
copied into ``${STREAMER_CACHE_DIR:-~/.cache/streamer}/kafka/<kafka.version>``. A marker
file is written only after Maven succeeded, so an interrupted download is redone on the next
call. Concurrent resolvers (parallel test runs) serialise on a lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from streamer.errors import KafkaHarnessError, MissingToolError

log = logging.getLogger(__name__)

POM_PATH = Path(__file__).with_name("pom.xml")
MARKER_NAME = ".streamer-complete"
MIN_JAVA_MAJOR = 17

_JAVA_HINT = "install a Java 17+ JDK (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
_MVN_HINT = "install Apache Maven (Debian/Ubuntu: apt-get install maven)"


def kafka_version(pom: Path = POM_PATH) -> str:
    """The ``kafka.version`` property of the broker pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(pom).getroot()
    node = root.find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        msg = f"{pom} has no <kafka.version> property"
        raise KafkaHarnessError(msg)
    return (node.text or "").strip()


def default_cache_dir() -> Path:
    """``$STREAMER_CACHE_DIR``, or ``~/.cache/streamer`` when it is unset."""
    env = os.environ.get("STREAMER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "streamer"


def jars_dir_for(version: str, *, cache_dir: Path | None = None) -> Path:
    """Where the jars of Kafka ``version`` live: ``<cache_dir>/kafka/<version>``."""
    return (cache_dir if cache_dir is not None else default_cache_dir()) / "kafka" / version


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java`` if it exists, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        msg = f"java not found on PATH: {_JAVA_HINT}"
        raise MissingToolError(msg)
    return found


def check_java_version(java: str) -> int:
    """The major version of ``java``; raises MissingToolError when it is older than 17."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        msg = f"cannot run {java}: {exc}; {_JAVA_HINT}"
        raise MissingToolError(msg) from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        msg = f"cannot tell the version of {java} from: {proc.stderr.strip()[:200]}"
        raise KafkaHarnessError(msg)
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major < MIN_JAVA_MAJOR:
        msg = f"{java} is Java {major}, Kafka 4 brokers need Java 17+: {_JAVA_HINT}"
        raise MissingToolError(msg)
    return major


def find_mvn() -> str:
    found = shutil.which("mvn")
    if found is None:
        msg = f"mvn not found on PATH: {_MVN_HINT}"
        raise MissingToolError(msg)
    return found


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def is_complete(jars_dir: Path, pom: Path = POM_PATH) -> bool:
    """True when ``jars_dir`` holds a finished copy made from this very pom."""
    marker = jars_dir / MARKER_NAME
    try:
        return marker.read_text().strip() == _pom_digest(pom)
    except OSError:
        return False


def mark_complete(jars_dir: Path, pom: Path = POM_PATH) -> None:
    (jars_dir / MARKER_NAME).write_text(_pom_digest(pom) + "\n")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_maven(mvn: str, pom: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="streamer-mvn-") as work:
        # Maven may create target/ next to the pom: keep that out of the installed package.
        work_pom = Path(work) / "pom.xml"
        shutil.copyfile(pom, work_pom)
        cmd = [
            mvn,
            "-B",
            "-ntp",
            "-f",
            str(work_pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ]
        try:
            proc = subprocess.run(
                cmd, cwd=work, capture_output=True, text=True, timeout=1800, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"running Maven failed: {exc}"
            raise KafkaHarnessError(msg) from exc
    if proc.returncode != 0:
        msg = (
            f"Maven could not resolve the Kafka broker jars (exit {proc.returncode}); "
            f"check network access to Maven Central. Last lines of its output:\n"
            f"{_tail(proc.stdout + proc.stderr)}"
        )
        raise KafkaHarnessError(msg)


def resolve_broker_jars(*, cache_dir: Path | None = None) -> Path:
    """Return a directory holding the Kafka broker classpath, running Maven if needed.

    ``cache_dir`` replaces ``${STREAMER_CACHE_DIR:-~/.cache/streamer}``; the jars go into
    ``<cache_dir>/kafka/<kafka.version>``. Raises :class:`MissingToolError` when ``java`` or
    ``mvn`` is missing, :class:`KafkaHarnessError` when Maven fails.
    """
    version = kafka_version()
    target = jars_dir_for(version, cache_dir=cache_dir)
    if is_complete(target):
        log.debug("Kafka %s jars already resolved in %s", version, target)
        return target
    find_java()
    mvn = find_mvn()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(target):  # another process finished while we waited
            return target
        if target.exists():
            log.info("removing the incomplete jar download in %s", target)
            shutil.rmtree(target)
        log.info("resolving Kafka %s jars with Maven into %s", version, target)
        started = time.monotonic()
        _run_maven(mvn, POM_PATH, target)
        jars = sorted(target.glob("*.jar"))
        if not any(j.name.startswith("kafka_") for j in jars):
            msg = f"Maven finished but {target} holds no kafka_*.jar"
            raise KafkaHarnessError(msg)
        mark_complete(target)
        log.info(
            "resolved %d jars for Kafka %s in %.1f s",
            len(jars),
            version,
            time.monotonic() - started,
        )
    return target
