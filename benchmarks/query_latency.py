"""Interactive query latency: lookups answered by the worker asked, and forwarded ones.

    python benchmarks/query_latency.py [--lookups 10000] [--keys 2000] [--out FILE]

A group of two worker processes (``streamer run --processes 2 --http-port P``, exactly-once)
counts ``keys`` keys on a 4-partition topic. Once every key's count is committed and each
worker runs two tasks, one client (``streamer.query.QueryClient``, one kept-alive HTTP
connection, one request at a time) sends ``lookups`` lookups to worker 0 for keys that
worker 0 owns (answered **locally**), then ``lookups`` for keys that worker 1 owns (worker
0 **forwards** each to worker 1). Keys are drawn at random from their set; every answer is
checked against the count produced. Reported: p50, p99 and mean in milliseconds of each
kind, and the ratio forwarded / local of each figure, all from one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streamer.kafka.admin import KafkaAdmin, TopicSpec
from streamer.query import QueryClient, QueryError
from streamer.testing.kafka import LocalKafkaCluster
from streamer.testing.kafka.node import SERVER_JVM_OPTS

APP_FILE = Path(__file__).with_name("query_app.py")
STORE = "query-counts"
PARTITIONS = 4


def _produce(bootstrap: str, topic: str, keys: int) -> dict[str, int]:
    """Key ``q<i>`` gets ``i % 5 + 1`` records, placed by murmur2 (Kafka's default)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "log_level": 3}
    )
    counts = {}
    for i in range(keys):
        counts[f"q{i}"] = i % 5 + 1
        for _ in range(i % 5 + 1):
            producer.produce(topic, b"{}", f"q{i}".encode())
        producer.poll(0)
    producer.flush(60)
    return counts


def _settled(client: QueryClient) -> bool:
    try:
        workers = client.overview()["workers"]
    except QueryError:
        return False
    tasks = [len(w.get("tasks", ())) for w in workers]
    return tasks == [2, 2] and all(t["state"] == "running" for w in workers for t in w["tasks"])


def _timed(client: QueryClient, keys: list[str], counts: dict[str, int], n: int) -> list[float]:
    rng = random.Random(7)
    seconds = []
    for _ in range(n):
        key = rng.choice(keys)
        began = time.perf_counter()
        answer = client.get(STORE, key)
        seconds.append(time.perf_counter() - began)
        if answer["value"] != counts[key]:
            msg = f"{key}: got {answer['value']}, produced {counts[key]}"
            raise RuntimeError(msg)
    return seconds


def _figures(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 3),
    }


def one_run(bootstrap: str, lookups: int, keys: int, work: Path) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    app_id, source, sink = f"query-{run_id}", f"query-in-{run_id}", f"query-out-{run_id}"
    KafkaAdmin(bootstrap).create_topics(
        [TopicSpec(source, PARTITIONS), TopicSpec(sink, PARTITIONS)]
    )
    counts = _produce(bootstrap, source, keys)
    port = 18700 + os.getpid() % 1000
    command = [
        sys.executable, "-m", "streamer.cli.main", "run", str(APP_FILE),
        "--app-id", app_id, "--bootstrap-servers", bootstrap, "--processes", "2",
        "--state-dir", str(work / run_id), "--http-port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_SOURCE": source, "BENCH_SINK": sink}
    with (work / f"{run_id}.log").open("wb") as log:
        group = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with QueryClient(f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 120
            while not _settled(client) or any(
                client.get(STORE, k)["value"] != c for k, c in list(counts.items())[:50]
            ):
                if time.monotonic() > deadline:
                    msg = "the group did not settle within 120 s"
                    raise RuntimeError(msg)
                time.sleep(0.5)
            own = f"http://127.0.0.1:{port}"
            local, forwarded = [], []
            for key in counts:  # which keys worker 0 owns; also warms both workers up
                (local if client.get(STORE, key)["served_by"] == own else forwarded).append(key)
            if client.get(STORE, local[0])["value"] != counts[local[0]]:
                msg = "counts changed"
                raise RuntimeError(msg)
            local_s = _timed(client, local, counts, lookups)
            forwarded_s = _timed(client, forwarded, counts, lookups)
    finally:
        group.send_signal(signal.SIGTERM)
        group.wait(60)
    result: dict[str, Any] = {"local": _figures(local_s), "forwarded": _figures(forwarded_s)}
    result["forwarded_over_local"] = {
        k: round(result["forwarded"][k] / result["local"][k], 2) for k in result["local"]
    }
    result["keys"] = {"local": len(local), "forwarded": len(forwarded)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalKafkaCluster(brokers=1, jvm_opts=SERVER_JVM_OPTS) as cluster,
    ):
        result = one_run(cluster.bootstrap_servers, options.lookups, options.keys, Path(tmp))
    summary = {
        "command": "python benchmarks/query_latency.py " + " ".join(argv or sys.argv[1:]),
        "lookups_per_kind": options.lookups,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
    }
    print(json.dumps(summary, indent=2))
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
