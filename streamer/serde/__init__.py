"""Serdes turn keys and values into bytes and back.

A :class:`Serde` is chosen per topic and per key or value, and per state store. ``None``
always maps to ``None`` (a Kafka null / tombstone) and is never passed to a serde.
Decoding failures raise :class:`streamer.errors.SerializationError`. Their messages say what
is wrong and where (a position, a length, a schema), never the bytes or values themselves:
records may hold personal data, and these messages end up in logs.

What is here (see ``docs/serialization.md``):

* raw bytes, UTF-8 strings, and Kafka's big-endian 32- and 64-bit integers;
* JSON (:class:`JsonSerde`, orjson; :class:`StdlibJsonSerde`, the standard library);
* Avro: :class:`RegistryAvroSerde` (Confluent wire format, writer schemas from a schema
  registry, :class:`SchemaRegistryClient`), :class:`AvroSerde` (single-object encoding, no
  registry, reads earlier schema versions: for state stores) and :class:`RawAvroSerde` (the
  bare body with fixed schemas).
"""

from __future__ import annotations

import struct
from typing import Protocol, TypeVar, runtime_checkable

from streamer.errors import SerializationError

T = TypeVar("T")


@runtime_checkable
class Serde(Protocol[T]):
    """Encodes values of one type to bytes and decodes them back: ``decode(encode(v)) == v``."""

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class BytesSerde:
    """Passes bytes through unchanged."""

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data


class StringSerde:
    """UTF-8 text."""

    def encode(self, value: str) -> bytes:
        return value.encode()

    def decode(self, data: bytes) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            msg = f"not valid UTF-8 ({exc.reason} at byte {exc.start} of {len(data)})"
            raise SerializationError(msg) from exc


class LongSerde:
    """A signed 64-bit integer, big-endian: Kafka's ``LongSerializer`` format."""

    _struct = struct.Struct(">q")

    def encode(self, value: int) -> bytes:
        return self._struct.pack(value)

    def decode(self, data: bytes) -> int:
        if len(data) != 8:
            msg = f"a long needs 8 bytes, got {len(data)}"
            raise SerializationError(msg)
        value: int = self._struct.unpack(data)[0]
        return value


class IntegerSerde:
    """A signed 32-bit integer, big-endian: Kafka's ``IntegerSerializer`` format."""

    _struct = struct.Struct(">i")

    def encode(self, value: int) -> bytes:
        return self._struct.pack(value)

    def decode(self, data: bytes) -> int:
        if len(data) != 4:
            msg = f"an integer needs 4 bytes, got {len(data)}"
            raise SerializationError(msg)
        value: int = self._struct.unpack(data)[0]
        return value


# Imported last: these modules import nothing from this one, but keep the protocol first.
from streamer.serde.avro import (  # noqa: E402
    AvroSchema,
    AvroSerde,
    RawAvroSerde,
    RegistryAvroSerde,
    compatibility_problems,
)
from streamer.serde.json import JsonSerde, StdlibJsonSerde  # noqa: E402
from streamer.serde.registry import (  # noqa: E402
    SchemaRegistryClient,
    SchemaRegistryError,
)

__all__ = [
    "AvroSchema",
    "AvroSerde",
    "BytesSerde",
    "IntegerSerde",
    "JsonSerde",
    "LongSerde",
    "RawAvroSerde",
    "RegistryAvroSerde",
    "SchemaRegistryClient",
    "SchemaRegistryError",
    "Serde",
    "StdlibJsonSerde",
    "StringSerde",
    "compatibility_problems",
]
