"""Helpers of the query tests: a counts app run as a worker group with query servers, its
input, and waiting until the group has settled."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streamer.query import QueryClient, QueryError
from tests.integration.support import read_to_end, start_streamer_run

APP = "tests.integration.query_apps:counts"
PARTITIONS = 4
KEYS = [f"k-{i}" for i in range(40)]
BASE_MS = 1_700_000_000_000
TOKEN = f"t-{uuid.uuid4().hex}"


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range")


def produce_counts(bootstrap: str, topic: str) -> dict[str, list[int]]:
    """Key ``k-i`` gets ``i % 7 + 1`` records, 3 s apart; returns each key's timestamps.
    Placed by murmur2 as Kafka's Java clients place keys."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    stamps: dict[str, list[int]] = {}
    for i, key in enumerate(KEYS):
        for j in range(i % 7 + 1):
            ts = BASE_MS + j * 3_000
            stamps.setdefault(key, []).append(ts)
            producer.produce(topic, json.dumps({"n": j}).encode(), key.encode(), timestamp=ts)
    assert producer.flush(30) == 0
    return stamps


def run_group(
    app_id: str,
    bootstrap: str,
    state: Path,
    port: int,
    log: Path,
    processes: int,
    env: dict[str, str],
) -> subprocess.Popen[bytes]:
    args = [
        APP,
        "--app-id",
        app_id,
        "--bootstrap-servers",
        bootstrap,
        "--processes",
        str(processes),
        "--state-dir",
        str(state),
        "--http-port",
        str(port),
    ]
    return start_streamer_run(args, {"STREAMER_HTTP_TOKEN": TOKEN, **env}, log)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def wait_for_tasks(client: QueryClient, workers: int, log: Path, timeout: float = 90) -> None:
    """Until ``workers`` members serve queries, and every task runs (none restoring)."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            seen = client.overview()["workers"]
        except QueryError as exc:
            seen = exc
        else:
            if settled(seen, client.overview()["lag"], workers):
                return
        time.sleep(0.2)
    raise AssertionError(f"tasks not all running: {seen}\n{log.read_text()[-3000:]}")


def settled(views: list[dict[str, Any]], lag: dict[str, Any], workers: int) -> bool:
    """Every member has tasks and they all run, each on the member the group description
    says owns its partition (a lone first member holds every partition for a moment)."""
    if len(views) != workers or any("error" in v or not v["tasks"] for v in views):
        return False
    if "error" in lag:
        return False
    running = {
        p: view["url"]
        for view in views
        for task in view["tasks"]
        if task["state"] == "running"
        for _topic, p in task["inputs"]
    }
    owners = {
        row["partition"]: (row["owner"] or {}).get("client_id", "").partition("|")[2]
        for row in lag["partitions"]
    }
    return len(running) == PARTITIONS and owners == running


def final_counts(bootstrap: str, sink: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _p, _o, key, value in read_to_end(bootstrap, sink):
        assert key is not None
        assert value is not None
        counts[key.decode()] = max(counts.get(key.decode(), 0), json.loads(value)["count"])
    return counts
