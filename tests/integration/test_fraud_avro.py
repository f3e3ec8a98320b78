"""The fraud topology's Avro mode: the same alerts as in JSON mode, in the Confluent wire
format with the schemas of topologies/schemas, through a real schema registry."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from streamer.demo.generator import FraudDataGenerator, GenerationStats, GeneratorConfig
from streamer.kafka.clients import produce
from streamer.serde import AvroSchema, JsonSerde, RegistryAvroSerde, SchemaRegistryClient
from streamer.testing import TopologyTestDriver
from streamer.testing.kafka import KafkaCluster
from tests.integration.support import app_config, read_to_end, wait_for_count, worker_thread
from topologies.fraud import SCHEMAS_DIR, FraudConfig, build, value_serdes

START = 1_700_000_000_000


def _run(config: FraudConfig, items: list[Any], blocked: dict[str, Any]) -> list[Any]:
    with TopologyTestDriver(build(config), partitions={"transactions": 2}) as driver:
        for merchant, row in blocked.items():
            driver.pipe("blocked-merchants", merchant, row)
        for item in items:
            driver.pipe("transactions", item.tx["card"], item.tx, timestamp=item.tx["ts"])
        assert driver.read_values("transactions-invalid") == []
        return driver.read_values("alerts")


def test_avro_mode_gives_the_json_alerts(schema_registry: Any) -> None:
    generator = FraudDataGenerator(GeneratorConfig(seed=5, events=2_000, rate=300.0))
    items = list(generator.transactions(START, GenerationStats()))
    blocked = dict(generator.blocked_merchants)
    json_alerts = _run(FraudConfig(), items, blocked)
    suffix = uuid.uuid4().hex[:8]
    avro = FraudConfig(
        transactions_topic=f"transactions-{suffix}",
        alerts_topic=f"alerts-{suffix}",
        value_format="avro",
        schema_registry_url=schema_registry.url,
    )
    with TopologyTestDriver(build(avro), partitions={avro.transactions_topic: 2}) as driver:
        for merchant, row in blocked.items():
            driver.pipe("blocked-merchants", merchant, row)
        for item in items:
            driver.pipe(avro.transactions_topic, item.tx["card"], item.tx, timestamp=item.tx["ts"])
        raw = driver.read_output(avro.alerts_topic, value_serde=_Raw())
    assert json_alerts, "the scenario should raise alerts"
    assert all(r.value[0] == 0 for r in raw)  # Confluent wire format
    reader = RegistryAvroSerde(SchemaRegistryClient(schema_registry.url))
    assert [reader.decode(r.value) for r in raw] == json_alerts
    client = SchemaRegistryClient(schema_registry.url)
    registered = client.latest(f"{avro.alerts_topic}-value")
    assert AvroSchema(registered.schema) == AvroSchema.load(SCHEMAS_DIR / "alert.avsc")


class _Raw:
    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data


def test_the_value_format_is_checked() -> None:
    with pytest.raises(ValueError, match="needs schema_registry_url"):
        value_serdes(FraudConfig(value_format="avro"))
    with pytest.raises(ValueError, match="must be 'json' or 'avro'"):
        value_serdes(FraudConfig(value_format="xml"))
    config = FraudConfig.from_env(
        {"FRAUD_VALUE_FORMAT": "avro", "FRAUD_SCHEMA_REGISTRY_URL": "http://127.0.0.1:9"}
    )
    assert (config.value_format, config.schema_registry_url) == ("avro", "http://127.0.0.1:9")


def test_fraud_in_avro_on_the_broker(
    kafka: KafkaCluster, new_topic, schema_registry: Any, tmp_path: Path
) -> None:
    bootstrap, url = kafka.bootstrap_servers, schema_registry.url
    generator = FraudDataGenerator(GeneratorConfig(seed=5, events=1_500, rate=300.0))
    items = list(generator.transactions(START, GenerationStats()))
    blocked = dict(generator.blocked_merchants)
    expected = _run(FraudConfig(), items, blocked)
    assert len(expected) >= 3, "the scenario should raise alerts"
    config = FraudConfig(
        transactions_topic=new_topic(partitions=2),
        alerts_topic=new_topic(partitions=2),
        blocked_merchants_topic=new_topic(config={"cleanup.policy": "compact"}),
        card_limits_topic=new_topic(config={"cleanup.policy": "compact"}),
        invalid_topic=new_topic(),
        scores_topic=new_topic(partitions=2),
        cases_topic=new_topic(partitions=2),
        value_format="avro",
        schema_registry_url=url,
    )
    json = JsonSerde()
    produce(
        bootstrap,
        config.blocked_merchants_topic,
        [(m.encode(), json.encode(row)) for m, row in blocked.items()],
    )
    producer = value_serdes(config)[0]
    produce(
        bootstrap,
        config.transactions_topic,
        [(i.tx["card"].encode(), producer.encode(i.tx)) for i in items],
    )
    app = app_config(bootstrap, tmp_path / "state")
    with worker_thread(build(config), app):
        wait_for_count(bootstrap, config.alerts_topic, len(expected), timeout=120)
    reader = RegistryAvroSerde(SchemaRegistryClient(url))
    alerts = [
        reader.decode(v) for _p, _o, _k, v in read_to_end(bootstrap, config.alerts_topic) if v
    ]
    key = lambda alert: alert["tx_id"]  # noqa: E731
    assert sorted(alerts, key=key) == sorted(expected, key=key)
