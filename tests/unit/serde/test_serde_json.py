"""JSON serdes: orjson by default, the standard library as fallback and alternative."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.errors import SerializationError
from streamer.serde import (
    BytesSerde,
    IntegerSerde,
    JsonSerde,
    LongSerde,
    StdlibJsonSerde,
    StringSerde,
)

TRANSACTION = {
    "id": "tx-00000042",
    "card": "card-000017",
    "amount": 42.5,
    "currency": "EUR",
    "merchant": "merchant-0312",
    "country": "FR",
    "lat": 48.85,
    "lon": 2.35,
    "ts": 1718000000000,
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("serde", [JsonSerde(), StdlibJsonSerde()], ids=["orjson", "stdlib"])
@given(value=json_values)
def test_json_round_trips(serde: JsonSerde | StdlibJsonSerde, value: object) -> None:
    assert serde.decode(serde.encode(value)) == value


@given(value=json_values)
def test_orjson_and_stdlib_read_each_other(value: object) -> None:
    fast, std = JsonSerde(), StdlibJsonSerde()
    assert std.decode(fast.encode(value)) == value
    assert fast.decode(std.encode(value)) == value


def test_json_is_compact_with_keys_in_insertion_order() -> None:
    encoded = JsonSerde().encode(TRANSACTION)
    assert encoded == json.dumps(TRANSACTION, separators=(",", ":")).encode()
    assert JsonSerde().encode({"b": 1, "a": 2}) == b'{"b":1,"a":2}'


def test_json_writes_utf8_and_stringifies_non_string_keys() -> None:
    assert JsonSerde().encode({"city": "Zürich"}) == '{"city":"Zürich"}'.encode()
    assert StdlibJsonSerde().encode({"city": "Zürich"}) == b'{"city":"Z\\u00fcrich"}'
    assert JsonSerde().decode(JsonSerde().encode({1: "a", 2.5: "b"})) == {"1": "a", "2.5": "b"}


def test_json_falls_back_to_the_standard_library() -> None:
    serde = JsonSerde()
    big = 2**70
    assert serde.encode(big) == str(big).encode()  # orjson refuses ints beyond 64 bits
    assert StdlibJsonSerde().decode(serde.encode(big)) == big
    decoded = serde.decode(b'{"z":NaN,"inf":Infinity}')  # what json.dumps writes by default
    assert math.isnan(decoded["z"])
    assert decoded["inf"] == math.inf


def test_json_writes_non_finite_floats_as_null() -> None:
    assert JsonSerde().encode([math.nan, math.inf]) == b"[null,null]"


@pytest.mark.parametrize("serde", [JsonSerde(), StdlibJsonSerde()], ids=["orjson", "stdlib"])
@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b"", b'{"a":1}trailing'])
def test_invalid_json_is_a_clear_serialization_error(
    serde: JsonSerde | StdlibJsonSerde, payload: bytes
) -> None:
    with pytest.raises(SerializationError, match=rf"invalid JSON .*; {len(payload)} bytes$"):
        serde.decode(payload)


@pytest.mark.parametrize("serde", [JsonSerde(), StdlibJsonSerde()], ids=["orjson", "stdlib"])
def test_unencodable_values_name_their_type(serde: JsonSerde | StdlibJsonSerde) -> None:
    with pytest.raises(SerializationError, match="cannot encode set as JSON"):
        serde.encode({1, 2})
    with pytest.raises(SerializationError, match="cannot encode object as JSON"):
        serde.encode(object())


@given(st.binary())
def test_bytes_round_trip(data: bytes) -> None:
    assert BytesSerde().decode(BytesSerde().encode(data)) == data


@given(st.text())
def test_strings_round_trip(text: str) -> None:
    assert StringSerde().decode(StringSerde().encode(text)) == text


def test_invalid_utf8_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="not valid UTF-8"):
        StringSerde().decode(b"\xff")


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_longs_are_big_endian_like_kafka(n: int) -> None:
    encoded = LongSerde().encode(n)
    assert encoded == n.to_bytes(8, "big", signed=True)
    assert LongSerde().decode(encoded) == n


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_integers_are_big_endian_like_kafka(n: int) -> None:
    encoded = IntegerSerde().encode(n)
    assert encoded == n.to_bytes(4, "big", signed=True)
    assert IntegerSerde().decode(encoded) == n


def test_integer_sizes_are_checked() -> None:
    with pytest.raises(SerializationError, match="a long needs 8 bytes, got 4"):
        LongSerde().decode(b"\x00" * 4)
    with pytest.raises(SerializationError, match="an integer needs 4 bytes, got 8"):
        IntegerSerde().decode(b"\x00" * 8)
