"""Recovery after a SIGKILL: time from restarting a worker to its first output.

    python benchmarks/recovery.py [--records 1000000] [--runs 3] [--out FILE]

One round: a single-partition input of ``records`` distinct keys is counted by
``streamer run benchmarks/recovery_app.py`` (exactly-once, one worker process, classic group
protocol with static membership, so a restarted worker takes its partition back at once).
Once the group has committed every input record, the whole process group is SIGKILLed; the
clock starts when ``streamer run`` is started again, with one probe record produced right
after, and stops when the probe's count is visible to a ``read_committed`` consumer. The
store's changelog holds about ``records`` records: a worker that restores it in full pays
for all of them, one that restores only the tail past its recorded position does not.

Self-contained on purpose (it uses only ``streamer run``, the broker harness and the admin
client), so the same file measures an older checkout: run it with ``PYTHONPATH`` pointing at
that checkout.
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
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from streamer.kafka.admin import KafkaAdmin, KafkaAdminError, TopicSpec
from streamer.testing.kafka import LocalKafkaCluster
from streamer.testing.kafka.node import SERVER_JVM_OPTS

APP_FILE = Path(__file__).with_name("recovery_app.py")
QUIET = {"log_level": 3}


def _produce(bootstrap: str, topic: str, keys: range | list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, **QUIET})
    for key in keys:
        while True:
            try:
                producer.produce(topic, b"{}", str(key).encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def _start(bootstrap: str, app_id: str, state: Path, env: dict[str, str], log: Path) -> Any:
    command = [
        sys.executable, "-m", "streamer.cli.main", "run", str(APP_FILE),
        "--app-id", app_id, "--bootstrap-servers", bootstrap, "--state-dir", str(state),
        "--processes", "1", "--guarantee", "exactly-once",
        "--group-protocol", "classic", "--static-membership",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _wait_committed(admin: KafkaAdmin, group: str, topic: str, offset: int) -> None:
    deadline = time.monotonic() + 600
    while True:
        try:
            if admin.group_offsets(group, topic).get(0, -1) >= offset:
                return
        except KafkaAdminError:
            pass  # the group's coordinator is still loading: ask again
        if time.monotonic() > deadline:
            msg = f"group {group} did not commit {offset} on {topic} within 600 s"
            raise RuntimeError(msg)
        time.sleep(0.2)


def _wait_for_key(consumer: Consumer, key: bytes, deadline: float) -> float:
    while time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=0.05):
            if message.error() is None and message.key() == key:
                return time.perf_counter()
    msg = "the probe's output did not appear"
    raise RuntimeError(msg)


def one_round(bootstrap: str, records: int, work: Path) -> dict[str, Any]:
    admin = KafkaAdmin(bootstrap)
    run_id = uuid.uuid4().hex[:8]
    app_id, source, sink = f"recovery-{run_id}", f"rec-in-{run_id}", f"rec-out-{run_id}"
    admin.create_topics([TopicSpec(source, 1), TopicSpec(sink, 1)])
    env = {"BENCH_SOURCE": source, "BENCH_SINK": sink}
    state, log = work / run_id, work / f"{run_id}.log"
    _produce(bootstrap, source, [f"k{n}" for n in range(records)])
    first = _start(bootstrap, app_id, state, env, log)
    try:
        _wait_committed(admin, app_id, source, records)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    end = admin.end_offsets(sink)[0]
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"probe-{run_id}",
         "isolation.level": "read_committed", **QUIET}
    )  # fmt: skip
    consumer.assign([TopicPartition(sink, 0, end)])
    log_start = log.stat().st_size
    started = time.perf_counter()
    second = _start(bootstrap, app_id, state, env, log)
    try:
        _produce(bootstrap, source, ["probe"])
        seen = _wait_for_key(consumer, b"probe", time.monotonic() + 600)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(60)
        consumer.close()
    text = log.read_text(errors="replace")[log_start:]
    restored = sum(int(n) for n in re.findall(r"restored recovery-counts: (\d+) records", text))
    return {"seconds": seen - started, "restored": restored, "changelog_records": records}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/recovery.py", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("var/bench-recovery"))
    options = parser.parse_args(argv)
    options.work.mkdir(parents=True, exist_ok=True)
    rounds = []
    with LocalKafkaCluster(brokers=1, jvm_opts=SERVER_JVM_OPTS) as cluster:
        for n in range(options.runs):
            result = one_round(cluster.bootstrap_servers, options.records, options.work)
            rounds.append(result)
            print(
                f"round {n + 1}: first output {result['seconds']:.2f} s after the restart, "
                f"{result['restored']:,} changelog records restored",
                flush=True,
            )
    seconds = sorted(r["seconds"] for r in rounds)
    summary = {"records": options.records, "rounds": rounds, "median_s": seconds[len(seconds) // 2]}
    print(json.dumps(summary, indent=2))
    if options.out is not None:
        options.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
