"""Avro schemas as serdes use them: parsed once, identified by fingerprint, checked in pairs.

:class:`AvroSchema` holds a schema's JSON text, its fastavro form, its parsing canonical form
and the CRC-64-AVRO fingerprint of that form (the identity Avro's single-object encoding
writes). Two schemas are equal when their canonical forms are. :func:`compatibility_problems`
says why data written with one schema cannot be read with another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import fastavro
import fastavro.schema

from streamer.errors import SerializationError
from streamer.serde.avro_resolution import PRIMITIVES, resolution_problems

# --- CRC-64-AVRO, the fingerprint of Avro's single-object encoding -------------------------

_EMPTY64 = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 if fp & 1 else 0)
        table.append(fp)
    return table


_CRC64_TABLE = _crc64_table()


def fingerprint64(data: bytes) -> int:
    """The CRC-64-AVRO fingerprint of ``data`` (a schema's parsing canonical form)."""
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


# --- schemas --------------------------------------------------------------------------------


class AvroSchema:
    """A parsed Avro schema: its JSON text, the fastavro form and its identity.

    Build one from JSON text, a dict or list, or a path to an ``.avsc`` file. Invalid schemas
    raise :class:`~streamer.errors.SerializationError` naming the problem.
    """

    __slots__ = ("canonical", "fingerprint", "name", "parsed", "raw", "text")

    def __init__(self, schema: str | Mapping[str, Any] | Sequence[Any] | Path) -> None:
        source = "schema"
        if isinstance(schema, Path):
            source = str(schema)
            try:
                schema = schema.read_text()
            except OSError as exc:
                msg = f"cannot read the Avro schema file {source}: {exc}"
                raise SerializationError(msg) from exc
        if isinstance(schema, str):
            text = schema
            try:
                raw: Any = json.loads(schema)
            except ValueError:
                if schema.strip() in PRIMITIVES:
                    raw = schema.strip()
                    text = json.dumps(raw)
                else:
                    msg = f"the Avro {source} is not JSON: {schema[:80]!r}"
                    raise SerializationError(msg) from None
        else:
            raw = json.loads(json.dumps(schema))  # a private copy: fastavro mutates its input
            text = json.dumps(raw)
        try:
            parsed = fastavro.parse_schema(json.loads(json.dumps(raw)))
            canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        except Exception as exc:
            msg = f"invalid Avro {source}: {exc}"
            raise SerializationError(msg) from exc
        self.raw: Any = raw
        self.text: str = text
        self.parsed: Any = parsed
        self.canonical: str = canonical
        self.fingerprint: int = fingerprint64(canonical.encode())
        self.name: str = _type_name(parsed)

    @classmethod
    def load(cls, path: str | Path) -> AvroSchema:
        """The schema in the ``.avsc`` file at ``path``."""
        return cls(Path(path))

    @classmethod
    def of(cls, schema: SchemaSource) -> AvroSchema:
        return schema if isinstance(schema, AvroSchema) else cls(schema)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AvroSchema) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __repr__(self) -> str:
        return f"AvroSchema({self.name}, fingerprint={self.fingerprint:016x})"


SchemaSource: TypeAlias = "AvroSchema | str | Mapping[str, Any] | Sequence[Any] | Path"
"""Anything a serde accepts as a schema: parsed, JSON text, a dict or list, an .avsc path."""


def _type_name(parsed: Any) -> str:
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, list):
        return "union"
    name = parsed.get("name")
    return str(name) if name else str(parsed.get("type"))


# --- compatibility --------------------------------------------------------------------------


def compatibility_problems(
    writer: SchemaSource,
    reader: SchemaSource,
) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader``; empty if it can.

    Follows the Avro specification's schema resolution: reader fields missing from the
    writer need defaults, writer fields missing from the reader are skipped, numbers may be
    promoted (int to long, float or double; long to float or double; float to double),
    strings and bytes convert, enum symbols unknown to the reader need a reader default,
    named types match by unqualified name or a reader alias, and every branch of a writer
    union must be readable. Each problem names where it is (``field 'tx.amount'``).
    """
    w, r = AvroSchema.of(writer), AvroSchema.of(reader)
    return resolution_problems(w.parsed, r.parsed)


__all__ = ["AvroSchema", "SchemaSource", "compatibility_problems", "fingerprint64"]
