"""Avro serdes without a registry: schemas, logical types, evolution, compatibility messages,
single-object encoding for state stores, and clear errors on bad input."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.errors import ConfigError, SerializationError
from streamer.serde import (
    AvroSchema,
    AvroSerde,
    RawAvroSerde,
    RegistryAvroSerde,
    SchemaRegistryClient,
    SchemaRegistryError,
    StringSerde,
    compatibility_problems,
)
from streamer.state import KeyValueStore, RocksDBStore
from tests.unit.serde.avro_strategies import evolutions, schema_and_value

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PAYMENT_V1: dict[str, Any] = {
    "type": "record",
    "name": "Payment",
    "namespace": "test",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "card", "type": "string"},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
        },
        {"name": "quantity", "type": "int"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}

PAYMENT = {
    "id": uuid.UUID("6f1b9e0c-2f0a-4d5e-9a47-1c2b3d4e5f60"),
    "card": "card-000017",
    "amount": decimal.Decimal("1234.50"),
    "quantity": 3,
    "at": datetime.datetime(2024, 6, 10, 6, 13, 20, 123000, tzinfo=datetime.UTC),
    "note": None,
}


def evolve(schema: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``schema`` with fields removed (``drop=[...]``), added (``add=[...]``) or
    retyped (``retype={name: type}``)."""
    fields = [dict(f) for f in schema["fields"] if f["name"] not in changes.get("drop", ())]
    for field in fields:
        if field["name"] in changes.get("retype", {}):
            field["type"] = changes["retype"][field["name"]]
    return {**schema, "fields": fields + list(changes.get("add", ()))}


# --- schemas --------------------------------------------------------------------------------


def test_a_schema_is_parsed_once_from_text_a_dict_or_a_file(tmp_path: Path) -> None:
    path = tmp_path / "payment.avsc"
    path.write_text(json.dumps(PAYMENT_V1))
    from_dict, from_text, from_file = (
        AvroSchema(PAYMENT_V1),
        AvroSchema(json.dumps(PAYMENT_V1)),
        AvroSchema.load(path),
    )
    assert from_dict == from_text == from_file
    assert from_dict.name == "test.Payment"
    assert from_dict.parsed["__fastavro_parsed"]
    assert AvroSchema("long").name == "long"
    assert AvroSchema.of(from_dict) is from_dict


def test_the_fingerprint_is_crc64_avro_of_the_canonical_form() -> None:
    schema = AvroSchema(PAYMENT_V1)
    assert schema.fingerprint.to_bytes(8, "little").hex() == fastavro.schema.fingerprint(
        schema.canonical, "CRC-64-AVRO"
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("{not json", "the Avro schema is not JSON"),
        ({"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}, "nope"),
        ({"type": "enum", "name": "E"}, "invalid Avro schema"),
    ],
)
def test_an_invalid_schema_is_a_clear_error(schema: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        AvroSchema(schema)


def test_a_missing_schema_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match=r"cannot read the Avro schema file .*nope\.avsc"):
        AvroSchema.load(tmp_path / "nope.avsc")


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("serde", [AvroSerde(PAYMENT_V1), RawAvroSerde(PAYMENT_V1)])
def test_logical_types_round_trip(serde: AvroSerde | RawAvroSerde) -> None:
    decoded = serde.decode(serde.encode(PAYMENT))
    assert decoded == PAYMENT
    assert isinstance(decoded["id"], uuid.UUID)
    assert isinstance(decoded["amount"], decimal.Decimal)
    assert decoded["at"].tzinfo is not None


def test_uuids_may_be_given_as_text() -> None:
    serde = AvroSerde(PAYMENT_V1)
    decoded = serde.decode(serde.encode({**PAYMENT, "id": str(PAYMENT["id"])}))
    assert decoded["id"] == PAYMENT["id"]


@PROPERTY
@given(case=schema_and_value())
def test_random_records_round_trip_through_every_avro_serde(
    case: tuple[dict[str, Any], Any],
) -> None:
    schema, value = case
    for serde in (AvroSerde(schema), RawAvroSerde(schema)):
        assert serde.decode(serde.encode(value)) == value


@PROPERTY
@given(case=schema_and_value(), data=st.data())
def test_random_bytes_only_ever_raise_serialization_errors(
    case: tuple[dict[str, Any], Any], data: st.DataObject
) -> None:
    schema, value = case
    serde = RawAvroSerde(schema)
    valid = serde.encode(value)
    garbage = data.draw(
        st.binary(max_size=64)
        | st.just(valid[: len(valid) // 2])
        | st.just(valid + b"\x00")
        | st.integers(0, max(0, len(valid) - 1)).map(
            lambda i: valid[:i] + bytes([valid[i] ^ 0xFF]) + valid[i + 1 :] if valid else b"\x01"
        ),
        label="payload",
    )
    with contextlib.suppress(SerializationError):
        serde.decode(garbage)


# --- evolution ------------------------------------------------------------------------------


@PROPERTY
@given(case=evolutions())
def test_readers_that_add_drop_and_promote_fields_read_old_data(
    case: tuple[dict[str, Any], dict[str, Any], Any, Any],
) -> None:
    writer, reader, value, expected = case
    assert compatibility_problems(writer, reader) == []
    assert RawAvroSerde(writer, reader).decode(RawAvroSerde(writer).encode(value)) == expected
    # the same change for a state store: old rows are read through the new schema
    old_row = AvroSerde(writer).encode(value)
    assert AvroSerde(reader, previous_schemas=[writer]).decode(old_row) == expected


def test_old_writer_new_reader_fills_defaults_and_promotes() -> None:
    v2 = evolve(
        PAYMENT_V1,
        drop=["note"],
        retype={"quantity": "long"},
        add=[{"name": "channel", "type": "string", "default": "web"}],
    )
    decoded = RawAvroSerde(PAYMENT_V1, v2).decode(RawAvroSerde(PAYMENT_V1).encode(PAYMENT))
    expected = {k: v for k, v in PAYMENT.items() if k != "note"} | {"channel": "web"}
    assert decoded == expected


def test_new_writer_old_reader_skips_the_new_fields() -> None:
    v2 = evolve(PAYMENT_V1, add=[{"name": "channel", "type": "string", "default": "web"}])
    written = RawAvroSerde(v2).encode({**PAYMENT, "channel": "pos"})
    assert RawAvroSerde(v2, PAYMENT_V1).decode(written) == PAYMENT


def test_a_renamed_record_or_field_resolves_through_reader_aliases() -> None:
    writer = {"type": "record", "name": "Old", "fields": [{"name": "amt", "type": "double"}]}
    reader = {
        "type": "record",
        "name": "New",
        "aliases": ["Old"],
        "fields": [{"name": "amount", "type": "double", "aliases": ["amt"]}],
    }
    assert compatibility_problems(writer, reader) == []
    assert RawAvroSerde(writer, reader).decode(RawAvroSerde(writer).encode({"amt": 2.5})) == {
        "amount": 2.5
    }


COMPATIBILITY_CASES = [
    (
        evolve(PAYMENT_V1, add=[{"name": "x", "type": "string"}]),
        "field 'x' has no default in the reader schema and is missing from the writer schema",
    ),
    (
        evolve(PAYMENT_V1, retype={"card": "long"}),
        "field 'card': type changed from string to long, which is not a permitted promotion",
    ),
    (
        evolve(PAYMENT_V1, retype={"quantity": "string"}),
        "field 'quantity': type changed from int to string",
    ),
    (
        evolve(PAYMENT_V1, retype={"note": ["null", "long"]}),
        "field 'note': the writer's string matches no branch of the reader's union [null, long]",
    ),
    (
        {**PAYMENT_V1, "name": "Transfer"},
        "the writer's record Payment and the reader's record Transfer have different names",
    ),
]


@pytest.mark.parametrize(("reader", "message"), COMPATIBILITY_CASES)
def test_incompatible_changes_say_what_is_incompatible(
    reader: dict[str, Any], message: str
) -> None:
    problems = compatibility_problems(PAYMENT_V1, reader)
    assert any(message in p for p in problems), problems
    with pytest.raises(ConfigError, match=re.escape(message)):
        RawAvroSerde(PAYMENT_V1, reader)


def test_nested_problems_name_the_path() -> None:
    def outer(inner_fields: list[dict[str, Any]]) -> dict[str, Any]:
        inner = {"type": "record", "name": "Tx", "fields": inner_fields}
        return {
            "type": "record",
            "name": "Alert",
            "fields": [{"name": "txs", "type": {"type": "array", "items": inner}}],
        }

    writer = outer([{"name": "amount", "type": "double"}])
    reader = outer([{"name": "amount", "type": "double"}, {"name": "fx", "type": "double"}])
    assert compatibility_problems(writer, reader) == [
        "field 'txs[].fx' has no default in the reader schema and is missing from the writer schema"
    ]


def test_enum_symbols_and_fixed_sizes() -> None:
    def enum(symbols: list[str], **extra: Any) -> dict[str, Any]:
        return {"type": "enum", "name": "Kind", "symbols": symbols, **extra}

    assert compatibility_problems(enum(["A", "B"]), enum(["A", "B", "C"])) == []
    assert compatibility_problems(enum(["A", "B"]), enum(["A"])) == [
        "the top-level type: enum Kind: the writer's symbol(s) 'B' are missing from the reader "
        "schema, which has no default symbol"
    ]
    assert compatibility_problems(enum(["A", "B"]), enum(["A", "Z"], default="Z")) == []
    fixed = {"type": "fixed", "name": "Hash", "size": 4}
    assert compatibility_problems(fixed, {**fixed, "size": 8}) == [
        "the top-level type: fixed Hash changed size from 4 to 8"
    ]


def test_unions_resolve_branch_by_branch() -> None:
    assert compatibility_problems("int", ["null", "long"]) == []
    assert compatibility_problems(["null", "int"], ["null", "long"]) == []
    assert compatibility_problems(["null", "int"], "long") == [
        "the top-level type: type changed from null to long, which is not a permitted promotion"
    ]


def test_recursive_schemas_are_checked_without_looping() -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "value", "type": "int"},
            {"name": "next", "type": ["null", "Node"], "default": None},
        ],
    }
    assert compatibility_problems(node, node) == []
    serde = AvroSerde(node)
    chain = {"value": 1, "next": {"value": 2, "next": None}}
    assert serde.decode(serde.encode(chain)) == chain


# --- single-object encoding (state stores) -------------------------------------------------


def test_single_object_encoding_is_marker_fingerprint_body() -> None:
    schema = AvroSchema(PAYMENT_V1)
    encoded = AvroSerde(schema).encode(PAYMENT)
    assert encoded[:2] == b"\xc3\x01"
    assert encoded[2:10] == schema.fingerprint.to_bytes(8, "little")
    assert fastavro.schemaless_reader(io.BytesIO(encoded[10:]), schema.parsed) == PAYMENT


def test_a_store_survives_a_schema_change(tmp_path: Path) -> None:
    """Rows written by the old version are read through the new schema; new rows carry the
    new fingerprint; both live side by side in the same store."""
    v2 = evolve(
        PAYMENT_V1,
        drop=["note"],
        add=[{"name": "channel", "type": "string", "default": "unknown"}],
    )
    db = RocksDBStore(tmp_path / "payments", "payments")
    KeyValueStore(db, StringSerde(), AvroSerde(PAYMENT_V1)).put("old", PAYMENT)
    db.close()

    db = RocksDBStore(tmp_path / "payments", "payments")
    try:
        store = KeyValueStore(db, StringSerde(), AvroSerde(v2, previous_schemas=[PAYMENT_V1]))
        new = {**{k: v for k, v in PAYMENT.items() if k != "note"}, "channel": "pos"}
        store.put("new", new)
        assert store.get("old") == {k: v for k, v in PAYMENT.items() if k != "note"} | {
            "channel": "unknown"
        }
        assert store.get("new") == new
        # without the old schema, the old row is refused with a pointer to the fix
        strict = KeyValueStore(db, StringSerde(), AvroSerde(v2))
        with pytest.raises(SerializationError, match="add the writer schema to previous_schemas"):
            strict.get("old")
    finally:
        db.close()


def test_an_incompatible_previous_schema_fails_when_the_serde_is_built() -> None:
    v2 = evolve(PAYMENT_V1, add=[{"name": "channel", "type": "string"}])
    with pytest.raises(ConfigError, match="field 'channel' has no default"):
        AvroSerde(v2, previous_schemas=[PAYMENT_V1])


@pytest.mark.parametrize(
    "payload", [b"", b"\xc3", b"\x00\x00\x00\x00\x01\x02", b"\xc3\x02" + b"\x00" * 12]
)
def test_not_single_object_encoding_is_a_clear_error(payload: bytes) -> None:
    with pytest.raises(SerializationError, match="not Avro single-object encoding"):
        AvroSerde(PAYMENT_V1).decode(payload)


# --- bad values and bad bytes ---------------------------------------------------------------


def test_a_value_that_does_not_fit_the_schema_names_the_field() -> None:
    with pytest.raises(
        SerializationError, match=r"cannot encode dict as Avro test.Payment: .*card"
    ):
        AvroSerde(PAYMENT_V1).encode({**PAYMENT, "card": None})
    with pytest.raises(SerializationError, match=r"quantity"):
        RawAvroSerde(PAYMENT_V1).encode({**PAYMENT, "quantity": "three"})


def test_a_truncated_payload_is_corrupt() -> None:
    encoded = RawAvroSerde(PAYMENT_V1).encode(PAYMENT)
    with pytest.raises(SerializationError, match=r"corrupt Avro payload \(schema test.Payment"):
        RawAvroSerde(PAYMENT_V1).decode(encoded[:-3])


def test_trailing_bytes_are_corrupt() -> None:
    encoded = RawAvroSerde(PAYMENT_V1).encode(PAYMENT)
    with pytest.raises(SerializationError, match=r"1 byte\(s\) left over after the record"):
        RawAvroSerde(PAYMENT_V1).decode(encoded + b"\x00")


# --- registry serde: what fails before any request ------------------------------------------

DOWN = "http://127.0.0.1:9/apis/ccompat/v7"  # the discard port: nothing listens there


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x00\x00\x00\x01\x02", "wrong magic byte 0x01: not the Confluent wire format"),
        (b'{"card": 1}', "wrong magic byte 0x7b"),
        (b"\x00\x00", "too short for the Confluent wire format"),
    ],
)
def test_the_wire_format_is_checked_before_the_registry_is_asked(
    payload: bytes, message: str
) -> None:
    serde = RegistryAvroSerde(SchemaRegistryClient(DOWN, retries=0), PAYMENT_V1, topic="t")
    with pytest.raises(SerializationError, match=message):
        serde.decode(payload)


def test_a_registry_that_is_down_is_named_in_the_error() -> None:
    serde = RegistryAvroSerde(
        SchemaRegistryClient(DOWN, timeout=1, retries=1, backoff=0.01), PAYMENT_V1, topic="t"
    )
    with pytest.raises(SchemaRegistryError, match=rf"schema registry at {DOWN} is unreachable"):
        serde.decode(b"\x00\x00\x00\x00\x07\x02")
    with pytest.raises(SchemaRegistryError, match="2 attempt"):
        serde.encode(PAYMENT)


def test_registry_serde_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="auto_register needs a subject"):
        RegistryAvroSerde(DOWN, PAYMENT_V1, auto_register=True)
    assert RegistryAvroSerde(DOWN, PAYMENT_V1, topic="tx").subject == "tx-value"
    assert RegistryAvroSerde(DOWN, PAYMENT_V1, topic="tx", is_key=True).subject == "tx-key"
    assert RegistryAvroSerde(DOWN, PAYMENT_V1, subject="custom").subject == "custom"
    with pytest.raises(SerializationError, match="has no schema to write with"):
        RegistryAvroSerde(DOWN).encode({})
    with pytest.raises(SerializationError, match="must be http"):
        SchemaRegistryClient("127.0.0.1:8081")
