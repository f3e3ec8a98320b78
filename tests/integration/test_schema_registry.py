"""The registry client and the Confluent-format Avro serde against a real schema registry
(Apicurio Registry's Confluent-compatible API, started by the ``schema_registry`` fixture)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from streamer.errors import SerializationError
from streamer.serde import (
    AvroSchema,
    RegistryAvroSerde,
    SchemaRegistryClient,
    SchemaRegistryError,
)
from tests.unit.serde.avro_strategies import schema_and_value

V1: dict[str, Any] = {
    "type": "record",
    "name": "Transaction",
    "namespace": "it",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "float"},
        {"name": "country", "type": "string"},
    ],
}
# BACKWARD-compatible: a field removed, one promoted, one added with a default
V2: dict[str, Any] = {
    "type": "record",
    "name": "Transaction",
    "namespace": "it",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "channel", "type": "string", "default": "web"},
    ],
}
# Not compatible with V1: a new field without a default
V3: dict[str, Any] = {
    **V1,
    "fields": [*V1["fields"], {"name": "merchant", "type": "string"}],
}


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def test_register_lookup_and_fetch(registry_client: SchemaRegistryClient) -> None:
    subject = f"{_topic()}-value"
    text = json.dumps(V1)
    assert registry_client.lookup(subject, text) is None
    schema_id = registry_client.register(subject, text)
    assert registry_client.register(subject, text) == schema_id  # idempotent
    fresh = SchemaRegistryClient(registry_client.url)
    assert fresh.lookup(subject, text) == schema_id
    assert AvroSchema(fresh.schema_by_id(schema_id)) == AvroSchema(V1)
    latest = fresh.latest(subject)
    assert (latest.version, latest.schema_id) == (1, schema_id)
    assert subject in fresh.subjects()


def test_the_serde_registers_under_the_topic_name_strategy(
    registry_client: SchemaRegistryClient,
) -> None:
    topic = _topic()
    value = RegistryAvroSerde(registry_client, V1, topic=topic, auto_register=True)
    key = RegistryAvroSerde(registry_client, "string", topic=topic, is_key=True, auto_register=True)
    record = {"id": "tx-1", "amount": 12.5, "country": "FR"}
    encoded = value.encode(record)
    assert encoded[0] == 0
    assert int.from_bytes(encoded[1:5], "big") == registry_client.latest(f"{topic}-value").schema_id
    assert value.decode(encoded) == record
    assert key.decode(key.encode("card-1")) == "card-1"
    assert {f"{topic}-value", f"{topic}-key"} <= set(registry_client.subjects())
    # a consumer with no schema of its own gets the values as written
    assert RegistryAvroSerde(SchemaRegistryClient(registry_client.url)).decode(encoded) == record


def test_without_auto_register_the_schema_must_already_be_registered(
    registry_client: SchemaRegistryClient,
) -> None:
    topic = _topic()
    serde = RegistryAvroSerde(registry_client, V1, topic=topic)
    with pytest.raises(SerializationError, match=rf"not registered under subject '{topic}-value'"):
        serde.encode({"id": "a", "amount": 1.0, "country": "FR"})
    registry_client.register(f"{topic}-value", json.dumps(V1))
    assert serde.decode(serde.encode({"id": "a", "amount": 1.0, "country": "FR"}))["id"] == "a"


def test_schema_evolution_through_the_registry(registry_client: SchemaRegistryClient) -> None:
    topic = _topic()
    subject = f"{topic}-value"
    registry_client.set_compatibility("BACKWARD", subject)
    producer_v1 = RegistryAvroSerde(registry_client, V1, topic=topic, auto_register=True)
    old = producer_v1.encode({"id": "tx-1", "amount": 2.5, "country": "FR"})

    assert registry_client.check_compatibility(subject, json.dumps(V2)).compatible
    producer_v2 = RegistryAvroSerde(registry_client, V2, topic=topic, auto_register=True)
    new = producer_v2.encode({"id": "tx-2", "amount": 0.1, "channel": "pos"})
    assert old[1:5] != new[1:5]  # two writer schemas, two ids

    # old writer, new reader: the removed field is skipped, the promoted one widened, the
    # added one defaulted
    consumer_v2 = RegistryAvroSerde(SchemaRegistryClient(registry_client.url), V2)
    assert consumer_v2.decode(old) == {"id": "tx-1", "amount": 2.5, "channel": "web"}
    assert consumer_v2.decode(new) == {"id": "tx-2", "amount": 0.1, "channel": "pos"}
    # new writer, old reader: 'country' has no default in V1, so V1 cannot read V2 data
    consumer_v1 = RegistryAvroSerde(SchemaRegistryClient(registry_client.url), V1)
    assert consumer_v1.decode(old)["country"] == "FR"
    with pytest.raises(
        SerializationError,
        match="field 'country' has no default in the reader schema and is missing from the "
        "writer schema",
    ):
        consumer_v1.decode(new)


def test_the_registry_refuses_an_incompatible_schema_and_says_why(
    registry_client: SchemaRegistryClient,
) -> None:
    topic = _topic()
    subject = f"{topic}-value"
    registry_client.set_compatibility("BACKWARD", subject)
    RegistryAvroSerde(registry_client, V1, topic=topic, auto_register=True).encode(
        {"id": "a", "amount": 1.0, "country": "FR"}
    )
    verdict = registry_client.check_compatibility(subject, json.dumps(V3))
    assert not verdict.compatible
    assert any("merchant" in m for m in verdict.messages), verdict
    producer_v3 = RegistryAvroSerde(registry_client, V3, topic=topic, auto_register=True)
    with pytest.raises(SchemaRegistryError, match=r"HTTP 409.*merchant") as caught:
        producer_v3.encode({"id": "a", "amount": 1.0, "country": "FR", "merchant": "m"})
    assert caught.value.status == 409
    assert registry_client.url in str(caught.value)


def test_an_unknown_schema_id_is_a_clear_error(registry_client: SchemaRegistryClient) -> None:
    serde = RegistryAvroSerde(registry_client, V1)
    unknown = 987_654
    with pytest.raises(SchemaRegistryError, match=f"schema id {unknown} is not known") as caught:
        serde.decode(b"\x00" + unknown.to_bytes(4, "big") + b"\x02a")
    assert caught.value.status == 404
    assert registry_client.url in str(caught.value)


def test_a_corrupt_body_with_a_known_id_is_a_clear_error(
    registry_client: SchemaRegistryClient,
) -> None:
    serde = RegistryAvroSerde(registry_client, V1, topic=_topic(), auto_register=True)
    encoded = serde.encode({"id": "tx-1", "amount": 1.0, "country": "FR"})
    with pytest.raises(SerializationError, match=r"corrupt Avro payload \(schema id \d+"):
        serde.decode(encoded[:-2])
    with pytest.raises(SerializationError, match="left over after the record"):
        serde.decode(encoded + b"\x00\x00")


def test_writer_schemas_are_fetched_once(registry_client: SchemaRegistryClient) -> None:
    producer = RegistryAvroSerde(registry_client, V1, topic=_topic(), auto_register=True)
    encoded = producer.encode({"id": "tx-1", "amount": 1.0, "country": "FR"})
    client = SchemaRegistryClient(registry_client.url)
    consumer = RegistryAvroSerde(client, V2)
    first = consumer.decode(encoded)
    client.url = "http://127.0.0.1:9"  # the registry is gone: the cache answers
    assert consumer.decode(encoded) == first
    # an incompatible pair is also decided once, and fails fast afterwards
    strict = RegistryAvroSerde(SchemaRegistryClient(registry_client.url), V3)
    for _ in range(2):
        with pytest.raises(SerializationError, match="field 'merchant' has no default"):
            strict.decode(encoded)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=schema_and_value(max_depth=2))
def test_random_records_round_trip_through_the_registry(
    schema_registry: Any, case: tuple[dict[str, Any], Any]
) -> None:
    schema, value = case
    client = SchemaRegistryClient(schema_registry.url)
    producer = RegistryAvroSerde(client, schema, topic=_topic(), auto_register=True)
    encoded = producer.encode(value)
    consumer = RegistryAvroSerde(SchemaRegistryClient(schema_registry.url), schema)
    assert consumer.decode(encoded) == value
