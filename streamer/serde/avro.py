"""Avro serdes on fastavro: with a schema registry, or without one.

Three encodings, one per serde:

:class:`RegistryAvroSerde`
    The Confluent wire format: magic byte ``0``, the writer schema's 4-byte big-endian
    registry id, the Avro binary body. Writer schemas are fetched from a schema registry by
    id (and cached); the value is decoded into the serde's own schema, so producers and
    consumers can evolve their schemas independently within Avro's resolution rules.
:class:`AvroSerde`
    Avro's *single-object encoding*, which needs no registry: the marker ``C3 01``, the
    8-byte little-endian CRC-64-AVRO fingerprint of the writer schema, the body. It reads
    records written with its schema or with any of ``previous_schemas``, so a state store
    (and its changelog) keeps working when its value schema changes.
:class:`RawAvroSerde`
    The bare Avro body with a fixed writer schema and an optional reader schema, for topics
    whose producers and consumers agree on the schemas out of band.

Schemas are parsed once (``fastavro.parse_schema``) when a serde is built. Whether a writer
schema can be read with a reader schema is checked once per pair, by
:func:`compatibility_problems`, before the first record is decoded: an incompatible pair
fails with the reasons (``field 'x' has no default in the reader schema and is missing from
the writer schema``) instead of a low-level decoding error. :class:`AvroSchema` and
:func:`compatibility_problems` live in :mod:`streamer.serde.avro_schema` (re-exported here).

Logical types come back as Python objects: ``timestamp-millis`` and ``timestamp-micros`` as
timezone-aware :class:`datetime.datetime` (UTC), ``date`` as :class:`datetime.date`,
``decimal`` as :class:`decimal.Decimal`, ``uuid`` as :class:`uuid.UUID`.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from typing import Any

import fastavro
import fastavro.validation

from streamer.errors import ConfigError, SerializationError
from streamer.serde.avro_schema import (
    AvroSchema,
    SchemaSource,
    compatibility_problems,
    fingerprint64,
)
from streamer.serde.registry import SchemaRegistryClient

MAGIC_BYTE = 0
"""First byte of the Confluent wire format."""
SINGLE_OBJECT_MARKER = b"\xc3\x01"
"""First two bytes of Avro's single-object encoding."""

# --- Avro bodies, shared by the three serdes -------------------------------------------------


def _encode_body(schema: AvroSchema, value: Any, out: io.BytesIO) -> None:
    try:
        fastavro.schemaless_writer(out, schema.parsed, value)
    except Exception as exc:
        raise SerializationError(_encode_problem(schema, value, exc)) from exc


def _encode_problem(schema: AvroSchema, value: Any, exc: Exception) -> str:
    """Which fields do not fit, with the type found and the type expected; never the values
    (they may hold personal data, and this message is logged)."""
    detail = f"the Avro writer raised {type(exc).__name__}"
    try:
        fastavro.validation.validate(value, schema.parsed, raise_errors=True)
    except fastavro.validation.ValidationError as invalid:
        detail = "; ".join(_misfit(e) for e in invalid.errors) or detail
    except Exception:  # the validator itself choked: keep the writer's kind of error
        pass
    return f"cannot encode {type(value).__name__} as Avro {schema.name}: {detail}"


def _misfit(error: Any) -> str:
    """One validation error of fastavro, without its datum."""
    datum = getattr(error, "datum", None)
    expected = getattr(error, "schema", None)
    field = getattr(error, "field", None) or "the value"
    return f"{field} is {type(datum).__name__}, expected {_schema_label(expected)}"


def _schema_label(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("type"))
    if isinstance(schema, list):
        return " or ".join(_schema_label(s) for s in schema)
    return str(schema)


def _decode_body(
    data: bytes, offset: int, writer: AvroSchema, reader: AvroSchema | None, what: str
) -> Any:
    buffer = io.BytesIO(data)
    buffer.seek(offset)
    try:
        value = fastavro.schemaless_reader(
            buffer, writer.parsed, None if reader is None else reader.parsed
        )
    except Exception as exc:
        # The reader's own message may quote decoded text: only its kind and position.
        msg = (
            f"corrupt Avro payload ({what}, {len(data)} bytes): {type(exc).__name__} "
            f"after byte {buffer.tell()}"
        )
        raise SerializationError(msg) from exc
    left = len(data) - buffer.tell()
    if left:
        msg = (
            f"corrupt Avro payload ({what}): {left} byte(s) left over after the record; "
            "the data does not match its writer schema"
        )
        raise SerializationError(msg)
    return value


def _problems_message(writer: str, reader: AvroSchema, problems: Iterable[str]) -> str:
    return (
        f"data written with {writer} cannot be read with the reader schema {reader.name}: "
        + "; ".join(problems)
    )


class AvroSerde:
    """Avro single-object encoding: no registry; reads earlier versions of its schema.

    Writes ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of ``schema`` + the
    Avro body. Reads records written with ``schema`` or with any of ``previous_schemas``,
    resolved to ``schema`` (new fields get their defaults, removed fields are skipped,
    numbers are promoted). Every previous schema is checked against ``schema`` here, so an
    incompatible change fails when the topology is built, not on the first old record.

    This is the serde for state stores with Avro values: a store and its changelog hold
    rows written by every version of the application that ever ran, and the fingerprint
    says which schema wrote each row. When the schema changes, pass the old one in
    ``previous_schemas``; keep it there as long as rows written with it may exist.
    """

    def __init__(
        self,
        schema: SchemaSource,
        *,
        previous_schemas: Iterable[SchemaSource] = (),
    ) -> None:
        self.schema = AvroSchema.of(schema)
        self._header = SINGLE_OBJECT_MARKER + self.schema.fingerprint.to_bytes(8, "little")
        self._writers: dict[int, AvroSchema | None] = {self.schema.fingerprint: None}
        self._known: dict[int, AvroSchema] = {self.schema.fingerprint: self.schema}
        problems: list[str] = []
        for old in previous_schemas:
            previous = AvroSchema.of(old)
            found = compatibility_problems(previous, self.schema)
            if found:
                problems.append(
                    _problems_message(f"the previous schema {previous!r}", self.schema, found)
                )
            self._writers.setdefault(previous.fingerprint, previous)
            self._known.setdefault(previous.fingerprint, previous)
        if problems:
            raise ConfigError("; ".join(problems))

    def encode(self, value: Any) -> bytes:
        out = io.BytesIO()
        out.write(self._header)
        _encode_body(self.schema, value, out)
        return out.getvalue()

    def decode(self, data: bytes) -> Any:
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MARKER:
            msg = (
                f"not Avro single-object encoding: expected the marker C3 01 and an 8-byte "
                f"schema fingerprint, got {len(data)} bytes without them"
            )
            raise SerializationError(msg)
        fingerprint = int.from_bytes(data[2:10], "little")
        try:
            writer = self._writers[fingerprint]
        except KeyError:
            msg = (
                f"written with an unknown Avro schema (fingerprint {fingerprint:016x}); "
                f"this serde reads {self.schema.name} fingerprints "
                f"{', '.join(f'{fp:016x}' for fp in self._known)}: add the writer schema "
                "to previous_schemas"
            )
            raise SerializationError(msg) from None
        if writer is None:
            return _decode_body(data, 10, self.schema, None, f"schema {self.schema.name}")
        return _decode_body(data, 10, writer, self.schema, f"schema {writer!r}")


class RawAvroSerde:
    """The bare Avro binary body, with a fixed writer schema and an optional reader schema.

    Nothing in the bytes says which schema wrote them, so both sides must agree on it out of
    band; decoding resolves ``writer_schema`` data to ``reader_schema`` (default: the same).
    Prefer :class:`AvroSerde` or :class:`RegistryAvroSerde` when the schema may change.
    """

    def __init__(
        self,
        writer_schema: SchemaSource,
        reader_schema: SchemaSource | None = None,
    ) -> None:
        self.writer = AvroSchema.of(writer_schema)
        reader = None if reader_schema is None else AvroSchema.of(reader_schema)
        if reader is not None and reader == self.writer:
            reader = None
        if reader is not None:
            problems = compatibility_problems(self.writer, reader)
            if problems:
                raise ConfigError(
                    _problems_message(f"the writer schema {self.writer.name}", reader, problems)
                )
        self.reader = reader

    def encode(self, value: Any) -> bytes:
        out = io.BytesIO()
        _encode_body(self.writer, value, out)
        return out.getvalue()

    def decode(self, data: bytes) -> Any:
        return _decode_body(data, 0, self.writer, self.reader, f"schema {self.writer.name}")


class RegistryAvroSerde:
    """Avro in the Confluent wire format, with writer schemas from a schema registry.

    * **Decoding** reads the schema id after the magic byte, fetches that writer schema from
      the registry once (then caches it) and decodes the body into ``schema``, the
      application's reader schema. Without ``schema``, values come back as written.
    * **Encoding** writes with ``schema`` under its registry id. The id is looked up under
      ``subject`` on the first record; with ``auto_register=True`` the schema is registered
      there first (the registry's compatibility rules decide whether it is accepted).

    ``subject`` defaults to the TopicNameStrategy: ``<topic>-value``, or ``<topic>-key``
    with ``is_key=True``. Errors (a wrong magic byte, an unknown schema id, an unreachable
    registry, a corrupt body, an incompatible writer schema) raise
    :class:`~streamer.errors.SerializationError` and so follow the application's error
    policy.
    """

    def __init__(
        self,
        registry: SchemaRegistryClient | str,
        schema: SchemaSource | None = None,
        *,
        topic: str | None = None,
        subject: str | None = None,
        is_key: bool = False,
        auto_register: bool = False,
    ) -> None:
        if not isinstance(registry, SchemaRegistryClient):
            registry = SchemaRegistryClient(registry)
        self.registry = registry
        self.schema = None if schema is None else AvroSchema.of(schema)
        if subject is None and topic is not None:
            subject = f"{topic}-{'key' if is_key else 'value'}"
        self.subject = subject
        self.auto_register = auto_register
        if auto_register and subject is None:
            msg = "auto_register needs a subject: pass topic= or subject="
            raise ConfigError(msg)
        self._writer_id: int | None = None
        self._header = b""
        self._lock = threading.Lock()
        # schema id -> (writer, reader or None when no resolution is needed), or the reason
        # the writer schema cannot be read
        self._plans: dict[int, tuple[AvroSchema, AvroSchema | None] | str] = {}

    def __repr__(self) -> str:
        return f"RegistryAvroSerde({self.registry.url!r}, subject={self.subject!r})"

    # --- encode ----------------------------------------------------------------------------

    def encode(self, value: Any) -> bytes:
        if self.schema is None:
            msg = f"{self!r} has no schema to write with: pass schema="
            raise SerializationError(msg)
        if self._writer_id is None:
            self._writer_id = self._resolve_writer_id(self.schema)
            self._header = bytes([MAGIC_BYTE]) + self._writer_id.to_bytes(4, "big")
        out = io.BytesIO()
        out.write(self._header)
        _encode_body(self.schema, value, out)
        return out.getvalue()

    def _resolve_writer_id(self, schema: AvroSchema) -> int:
        if self.subject is None:
            msg = f"{self!r} needs a subject to find the id of its schema: pass topic= or subject="
            raise SerializationError(msg)
        if self.auto_register:
            schema_id = self.registry.register(self.subject, schema.text)
        else:
            found = self.registry.lookup(self.subject, schema.text)
            if found is None:
                msg = (
                    f"the schema {schema.name} is not registered under subject "
                    f"{self.subject!r} at {self.registry.url}: register it, or build the "
                    "serde with auto_register=True"
                )
                raise SerializationError(msg)
            schema_id = found
        with self._lock:
            self._plans.setdefault(schema_id, (schema, None))
        return schema_id

    # --- decode ----------------------------------------------------------------------------

    def decode(self, data: bytes) -> Any:
        if len(data) < 5:
            msg = (
                f"too short for the Confluent wire format ({len(data)} bytes; it needs the "
                "magic byte 0 and a 4-byte schema id before the Avro body)"
            )
            raise SerializationError(msg)
        if data[0] != MAGIC_BYTE:
            msg = (
                f"wrong magic byte 0x{data[0]:02x}: not the Confluent wire format (magic byte "
                f"0, 4-byte schema id, Avro body); {len(data)} bytes"
            )
            raise SerializationError(msg)
        schema_id = int.from_bytes(data[1:5], "big")
        plan = self._plans.get(schema_id)
        if plan is None:
            plan = self._plan(schema_id)
        if isinstance(plan, str):
            raise SerializationError(plan)
        writer, reader = plan
        return _decode_body(data, 5, writer, reader, f"schema id {schema_id}")

    def _plan(self, schema_id: int) -> tuple[AvroSchema, AvroSchema | None] | str:
        writer = AvroSchema(self.registry.schema_by_id(schema_id))  # raises: not cached
        plan: tuple[AvroSchema, AvroSchema | None] | str
        if self.schema is None or self.schema == writer:
            plan = (writer, None)
        else:
            problems = compatibility_problems(writer, self.schema)
            if problems:
                plan = _problems_message(f"schema id {schema_id}", self.schema, problems)
            else:
                plan = (writer, self.schema)
        with self._lock:
            self._plans[schema_id] = plan
        return plan


__all__ = [
    "MAGIC_BYTE",
    "SINGLE_OBJECT_MARKER",
    "AvroSchema",
    "AvroSerde",
    "RawAvroSerde",
    "RegistryAvroSerde",
    "compatibility_problems",
    "fingerprint64",
]
