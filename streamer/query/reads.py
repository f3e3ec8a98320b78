"""Reading one partition's committed store, and turning keys and values into JSON.

Pure functions over a :class:`~streamer.state.base.BytesStore` (the committed store a
:class:`~streamer.query.stores.StoreRegistry` hands out) and the store's
:class:`~streamer.topology.nodes.StoreSpec`. Keys arrive as text in one of
:data:`ENCODINGS`; a key that cannot be read or encoded raises :class:`BadKey`, whose
message says why and what to try instead, and never repeats the key itself.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Iterator
from itertools import islice
from typing import Any

from streamer.errors import StreamerError
from streamer.serde import BytesSerde
from streamer.state import BytesStore, SessionStore, WindowStore
from streamer.topology.nodes import StoreSpec

ENCODINGS = ("text", "json", "base64", "hex")
"""How a key is given: ``text`` (the store's key serde encodes the string, or, when it
refuses a string, the JSON value the text reads as, such as a number); ``json`` (a JSON
value for the key serde); ``base64`` and ``hex`` (the encoded key's bytes themselves)."""

MAX_LIMIT = 1000
"""The largest page a scan returns."""


class BadKey(StreamerError):
    """A key (or bound, or cursor) the server cannot turn into the store's bytes."""


def encode_key(spec: StoreSpec, text: str, encoding: str) -> bytes:
    """The bytes the store (and the producer's partitioner) use for the key ``text``."""
    if encoding not in ENCODINGS:
        msg = f"unknown key encoding {encoding!r}: use one of {', '.join(ENCODINGS)}"
        raise BadKey(msg)
    if encoding == "base64":
        try:
            return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            msg = "the key is not valid base64 (encoding=base64)"
            raise BadKey(msg) from None
    if encoding == "hex":
        try:
            return bytes.fromhex(text)
        except ValueError:
            msg = "the key is not valid hex: an even number of 0-9a-f digits (encoding=hex)"
            raise BadKey(msg) from None
    serde = type(spec.key_serde).__name__
    if encoding == "text":
        try:
            return bytes(spec.key_serde.encode(text))
        except Exception:
            pass  # a serde of numbers or records: try the text as JSON
    try:
        value = json.loads(text)
    except ValueError:
        msg = (
            f"store {spec.name!r} has {serde} keys, and the key is not valid JSON "
            f"(encoding={encoding}); give it as JSON, base64 or hex"
        )
        raise BadKey(msg) from None
    try:
        return bytes(spec.key_serde.encode(value))
    except Exception as exc:
        msg = (
            f"store {spec.name!r} has {serde} keys, which cannot encode a "
            f"{type(value).__name__} ({type(exc).__name__}); give the key as the serde "
            "expects, or as base64 or hex bytes"
        )
        raise BadKey(msg) from None


def decode_cursor(text: str) -> bytes:
    """A page cursor (the base64 of the last key returned) as bytes."""
    try:
        return base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        msg = "the cursor is not valid: pass the 'next' value of the previous page as is"
        raise BadKey(msg) from None


def cursor_of(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def jsonable(value: Any) -> Any:
    """``value`` as something :func:`json.dumps` accepts: bytes become ``{"base64": ...}``,
    dataclasses and objects with fields a dict, anything else its ``str``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def decoded(serde: Any, data: bytes) -> Any:
    """``data`` decoded by ``serde`` as JSON; the raw bytes when the serde refuses them."""
    try:
        return jsonable(serde.decode(data))
    except Exception:
        return jsonable(data)


def get(store: BytesStore, spec: StoreSpec, key: bytes) -> tuple[bool, Any]:
    """``(found, value)`` of ``key`` in a key-value store."""
    data = store.get(key)
    return (False, None) if data is None else (True, decoded(spec.value_serde, data))


def scan(
    store: BytesStore, start: bytes | None, end: bytes | None, after: bytes | None, limit: int
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` entries with ``start <= key < end`` and ``key > after``, by key."""
    if after is not None and (start is None or after >= start):
        start = after + b"\x00"
    return list(islice(store.range(start, end), limit))


def row(spec: StoreSpec, key: bytes, value: bytes) -> dict[str, Any]:
    return {
        "key": decoded(spec.key_serde, key),
        "value": decoded(spec.value_serde, value),
        "cursor": cursor_of(key),
    }


def windows(
    store: BytesStore, spec: StoreSpec, key: bytes, time_from: int, time_to: int, limit: int
) -> list[dict[str, Any]]:
    """The key's windows with a start in ``[time_from, time_to]``, by start."""
    view = WindowStore(store, BytesSerde(), spec.value_serde)
    rows: Iterator[tuple[int, Any]] = view.fetch_range(key, time_from, time_to)
    return [{"start": start, "value": jsonable(value)} for start, value in islice(rows, limit)]


def sessions(
    store: BytesStore, spec: StoreSpec, key: bytes, time_from: int, time_to: int, limit: int
) -> list[dict[str, Any]]:
    """The key's sessions that overlap ``[time_from, time_to]``, by end."""
    view = SessionStore(store, BytesSerde(), spec.value_serde)
    rows = view.find_sessions(key, time_from, time_to)
    return [
        {"start": start, "end": end, "value": jsonable(value)}
        for start, end, value in islice(rows, limit)
    ]


__all__ = [
    "ENCODINGS",
    "MAX_LIMIT",
    "BadKey",
    "cursor_of",
    "decode_cursor",
    "encode_key",
    "get",
    "jsonable",
    "row",
    "scan",
    "sessions",
    "windows",
]
