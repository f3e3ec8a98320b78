"""The records and store rows of a foreign-key table join, and their byte formats.

A foreign-key join (:mod:`streamer.processors.fk_join`) talks between its two sides through
two internal topics and keeps one store on each side:

* the **subscription** topic, keyed by the foreign key (encoded with the right table's key
  serde, so it is partitioned like the right table): :class:`Subscription` values;
* the **response** topic, keyed by the left key (the left table's key serde, partitioned like
  the left table): :class:`Response` values;
* the right side's **subscription store**, keyed by ``(foreign key, left key)``
  (:class:`CombinedKeySerde`: a prefix scan by foreign key finds every subscriber):
  :class:`Subscribed` rows;
* the left side's **foreign-key store**, keyed by the left key: :class:`LeftState` rows, the
  foreign key the left row subscribed to and the hash of the left value that subscription
  answers.

Every format starts with a version byte, so that a later release can read what this one
wrote. Decoding errors say what is wrong and where, never the bytes.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from streamer.errors import SerializationError
from streamer.processors.api import RecordOrigin
from streamer.serde import Serde

VERSION = 1
HASH_BYTES = 16
_INT = struct.Struct(">i")
_HEAD = struct.Struct(f">BB{HASH_BYTES}si")  # version, instruction or flag, hash, partition


class Instruction(enum.IntEnum):
    """What the right side does with a :class:`Subscription`.

    ``UNSUBSCRIBE`` removes the left key's subscription to this foreign key and answers
    nothing (the left row moved to another foreign key, or was deleted: the left side has
    already answered for itself). The two others store the subscription and answer with the
    right row: ``RESPOND_IF_FOUND`` only when there is one (a new left row of an inner join:
    no earlier result to retract), ``RESPOND_ALWAYS`` also with None (a left join, or a left
    row whose earlier result may need retracting).
    """

    UNSUBSCRIBE = 0
    RESPOND_IF_FOUND = 1
    RESPOND_ALWAYS = 2


@dataclass(frozen=True, slots=True)
class Subscription:
    """A left row (``left_key``, its value's ``hash``) subscribing to one foreign key.

    ``partition`` is the left row's partition: the response must come back to it.
    """

    instruction: Instruction
    left_key: Any
    hash: bytes
    partition: int


@dataclass(frozen=True, slots=True)
class Response:
    """The right row (None: absent) for the left value whose hash is ``hash``."""

    hash: bytes
    partition: int
    value: Any


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A stored subscription: the hash to answer with and the left row's partition."""

    hash: bytes
    partition: int


@dataclass(frozen=True, slots=True)
class LeftState:
    """A left row's subscription: the encoded foreign key (None: the row has none) and the
    hash that a response must carry to be current."""

    foreign_key: bytes | None
    hash: bytes


def next_hash(previous: bytes | None, value: bytes, origin: RecordOrigin | None) -> bytes:
    """The hash of a left row's new value.

    Kafka Streams hashes the value alone. Here the hash also covers the key's previous hash
    and the position of the record that changed the row, so a value that comes back
    (A, then B, then A again; or a delete and the same insert) still gets a new hash, and a
    response to the first A, delayed behind the others, cannot pass for an answer to the
    last. Processing the same record from the same state again gives the same hash.
    """
    digest = hashlib.blake2b(digest_size=HASH_BYTES)
    digest.update(previous or b"")
    if origin is not None:
        digest.update(f"{origin.topic}\0{origin.partition}\0{origin.offset}\0".encode())
    digest.update(value)
    return digest.digest()


def _check_head(data: bytes, what: str) -> tuple[int, bytes, int]:
    if len(data) < _HEAD.size:
        msg = f"a {what} needs at least {_HEAD.size} bytes, got {len(data)}"
        raise SerializationError(msg)
    version, code, digest, partition = _HEAD.unpack_from(data)
    if version != VERSION:
        msg = f"a {what} of format version {version} cannot be read (this release reads {VERSION})"
        raise SerializationError(msg)
    return code, digest, partition


class SubscriptionSerde:
    """``version, instruction, hash, partition, left key bytes``."""

    def __init__(self, left_key_serde: Serde[Any]) -> None:
        self.left_key_serde = left_key_serde

    def encode(self, value: Subscription) -> bytes:
        head = _HEAD.pack(VERSION, value.instruction, value.hash, value.partition)
        return head + self.left_key_serde.encode(value.left_key)

    def decode(self, data: bytes) -> Subscription:
        code, digest, partition = _check_head(data, "foreign-key join subscription")
        try:
            instruction = Instruction(code)
        except ValueError as exc:
            msg = f"unknown foreign-key join instruction {code}"
            raise SerializationError(msg) from exc
        left_key = self.left_key_serde.decode(data[_HEAD.size :])
        return Subscription(instruction, left_key, digest, partition)


class ResponseSerde:
    """``version, has-value flag, hash, partition, right value bytes (if any)``."""

    def __init__(self, right_value_serde: Serde[Any]) -> None:
        self.right_value_serde = right_value_serde

    def encode(self, value: Response) -> bytes:
        found = value.value is not None
        head = _HEAD.pack(VERSION, found, value.hash, value.partition)
        return head + self.right_value_serde.encode(value.value) if found else head

    def decode(self, data: bytes) -> Response:
        found, digest, partition = _check_head(data, "foreign-key join response")
        right = self.right_value_serde.decode(data[_HEAD.size :]) if found else None
        return Response(digest, partition, right)


class SubscribedSerde:
    """``version, 0, hash, partition``."""

    def encode(self, value: Subscribed) -> bytes:
        return _HEAD.pack(VERSION, 0, value.hash, value.partition)

    def decode(self, data: bytes) -> Subscribed:
        _, digest, partition = _check_head(data, "foreign-key join subscription row")
        return Subscribed(digest, partition)


class LeftStateSerde:
    """``version, has-foreign-key flag, hash, 0, foreign key bytes (if any)``."""

    def encode(self, value: LeftState) -> bytes:
        has_key = value.foreign_key is not None
        head = _HEAD.pack(VERSION, has_key, value.hash, 0)
        return head + value.foreign_key if value.foreign_key is not None else head

    def decode(self, data: bytes) -> LeftState:
        has_key, digest, _ = _check_head(data, "foreign-key join left row")
        return LeftState(data[_HEAD.size :] if has_key else None, digest)


class CombinedKeySerde:
    """``(foreign key, left key)`` as the foreign key's length (4 bytes), its bytes, then the
    left key's bytes: all subscribers of one foreign key share the prefix
    :meth:`prefix` gives, whatever the serdes."""

    def __init__(self, foreign_key_serde: Serde[Any], left_key_serde: Serde[Any]) -> None:
        self.foreign_key_serde = foreign_key_serde
        self.left_key_serde = left_key_serde

    def prefix(self, foreign_key: Any) -> bytes:
        """The bytes every combined key of ``foreign_key`` starts with."""
        encoded = self.foreign_key_serde.encode(foreign_key)
        return _INT.pack(len(encoded)) + encoded

    def encode(self, value: tuple[Any, Any]) -> bytes:
        foreign_key, left_key = value
        return self.prefix(foreign_key) + self.left_key_serde.encode(left_key)

    def decode(self, data: bytes) -> tuple[Any, Any]:
        if len(data) < _INT.size:
            msg = f"a foreign-key join combined key needs at least 4 bytes, got {len(data)}"
            raise SerializationError(msg)
        (length,) = _INT.unpack_from(data)
        end = _INT.size + length
        if length < 0 or end > len(data):
            msg = (
                f"a foreign-key join combined key of {len(data)} bytes claims {length} "
                "for its foreign key"
            )
            raise SerializationError(msg)
        foreign_key = self.foreign_key_serde.decode(data[_INT.size : end])
        return foreign_key, self.left_key_serde.decode(data[end:])
