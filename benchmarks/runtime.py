"""Runtime benchmarks: processing throughput at both guarantees and changelog restore time,
each beside a raw confluent-kafka baseline measured in the same run on the same broker.

    python -m benchmarks.runtime [--records 200000] [--restore-records 1000000] [--out FILE]

Workload: ~100-byte JSON card transactions, 10,000 keys, 8 partitions, pre-produced.
Throughput is measured over the processing span (first record in to last record out),
not start-up. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from streamer import StreamsBuilder, Topology
from streamer.kafka.admin import TopicSpec
from streamer.runtime.config import AppConfig, Guarantee
from streamer.runtime.worker import Worker
from streamer.testing.kafka import LocalKafkaCluster

PARTITIONS = 8
KEYS = 10_000


def transaction(n: int) -> bytes:
    return json.dumps(
        {
            "id": n,
            "card": f"card-{n % KEYS:05d}",
            "amount": round((n * 7919) % 50000 / 100, 2),
            "currency": "EUR",
            "merchant": f"m-{n % 997}",
            "ts": 1_700_000_000_000 + n,
        }
    ).encode()


def preproduce(bootstrap: str, topic: str, count: int, *, partition: int | None = None) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",
        }
    )
    for n in range(count):
        key = f"card-{n % KEYS:05d}".encode()
        while True:
            try:
                if partition is None:
                    producer.produce(topic, key=key, value=transaction(n))
                else:
                    producer.produce(topic, key=key, value=transaction(n), partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)


def running_count(source: str, sink: str) -> Topology:
    builder = StreamsBuilder()

    def add(key: Any, value: Any, agg: Any) -> Any:
        return {"count": agg["count"] + 1, "sum": round(agg["sum"] + value["amount"], 2)}

    (
        builder.stream(source)
        .group_by_key()
        .aggregate(lambda: {"count": 0, "sum": 0.0}, add, name="card-totals")
        .to_stream()
        .to(sink)
    )
    return builder.build()


def stateless(source: str, sink: str) -> Topology:
    builder = StreamsBuilder()
    builder.stream(source).map_values(lambda v: {**v, "flagged": v["amount"] > 400}).to(sink)
    return builder.build()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(
    bootstrap: str, topology: Topology, guarantee: Guarantee, records: int
) -> dict[str, float]:
    config = AppConfig(
        app_id=f"bench-{uuid.uuid4().hex[:8]}",
        bootstrap_servers=bootstrap,
        guarantee=guarantee,
        state_dir=Path(tempfile.mkdtemp()),
    )
    worker = Worker(topology, config)
    thread = threading.Thread(target=worker.run, daemon=True)
    cpu0 = cpu_seconds()
    thread.start()
    while worker.records_in == 0:
        time.sleep(0.001)
    start = time.perf_counter()
    while worker.records_in < records:
        time.sleep(0.002)
    worker.request_stop()
    thread.join(120)
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "records_per_s": records / elapsed, "cpu_s": cpu_seconds() - cpu0}


def raw_loop(bootstrap: str, source: str, sink: str, records: int) -> dict[str, float]:
    """The physical limit for one Python process: consume, parse, add a field, produce."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    consumer.subscribe([source])
    seen = 0
    start = 0.0
    while seen < records:
        batch = consumer.consume(num_messages=1000, timeout=0.1)
        for message in batch:
            if message.error() is not None:
                continue
            if start == 0.0:
                start = time.perf_counter()
            value = json.loads(message.value() or b"{}")
            value["flagged"] = value["amount"] > 400
            while True:
                try:
                    producer.produce(sink, key=message.key(), value=json.dumps(value).encode())
                    break
                except BufferError:
                    producer.poll(0.05)
            seen += 1
        producer.poll(0)
    producer.flush(60)
    consumer.commit(asynchronous=False)
    elapsed = time.perf_counter() - start
    consumer.close()
    return {"seconds": elapsed, "records_per_s": records / elapsed}


def raw_read(bootstrap: str, topic: str, partitions: int) -> dict[str, float]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "raw-read",
            "enable.partition.eof": True,
            "fetch.max.bytes": 16 << 20,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    pending = set(range(partitions))
    count = 0
    start = time.perf_counter()
    while pending:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                continue
            count += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return {"seconds": elapsed, "records": count, "records_per_s": count / elapsed}


def restore(bootstrap: str, admin: Any, records: int) -> dict[str, Any]:
    source, sink = f"rs-in-{uuid.uuid4().hex[:6]}", f"rs-out-{uuid.uuid4().hex[:6]}"
    admin.create_topics([TopicSpec(source, 1), TopicSpec(sink, 1)])
    app_id = f"bench-restore-{uuid.uuid4().hex[:6]}"
    changelog = f"{app_id}-card-totals-changelog"
    admin.create_topics([TopicSpec(changelog, 1, config={"cleanup.policy": "compact"})])
    preproduce(bootstrap, changelog, records, partition=0)
    baseline = raw_read(bootstrap, changelog, 1)
    config = AppConfig(
        app_id=app_id,
        bootstrap_servers=bootstrap,
        state_dir=Path(tempfile.mkdtemp()),
        guarantee=Guarantee.AT_LEAST_ONCE,
    )
    worker = Worker(running_count(source, sink), config)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while getattr(worker, "restorer", None) is None or not worker.restorer.active:
        time.sleep(0.001)
    start = time.perf_counter()
    while not worker.ready:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    restored = worker.restorer.total_restored
    worker.request_stop()
    thread.join(120)
    return {
        "restore_seconds": elapsed,
        "restored": restored,
        "records_per_s": restored / elapsed,
        "raw_read": baseline,
        "ratio_vs_raw": (restored / elapsed) / baseline["records_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--restore-records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/runtime.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "records": args.records,
    }
    with LocalKafkaCluster(brokers=1) as cluster:
        bootstrap, admin = cluster.bootstrap_servers, cluster.admin
        source = f"tx-{uuid.uuid4().hex[:6]}"
        admin.create_topics([TopicSpec(source, PARTITIONS)])
        print(f"pre-producing {args.records} records ...", flush=True)
        preproduce(bootstrap, source, args.records)
        rows = []
        for name, make, guarantee in (
            ("raw confluent-kafka loop", None, None),
            ("stateless, at-least-once", stateless, Guarantee.AT_LEAST_ONCE),
            ("stateless, exactly-once", stateless, Guarantee.EXACTLY_ONCE),
            ("per-card aggregate, at-least-once", running_count, Guarantee.AT_LEAST_ONCE),
            ("per-card aggregate, exactly-once", running_count, Guarantee.EXACTLY_ONCE),
        ):
            sink = f"out-{uuid.uuid4().hex[:6]}"
            admin.create_topics([TopicSpec(sink, PARTITIONS)])
            print(f"running: {name} ...", flush=True)
            if make is None:
                result = raw_loop(bootstrap, source, sink, args.records)
            else:
                assert guarantee is not None
                result = run_worker(bootstrap, make(source, sink), guarantee, args.records)
            rows.append({"workload": name, **result})
        raw_rate = rows[0]["records_per_s"]
        for row in rows:
            row["ratio_vs_raw"] = row["records_per_s"] / raw_rate
        results["throughput"] = rows
        print(f"restore of {args.restore_records} changelog records ...", flush=True)
        results["restore"] = restore(bootstrap, admin, args.restore_records)
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"{'workload':<36} {'records/s':>10} {'x raw':>6}")
    for row in results["throughput"]:
        print(f"{row['workload']:<36} {row['records_per_s']:>10.0f} {row['ratio_vs_raw']:>6.2f}")
    r = results["restore"]
    print(
        f"restore: {r['restored']} records in {r['restore_seconds']:.1f} s "
        f"({r['records_per_s']:.0f}/s, {r['ratio_vs_raw']:.2f}x the raw read at "
        f"{r['raw_read']['records_per_s']:.0f}/s)"
    )
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
