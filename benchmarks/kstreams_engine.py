"""Kafka Streams as a benchmark engine: build the Java application once, and start it.

    python -m benchmarks.kstreams_engine build     # what ./scripts/bench runs first

The application (``benchmarks/kstreams/``) runs the suite's workloads with the Kafka Streams
DSL at the broker's Kafka version. Maven resolves its classpath from Maven Central (the pom's
``kafka.version`` is set to the broker pom's) and ``javac`` compiles it, into
``${STREAMER_CACHE_DIR:-~/.cache/streamer}/kstreams-bench/<digest>``, where the digest
covers the pom, the Java sources, the Kafka version and the Java release. A marker written
after both steps succeeded makes the next build a no-op; concurrent builds serialise on a
lock file, as the broker jars do (:mod:`streamer.testing.kafka.jars`).

The suite starts the JVM where it would start ``python -m benchmarks.runner`` (same JSON spec,
same ``RESULT`` line), so the JVM's pid is the engine's and its CPU is all its threads'.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from streamer.errors import KafkaHarnessError, MissingToolError
from streamer.testing.kafka.jars import (
    check_java_version,
    default_cache_dir,
    find_java,
    find_mvn,
    kafka_version,
)

APP_DIR = Path(__file__).resolve().parent / "kstreams"
POM = APP_DIR / "pom.xml"
MAIN_CLASS = "io.streamer.bench.KStreamsBench"
ENGINES = ("kstreams", "kstreams-cached")
"""``kstreams`` runs with ``statestore.cache.max.bytes=0``; ``kstreams-cached`` with the default."""
JAVA_RELEASE = 17
JVM_OPTS = (
    "-Xms256m",
    "-Xmx1g",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    # The suite's state directories are temporary on purpose.
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.streams.processor.internals.StateDirectory"
    "=error",
)
"""G1 (the JVM's default on this machine), 1 GiB of heap at most, warnings to stderr."""
MARKER = ".built"


def is_kstreams(engine: str) -> bool:
    return engine in ENGINES


def _sources() -> list[Path]:
    return sorted((APP_DIR / "src/main/java").rglob("*.java"))


def _digest(version: str) -> str:
    sha = hashlib.sha256(f"kafka {version} java {JAVA_RELEASE}\n".encode())
    for path in [POM, *_sources()]:
        sha.update(path.relative_to(APP_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()[:16]


def build_dir(cache_dir: Path | None = None) -> Path:
    """Where the current sources' build lives (built or not)."""
    base = cache_dir if cache_dir is not None else default_cache_dir()
    return base / "kstreams-bench" / _digest(kafka_version())


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=1800, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"{what} failed: {exc}"
        raise KafkaHarnessError(msg) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        msg = f"{what} failed (exit {proc.returncode}); last lines of its output:\n{tail}"
        raise KafkaHarnessError(msg)


def _build_into(target: Path, version: str) -> None:
    java = find_java()
    check_java_version(java)
    javac = str(Path(java).resolve().parent / "javac")
    if not os.access(javac, os.X_OK):
        found = shutil.which("javac")
        if found is None:
            msg = (
                "javac not found beside java nor on PATH: the Kafka Streams benchmark needs "
                "a JDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)"
            )
            raise MissingToolError(msg)
        javac = found
    with tempfile.TemporaryDirectory(prefix="streamer-kstreams-") as work:
        # Maven may write target/ beside the pom: keep it out of the checkout.
        work_pom = Path(work) / "pom.xml"
        shutil.copyfile(POM, work_pom)
        _run(
            [
                find_mvn(),
                "-B",
                "-ntp",
                "-f",
                str(work_pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={target / 'lib'}",
                "-DincludeScope=runtime",
                f"-Dkafka.version={version}",
            ],
            "Maven, resolving kafka-streams from Maven Central",
            Path(work),
        )
    if not (target / "lib" / f"kafka-streams-{version}.jar").exists():
        msg = f"Maven finished but {target / 'lib'} holds no kafka-streams-{version}.jar"
        raise KafkaHarnessError(msg)
    _run(
        [
            javac,
            "--release",
            str(JAVA_RELEASE),
            "-encoding",
            "UTF-8",
            "-d",
            str(target / "classes"),
            "-cp",
            str(target / "lib" / "*"),
            *map(str, _sources()),
        ],
        "javac, compiling the Kafka Streams benchmark",
        APP_DIR,
    )


def build(cache_dir: Path | None = None) -> Path:
    """The built application's directory (``classes/`` and ``lib/``), building it if needed.

    Raises :class:`~streamer.errors.MissingToolError` when ``java``, ``javac`` or ``mvn`` is
    missing and :class:`~streamer.errors.KafkaHarnessError` when Maven or javac fails.
    """
    version = kafka_version()
    target = build_dir(cache_dir)
    if (target / MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / MARKER).exists():  # another process built it while we waited
            return target
        if target.exists():
            shutil.rmtree(target)  # an interrupted build
        _build_into(target, version)
        (target / MARKER).write_text(version + "\n")
    return target


def command(spec: dict[str, Any], built: Path) -> list[str]:
    """The command that runs ``spec`` (a runner spec whose engine is a Kafka Streams one)."""
    if not is_kstreams(spec.get("engine", "")):
        msg = f"not a Kafka Streams engine: {spec.get('engine')!r}"
        raise ValueError(msg)
    spec = {**spec, "clk_tck": os.sysconf("SC_CLK_TCK")}
    classpath = f"{built / 'classes'}{os.pathsep}{built / 'lib' / '*'}"
    return [find_java(), *JVM_OPTS, "-cp", classpath, MAIN_CLASS, json.dumps(spec)]


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m benchmarks.kstreams_engine build", file=sys.stderr)
        return 2
    print(build())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
