"""JSON values as UTF-8 bytes, encoded and decoded with orjson.

orjson encodes a typical 150-byte card transaction about 9 times faster than the standard
library and decodes it about 6 times faster (``python -m benchmarks.serde``; the numbers are
in ``docs/serialization.md``), so it is the default. The output is compact JSON with keys in
insertion order, the same as ``json.dumps(value, separators=(",", ":"))`` except that
non-ASCII text is written as UTF-8 rather than ``\\uXXXX`` escapes, and that NaN and
infinities, which JSON cannot represent, become ``null``.

Whatever orjson refuses is retried with :mod:`json`: encoding integers beyond 64 bits, and
decoding the ``NaN`` / ``Infinity`` tokens that ``json.dumps`` writes by default. Non-string
dict keys (ints, floats, bools) become strings, as with ``json.dumps``. One difference
remains: orjson decodes an integer beyond 64 bits as a float. Use :class:`StdlibJsonSerde`
where such integers must come back exact.
"""

from __future__ import annotations

import json as stdlib_json
from typing import Any

import orjson

from streamer.errors import SerializationError

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _describe(data: bytes, exc: Exception) -> str:
    """The parser's complaint and where, never the payload: it may hold personal data."""
    return f"invalid JSON ({exc}); {len(data)} bytes"


class JsonSerde:
    """JSON text in UTF-8 (orjson, with the standard library as a fallback)."""

    def encode(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: a big int, a set, an unknown type
            pass
        try:
            return stdlib_json.dumps(value, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            msg = f"cannot encode {type(value).__name__} as JSON: {exc}"
            raise SerializationError(msg) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            first = exc
        try:
            return stdlib_json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise SerializationError(_describe(data, first)) from first


class StdlibJsonSerde:
    """JSON with the standard library only: ``json.dumps(value, separators=(",", ":"))``.

    Byte for byte what earlier versions of :class:`JsonSerde` wrote (ASCII escapes, ``NaN``
    tokens); kept for comparison in benchmarks and for readers that need ASCII-only output.
    """

    def encode(self, value: Any) -> bytes:
        try:
            return stdlib_json.dumps(value, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            msg = f"cannot encode {type(value).__name__} as JSON: {exc}"
            raise SerializationError(msg) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return stdlib_json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SerializationError(_describe(data, exc)) from exc


__all__ = ["JsonSerde", "StdlibJsonSerde"]
