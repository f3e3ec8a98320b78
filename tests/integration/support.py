"""Helpers for runtime integration tests: worker processes and exact output reads."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.kafka.clients import produce
from streamer.runtime.config import AppConfig
from streamer.runtime.launch import WorkerOptions, launch_worker
from streamer.runtime.worker import Worker
from streamer.topology.graph import Topology


class WorkerProcess:
    """One ``streamer.runtime.child`` process running ``spec`` as slot ``instance``."""

    def __init__(
        self,
        spec: str,
        config: AppConfig,
        env: dict[str, str],
        log_dir: Path,
        *,
        group_protocol: str = "consumer",
    ) -> None:
        self.spec = spec
        self.group_protocol = group_protocol
        self.config = config
        self.env = env
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> WorkerProcess:
        self.starts += 1
        log = open(self.log_dir / f"worker-{self.config.instance}-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = launch_worker(
            self.spec,
            self.config,
            WorkerOptions(group_protocol=self.group_protocol),
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM the worker once it has started (so that it has a group to leave) and
        return its exit code."""
        assert self.process is not None
        log_path = self.log_dir / f"worker-{self.config.instance}-{self.starts}.log"
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if log_path.exists() and " started (" in log_path.read_text(errors="replace"):
                break
            time.sleep(0.1)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def ensure_dead(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def wait_until_processing(self, timeout: float = 90.0) -> None:
        """Wait until the current process owns partitions (its log says so)."""
        log_path = self.log_dir / f"worker-{self.config.instance}-{self.starts}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace") if log_path.exists() else ""
            if re.search(r"assigned [1-9][0-9]* partitions", text):
                return
            assert self.process is not None
            assert self.process.poll() is None, f"the worker exited: {text[-2000:]}"
            time.sleep(0.1)
        raise AssertionError(f"worker {self.config.instance} got no partitions in {timeout} s")

    def log_text(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")
            for p in sorted(self.log_dir.glob(f"worker-{self.config.instance}-*.log"))
        )


@contextmanager
def worker_thread(topology: Topology, config: AppConfig) -> Iterator[Worker]:
    """Run a Worker on a thread; stops it cleanly (or re-raises its failure) on exit."""
    worker = Worker(topology, config)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop within 60 s"
    if failure:
        raise failure[0]


def run_worker_until_failure(
    topology: Topology, config: AppConfig, timeout: float
) -> BaseException | None:
    worker = Worker(topology, config)
    result: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        worker.request_stop()
        thread.join(60)
        return None
    return result[0] if result else None


def app_config(bootstrap: str, state_dir: Path, **overrides: Any) -> AppConfig:
    config = AppConfig(
        app_id=f"it-{uuid.uuid4().hex[:10]}",
        bootstrap_servers=bootstrap,
        state_dir=state_dir,
    )
    return dataclasses.replace(config, **overrides)


def read_to_end(
    bootstrap: str, topic: str, *, timeout: float = 60.0
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Every committed record of ``topic``, as (partition, offset, key, value), read up to
    the end offsets taken at the start (read_committed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in pending])
        out: list[tuple[int, int, bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                partition = message.partition()
                assert partition is not None
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                        continue
                    raise RuntimeError(error.str())
                offset = message.offset()
                assert offset is not None
                out.append((partition, offset, message.key(), message.value()))
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
        assert not pending, f"could not read {topic} to its end within {timeout} s"
        return out
    finally:
        consumer.close()


def wait_for_count(bootstrap: str, topic: str, count: int, *, timeout: float) -> None:
    """Wait until ``topic`` holds at least ``count`` committed records."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"waiter-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while seen < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: {seen} of {count} records after {timeout} s")
            seen += sum(
                1 for m in consumer.consume(num_messages=10_000, timeout=0.5) if m.error() is None
            )
    finally:
        consumer.close()


def decode(value: bytes | None) -> Any:
    return None if value is None else json.loads(value)


_COORDINATOR_MOVING = (
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
)


def wait_for_group_caught_up(bootstrap: str, group: str, topic: str, *, timeout: float) -> None:
    """Wait until ``group`` has committed offsets at the end of every partition of ``topic``.

    Counting output records is not enough under at-least-once: duplicates can make up the
    count before every input record is processed.
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:8]}"}
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        deadline = time.monotonic() + timeout
        while True:
            probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
            try:
                committed = {
                    tp.partition: tp.offset
                    for tp in probe.committed(
                        [TopicPartition(topic, p) for p in partitions], timeout=10
                    )
                }
            except KafkaException as exc:
                # The group's coordinator is moving or loading (a fresh broker): ask again.
                if exc.args[0].code() not in _COORDINATOR_MOVING:
                    raise
                committed = {}
            finally:
                probe.close()
            behind = {
                p: ends[p] - committed.get(p, 0)
                for p in partitions
                if committed.get(p, 0) < ends[p]
            }
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"group {group} still behind on {topic}: {behind}")
            time.sleep(0.2)
    finally:
        consumer.close()


def start_streamer_run(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``streamer run ARGS`` as a child process with extra ``env``, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamer.cli.main", "run", *args],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for_time_retention(bootstrap: str, *, timeout: float = 90.0) -> None:
    """Wait until the broker's time-based retention is running, proven by its deleting a record.

    A broker starts its retention checks 30 s after it starts (a fixed delay in Kafka's log
    manager); the test broker then checks every second. A test that claims to survive
    retention first waits here, so that the retention it survives really runs.
    """
    admin = KafkaAdmin(bootstrap)
    probe = f"retention-probe-{uuid.uuid4().hex[:8]}"
    admin.create_topics([TopicSpec(probe)])  # the broker's default retention (7 days)
    try:
        produce(bootstrap, probe, [(None, b"old")], timestamp=OLD_EVENT_TIME_MS)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "retention-probe"})
        try:
            deadline = time.monotonic() + timeout
            while True:
                low, _high = consumer.get_watermark_offsets(
                    TopicPartition(probe, 0), timeout=10, cached=False
                )
                if low >= 1:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the broker deleted no old record within {timeout} s")
                time.sleep(0.5)  # polling the broker for a condition, not waiting out a race
        finally:
            consumer.close()
    finally:
        admin.delete_topics([probe])


# 2001-01-01T00:00:00Z: older than any broker's default retention.
OLD_EVENT_TIME_MS = 978_307_200_000
