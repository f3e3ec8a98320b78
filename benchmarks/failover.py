"""Failover in a group of three workers: time until every moved partition produces output
again after one worker is SIGKILLed, with and without standby replicas.

    python benchmarks/failover.py [--records 1000000] [--runs 3] [--standbys 0 1] [--out FILE]

One round: a 6-partition input of ``records`` distinct keys is counted by three ``streamer
run`` groups of one process each (``benchmarks/recovery_app.py``, exactly-once, consumer
group protocol), each with its own state directory and instance prefix, as three hosts would
be. Once the group has committed every input record and every standby copy has caught up
(``streamer_task_standby_lag_records`` of 0 on every worker), the second worker's whole
process group is SIGKILLed and one probe record is produced to each of its partitions.
The clock runs from the kill to the moment each probe's count is visible to a
``read_committed`` consumer; the round's figure is the slowest partition, and the summary
also gives the median per moved partition, with and without a standby hit.

What the clock includes: the broker noticing the dead member (its session timeout,
``group.consumer.session.timeout.ms``, 10 s on the test broker), the new assignment, each
moved task's restore (its whole changelog partition without a warm copy, the tail past the
copy's position with one), and the first transaction. The killed worker's open transaction
must be aborted before its partitions' output can be read: the workers run with
``transaction.timeout.ms=5000`` and the broker checks for timed-out transactions every
second, so that happens before the session expires.

A moved task is a *standby hit* when its new owner took it over from a standby copy and
restored less than a tenth of its changelog (the log says ``taken over from its standby copy``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from streamer.kafka.admin import KafkaAdmin, KafkaAdminError, TopicSpec
from streamer.kafka.groups import GroupAdmin
from streamer.testing.kafka import LocalKafkaCluster
from streamer.testing.kafka.config import free_ports
from streamer.testing.kafka.node import SERVER_JVM_OPTS

APP_FILE = Path(__file__).with_name("recovery_app.py")
STORE = "recovery-counts"
PARTITIONS = 6
WORKERS = 3
QUIET = {"log_level": 3}
BROKER = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"}


def _produce(bootstrap: str, topic: str, records: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, **QUIET})
    for n in range(records):
        while True:
            try:
                producer.produce(topic, b"{}", f"k{n}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def _start(bootstrap: str, app_id: str, n: int, standbys: int, work: Path, port: int) -> Any:
    command = [
        sys.executable, "-m", "streamer.cli.main", "run", str(APP_FILE),
        "--app-id", app_id, "--bootstrap-servers", bootstrap,
        "--state-dir", str(work / f"host-{n}"), "--instance-prefix", f"h{n}-",
        "--processes", "1", "--guarantee", "exactly-once",
        "--standby-replicas", str(standbys), "--metrics-port", str(port),
        "--metrics-address", "127.0.0.1",
        "--kafka-producer", "transaction.timeout.ms=5000",
    ]  # fmt: skip
    with (work / f"host-{n}.log").open("ab") as out:
        return subprocess.Popen(
            command, env=os.environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )  # fmt: skip


def _metric(port: int, name: str) -> dict[str, float]:
    """Per label set: the samples of ``name`` served on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name) :]] = float(value)
    return found


def _wait(what: str, check: Any, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, KafkaAdminError):
            pass  # a metrics server or a coordinator not up yet: ask again
        if time.monotonic() > deadline:
            msg = f"{what}: not within {timeout} s"
            raise RuntimeError(msg)
        time.sleep(0.5)


def _committed(bootstrap: str, group: str, ends: dict[int, int]) -> dict[int, int]:
    """The group's committed offsets of the input (the admin API's list of group offsets
    crashed this client while a consumer-protocol group was forming)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **QUIET})
    try:
        source = os.environ["BENCH_SOURCE"]
        found = probe.committed([TopicPartition(source, p) for p in ends], timeout=10)
    except KafkaException:
        return {}  # the group's coordinator is still loading: ask again
    finally:
        probe.close()
    return {tp.partition: tp.offset for tp in found}


def _standbys_caught_up(ports: list[int], standbys: int) -> bool:
    copies = [
        lag for port in ports for lag in _metric(port, "streamer_task_standby_lag_records").values()
    ]
    return len(copies) == PARTITIONS * standbys and all(lag <= 1 for lag in copies)


def _probes(bootstrap: str, source: str, partitions: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **QUIET})
    for p in partitions:
        producer.produce(source, b"{}", f"probe-{p}".encode(), partition=p)
    producer.flush(30)


def _wait_for_probes(consumer: Consumer, partitions: list[int], began: float) -> dict[int, float]:
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 600
    while len(seen) < len(partitions) and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=0.05):
            key = message.key() if message.error() is None else None
            if key is not None and key.startswith(b"probe-"):
                seen.setdefault(int(key[6:]), time.perf_counter() - began)
    if len(seen) < len(partitions):
        msg = f"probes seen for partitions {sorted(seen)} of {partitions} only"
        raise RuntimeError(msg)
    return seen


def _assigned_at(text: str, source: str, partition: int) -> float:
    """When a survivor's log says it was assigned ``partition`` (epoch seconds; the log's
    times are local)."""
    for line in text.splitlines():
        if "assigned" in line and "revoked" not in line and f"{source}[{partition}]" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone()
            return stamp.timestamp()
    msg = f"no survivor says it was assigned {source}[{partition}]"
    raise RuntimeError(msg)


def one_round(bootstrap: str, records: int, standbys: int, work: Path) -> dict[str, Any]:
    admin = KafkaAdmin(bootstrap)
    run_id = uuid.uuid4().hex[:8]
    app_id, source, sink = f"failover-{run_id}", f"fo-in-{run_id}", f"fo-out-{run_id}"
    admin.create_topics([TopicSpec(source, PARTITIONS), TopicSpec(sink, PARTITIONS)])
    os.environ.update({"BENCH_SOURCE": source, "BENCH_SINK": sink})
    work = work / run_id
    work.mkdir(parents=True)
    _produce(bootstrap, source, records)
    ports = free_ports(WORKERS)
    hosts = [_start(bootstrap, app_id, n, standbys, work, ports[n]) for n in range(WORKERS)]
    try:
        ends = admin.end_offsets(source)
        _wait("the group commits every record", lambda: _committed(bootstrap, app_id, ends) == ends)
        if standbys:
            _wait("the standby copies catch up", lambda: _standbys_caught_up(ports, standbys))
        members = GroupAdmin(bootstrap).describe_group(app_id).members
        victim = next(m for m in members if m.client_id == f"{app_id}-h1-0")
        moved = sorted(p for _t, p in victim.partitions)
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"probe-{run_id}",
             "isolation.level": "read_committed", **QUIET}
        )  # fmt: skip
        consumer.assign([TopicPartition(sink, p, o) for p, o in admin.end_offsets(sink).items()])
        sizes = {p: o for p, o in admin.end_offsets(f"{app_id}-{STORE}-changelog").items()}
        logged = {n: (work / f"host-{n}.log").stat().st_size for n in (0, 2)}
        began, killed_at = time.perf_counter(), time.time()
        os.killpg(hosts[1].pid, signal.SIGKILL)
        hosts[1].wait(30)
        _probes(bootstrap, source, moved)
        seen = _wait_for_probes(consumer, moved, began)
        consumer.close()
    finally:
        for host in hosts:
            if host.poll() is None:
                os.killpg(host.pid, signal.SIGTERM)
        for host in hosts:
            host.wait(60)
    text = "\n".join(
        (work / f"host-{n}.log").read_text(errors="replace")[logged[n] :] for n in (0, 2)
    )
    tasks = []
    for p in moved:
        task = f"0_{p}"
        restored = sum(
            int(n) for n in re.findall(rf"task {task}: restored {STORE}: (\d+) records", text)
        )
        # A hit: the new owner took over a copy and restored less than a tenth of the
        # changelog (a copy placed after the kill can be taken over before it is warm).
        hit = f"task {task}: {STORE} taken over from its standby copy" in text
        hit = hit and restored < sizes[p] // 10
        assigned = _assigned_at(text, source, p) - killed_at
        tasks.append({"task": task, "changelog_end": sizes[p], "restored": restored,
                      "standby_hit": hit, "seconds": round(seen[p], 3),
                      "assigned_s": round(assigned, 3),
                      "assigned_to_output_s": round(seen[p] - assigned, 3)})  # fmt: skip
    return {"standby_replicas": standbys, "seconds": max(seen.values()), "tasks": tasks}


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/failover.py", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--standbys", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("var/bench-failover"))
    options = parser.parse_args(argv)
    options.work.mkdir(parents=True, exist_ok=True)
    rounds = []
    with LocalKafkaCluster(brokers=1, jvm_opts=SERVER_JVM_OPTS, broker_config=BROKER) as cluster:
        for n in range(options.runs):
            for standbys in options.standbys:
                result = one_round(
                    cluster.bootstrap_servers, options.records, standbys, options.work
                )
                rounds.append(result)
                hits = sum(t["standby_hit"] for t in result["tasks"])
                print(
                    f"round {n + 1}, {standbys} standby: every moved partition has output "
                    f"{result['seconds']:.2f} s after the kill; restored "
                    f"{[t['restored'] for t in result['tasks']]}; {hits} of "
                    f"{len(result['tasks'])} moved tasks took over a standby copy",
                    flush=True,
                )
    summary: dict[str, Any] = {"records": options.records, "rounds": rounds}
    for standbys in options.standbys:
        mine = [r for r in rounds if r["standby_replicas"] == standbys]
        seconds = sorted(r["seconds"] for r in mine)
        moved = [t for r in mine for t in r["tasks"]]
        summary[f"standby_{standbys}"] = {
            "median_s": seconds[len(seconds) // 2],
            "moved_tasks": len(moved),
            "standby_hits": sum(t["standby_hit"] for t in moved),
            "median_partition_s_hit": _median([t["seconds"] for t in moved if t["standby_hit"]]),
            "median_partition_s_miss": _median(
                [t["seconds"] for t in moved if not t["standby_hit"]]
            ),
            "median_assigned_to_output_s_hit": _median(
                [t["assigned_to_output_s"] for t in moved if t["standby_hit"]]
            ),
            "median_assigned_to_output_s_miss": _median(
                [t["assigned_to_output_s"] for t in moved if not t["standby_hit"]]
            ),
        }
    print(json.dumps(summary, indent=2))
    if options.out is not None:
        options.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
