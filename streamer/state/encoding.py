"""Encoding keys and values for a store, with an error that names the store and the serde.

A value that the store's serde cannot encode (a ``bytes`` value in a JSON store, a record that
does not fit an Avro schema) is a mistake in the topology, not in the record's bytes: the
error says which store, which part and which serde, and what to change. Like every serde
message, it names types, never the value itself.
"""

from __future__ import annotations

from typing import Any

from streamer.errors import SerializationError
from streamer.serde import Serde

_REASON_CHARS = 200

IMMUTABLE_KEYS = frozenset({str, bytes, int})
"""Key types whose encoding cannot change between two calls with the same object: a typed
store may remember the last such key's bytes."""
NO_KEY: object = object()
"""What a typed store remembers before its first key."""


def encode_for_store(store: str, part: str, serde: Serde[Any], value: Any) -> bytes:
    """``serde.encode(value)``; a failure raises :class:`SerializationError` naming
    ``store`` and ``part`` (``"key"`` or ``"value"``)."""
    try:
        return serde.encode(value)
    except Exception as exc:
        raise store_encode_error(store, part, serde, value, exc) from exc


def store_encode_error(
    store: str, part: str, serde: Serde[Any], value: Any, exc: Exception
) -> SerializationError:
    """The error of a ``part`` that ``serde`` could not encode for ``store``."""
    reason = str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"
    if len(reason) > _REASON_CHARS:
        reason = reason[:_REASON_CHARS] + "..."
    msg = (
        f"state store {store!r} cannot encode a {part} of type {type(value).__name__} with "
        f"{type(serde).__name__} ({reason}); give the step that owns the store a {part} serde "
        f"that can ({part}_serde=..., or stream_joined=StreamJoined(...) on a stream-stream "
        "join)"
    )
    return SerializationError(msg)


__all__ = ["IMMUTABLE_KEYS", "NO_KEY", "encode_for_store", "store_encode_error"]
