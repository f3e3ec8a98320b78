"""Serdes turn keys and values into bytes and back.

A :class:`Serde` is chosen per topic and per key or value, and per state store. ``None``
always maps to ``None`` (a Kafka null / tombstone) and is never passed to a serde.
Decoding failures raise :class:`streamer.errors.SerializationError`.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Protocol, TypeVar, runtime_checkable

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
            msg = f"not valid UTF-8: {exc}"
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


class JsonSerde:
    """JSON text in UTF-8; compact separators, keys in insertion order."""

    def encode(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            msg = f"cannot encode {type(value).__name__} as JSON: {exc}"
            raise SerializationError(msg) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            preview = data[:40]
            msg = f"invalid JSON ({exc}); payload starts {preview!r}"
            raise SerializationError(msg) from exc


__all__ = [
    "BytesSerde",
    "IntegerSerde",
    "JsonSerde",
    "LongSerde",
    "Serde",
    "StringSerde",
]
