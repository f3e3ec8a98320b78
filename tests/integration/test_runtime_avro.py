"""Avro topologies on the real broker and a real schema registry: an end-to-end run with
schema evolution on the input, an Avro state store and Avro output; bad Avro input under each
error policy."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamer import StreamsBuilder, Topology
from streamer.errors import SerializationError
from streamer.kafka.clients import produce
from streamer.runtime.config import ErrorPolicy
from streamer.serde import (
    AvroSerde,
    JsonSerde,
    RegistryAvroSerde,
    SchemaRegistryClient,
    StringSerde,
)
from streamer.testing import TopologyTestDriver
from streamer.testing.kafka import KafkaCluster
from tests.integration.support import (
    app_config,
    read_to_end,
    run_worker_until_failure,
    wait_for_count,
    worker_thread,
)

DOWN_URL = "http://127.0.0.1:9/apis/ccompat/v7"  # the discard port: nothing answers

TX_V1: dict[str, Any] = {
    "type": "record",
    "name": "Transaction",
    "namespace": "it.avro",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "card", "type": "string"},
        {"name": "amount", "type": "float"},
        {"name": "ts", "type": "long"},
    ],
}
TX_V2: dict[str, Any] = {  # amount promoted to double, a channel added with a default
    **TX_V1,
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "card", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "ts", "type": "long"},
        {"name": "channel", "type": "string", "default": "unknown"},
    ],
}
TOTALS: dict[str, Any] = {
    "type": "record",
    "name": "CardTotals",
    "namespace": "it.avro",
    "fields": [
        {"name": "count", "type": "long"},
        {"name": "total", "type": "double"},
        {"name": "channels", "type": {"type": "map", "values": "long"}},
        {"name": "last_tx", "type": "string", "default": ""},
    ],
}
SUMMARY: dict[str, Any] = {
    "type": "record",
    "name": "CardSummary",
    "namespace": "it.avro",
    "fields": [
        {"name": "card", "type": "string"},
        {"name": "count", "type": "long"},
        {"name": "total", "type": "double"},
        {"name": "last_tx", "type": "string"},
    ],
}


def _add(card: str, tx: dict[str, Any], totals: dict[str, Any]) -> dict[str, Any]:
    channels = dict(totals["channels"])
    channels[tx["channel"]] = channels.get(tx["channel"], 0) + 1
    return {
        "count": totals["count"] + 1,
        "total": totals["total"] + tx["amount"],
        "channels": channels,
        "last_tx": tx["id"],
    }


def card_totals(source: str, sink: str, registry_url: str) -> Topology:
    """Per card: count and sum of amounts (an Avro state store), each update out as Avro."""
    builder = StreamsBuilder()
    (
        builder.stream(
            source, key_serde=StringSerde(), value_serde=RegistryAvroSerde(registry_url, TX_V2)
        )
        .group_by_key()
        .aggregate(
            lambda: {"count": 0, "total": 0.0, "channels": {}, "last_tx": ""},
            _add,
            name="card-totals",
            value_serde=AvroSerde(TOTALS),
        )
        .to_stream()
        .map(
            lambda card, totals: (
                card,
                {
                    "card": card,
                    "count": totals["count"],
                    "total": totals["total"],
                    "last_tx": totals["last_tx"],
                },
            )
        )
        .to(
            sink,
            value_serde=RegistryAvroSerde(registry_url, SUMMARY, topic=sink, auto_register=True),
        )
    )
    return builder.build()


def _transactions(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"tx-{i:05d}", "card": f"card-{i % 7}", "amount": float(i % 50), "ts": i}
        for i in range(n)
    ]


def test_avro_in_avro_state_avro_out_with_two_input_schema_versions(
    kafka: KafkaCluster, new_topic, schema_registry: Any, tmp_path: Path
) -> None:
    bootstrap, url = kafka.bootstrap_servers, schema_registry.url
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    client = SchemaRegistryClient(url)
    client.set_compatibility("BACKWARD", f"{source}-value")
    old_producer = RegistryAvroSerde(client, TX_V1, topic=source, auto_register=True)
    new_producer = RegistryAvroSerde(client, TX_V2, topic=source, auto_register=True)
    txs = _transactions(300)
    records = []
    for tx in txs:  # the first half from old producers, the rest from upgraded ones
        if int(tx["id"][3:]) < 150:
            records.append((tx["card"].encode(), old_producer.encode(tx)))
        else:
            tx["channel"] = "pos" if int(tx["id"][3:]) % 2 else "web"
            records.append((tx["card"].encode(), new_producer.encode(tx)))
    produce(bootstrap, source, records)

    config = app_config(bootstrap, tmp_path / "state")
    with worker_thread(card_totals(source, sink, url), config):
        wait_for_count(bootstrap, sink, len(txs), timeout=90)

    reader = RegistryAvroSerde(SchemaRegistryClient(url))  # values as written
    out = [(k, reader.decode(v)) for _p, _o, k, v in read_to_end(bootstrap, sink) if v]
    assert len(out) == len(txs)
    final: dict[str, dict[str, Any]] = {}
    for key, summary in out:
        assert key is not None
        assert summary["card"] == key.decode()
        final[summary["card"]] = summary  # per card, updates arrive in order
    by_card = defaultdict(list)
    for tx in txs:
        by_card[tx["card"]].append(tx)
    for card, card_txs in by_card.items():
        assert final[card]["count"] == len(card_txs)
        assert final[card]["total"] == pytest.approx(sum(t["amount"] for t in card_txs))
        assert final[card]["last_tx"] == card_txs[-1]["id"]
    # the state store's changelog holds single-object Avro rows of the store schema
    changelog = read_to_end(bootstrap, f"{config.app_id}-card-totals-changelog")
    assert changelog
    store_serde = AvroSerde(TOTALS)
    channels: Counter[str] = Counter()
    for _p, _o, _k, v in changelog:
        assert v is not None
        assert v[:2] == b"\xc3\x01"
        store_serde.decode(v)
    latest = {k: store_serde.decode(v) for _p, _o, k, v in changelog if v}
    for totals in latest.values():
        channels.update(totals["channels"])
    assert channels == {"unknown": 150, "pos": 75, "web": 75}


def passthrough(source: str, sink: str, value_serde: Any) -> Topology:
    builder = StreamsBuilder()
    (
        builder.stream(source, key_serde=StringSerde(), value_serde=value_serde)
        .map_values(lambda tx: {"id": tx["id"], "amount": tx["amount"]})
        .to(sink, value_serde=JsonSerde())
    )
    return builder.build()


def _poison(client: SchemaRegistryClient, source: str) -> dict[str, bytes]:
    """One bad value of each kind, beside a good one for comparison."""
    producer = RegistryAvroSerde(client, TX_V1, topic=source, auto_register=True)
    good = producer.encode(_transactions(1)[0])
    return {
        "good": good,
        "wrong-magic": b'{"id": "tx-json", "amount": 1.0}',
        "unknown-id": b"\x00" + (2**31 - 7).to_bytes(4, "big") + good[5:],
        "corrupt": good[:-4],
    }


ERRORS = {
    "wrong-magic": "wrong magic byte 0x7b: not the Confluent wire format",
    "unknown-id": f"schema id {2**31 - 7} is not known to the schema registry",
    "corrupt": "corrupt Avro payload",
    "registry-down": f"schema registry at {DOWN_URL} is unreachable",
}


def _dlq(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dlq-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple[bytes | None, dict[str, bytes]]] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                break
            out.append((message.value(), dict(message.headers() or [])))
    finally:
        consumer.close()
    return out


def test_bad_avro_goes_to_the_dead_letter_topic_with_the_reason(
    kafka: KafkaCluster, new_topic, schema_registry: Any, tmp_path: Path
) -> None:
    bootstrap, url = kafka.bootstrap_servers, schema_registry.url
    source, sink = new_topic(partitions=1), new_topic(partitions=1)
    client = SchemaRegistryClient(url)
    payloads = _poison(client, source)
    kinds = ["good", "wrong-magic", "good", "unknown-id", "corrupt", "good"]
    produce(bootstrap, source, [(b"card-0", payloads[kind]) for kind in kinds])
    config = app_config(bootstrap, tmp_path / "state", error_policy=ErrorPolicy.DEAD_LETTER)
    topology = passthrough(source, sink, RegistryAvroSerde(url, TX_V2))
    with worker_thread(topology, config) as worker:
        wait_for_count(bootstrap, sink, 3, timeout=60)
        wait_for_count(bootstrap, config.dlq_topic, 3, timeout=30)
    assert worker.snapshot.records_in == len(kinds)  # the snapshot published when it stopped
    assert len(read_to_end(bootstrap, sink)) == 3
    dead = _dlq(bootstrap, config.dlq_topic)
    assert [value for value, _h in dead] == [payloads[k] for k in kinds if k != "good"]
    expected = [("wrong-magic", 1), ("unknown-id", 3), ("corrupt", 4)]
    for (_value, headers), (kind, offset) in zip(dead, expected, strict=True):
        error = headers["streamer.error"].decode()
        assert f"cannot decode record at {source}[0]@{offset}" in error
        assert ERRORS[kind] in error
        assert headers["streamer.error.type"] in (b"SerializationError", b"SchemaRegistryError")
        assert headers["streamer.error.step"] == b"deserialize"


@pytest.mark.parametrize("kind", ["unknown-id", "registry-down"])
def test_bad_avro_stops_the_worker_under_the_fail_policy(
    kafka: KafkaCluster, new_topic, schema_registry: Any, tmp_path: Path, kind: str
) -> None:
    bootstrap, url = kafka.bootstrap_servers, schema_registry.url
    source, sink = new_topic(partitions=1), new_topic(partitions=1)
    payloads = _poison(SchemaRegistryClient(url), source)
    bad = payloads["good"] if kind == "registry-down" else payloads[kind]
    produce(bootstrap, source, [(b"card-0", bad)])
    config = app_config(bootstrap, tmp_path / "state", error_policy=ErrorPolicy.FAIL)
    consumer_url = DOWN_URL if kind == "registry-down" else url
    serde = RegistryAvroSerde(SchemaRegistryClient(consumer_url, retries=0), TX_V2)
    failure = run_worker_until_failure(passthrough(source, sink, serde), config, timeout=60)
    assert isinstance(failure, SerializationError)
    assert f"cannot decode record at {source}[0]@0" in str(failure)
    assert ERRORS[kind] in str(failure)
    assert read_to_end(bootstrap, sink) == []


@pytest.mark.parametrize("policy", [ErrorPolicy.SKIP, ErrorPolicy.DEAD_LETTER, ErrorPolicy.FAIL])
@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_every_avro_error_follows_every_policy_in_the_driver(
    schema_registry: Any, policy: ErrorPolicy, kind: str
) -> None:
    url = schema_registry.url
    payloads = _poison(SchemaRegistryClient(url), f"driver-{uuid.uuid4().hex[:8]}")
    bad = payloads["good"] if kind == "registry-down" else payloads[kind]
    consumer_url = DOWN_URL if kind == "registry-down" else url
    serde = RegistryAvroSerde(SchemaRegistryClient(consumer_url, retries=0), TX_V2)
    with TopologyTestDriver(passthrough("in", "out", serde), error_policy=policy) as driver:
        if policy is ErrorPolicy.FAIL:
            with pytest.raises(SerializationError, match=ERRORS[kind]):
                driver.pipe_raw("in", b"card-0", bad, timestamp=1)
            return
        driver.pipe_raw("in", b"card-0", bad, timestamp=1)
        assert driver.read_values("out") == []
        dead = driver.read_output("test-app-dlq")
        if policy is ErrorPolicy.SKIP:
            assert dead == []
            assert driver.counters()["records-skipped"] == 1
        else:
            assert [r.value for r in dead] == [bad]
            assert ERRORS[kind] in dict(dead[0].headers)["streamer.error"].decode()
