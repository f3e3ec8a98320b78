"""Byte layouts of the window and session stores' rows.

All integers are big-endian so byte order equals numeric order. Timestamps are signed 64-bit
milliseconds stored with the sign bit flipped (``ts + 2**63`` as unsigned), so negative
timestamps sort before positive ones. Serialised keys are length-prefixed (4 bytes), so the
rows of key ``b"a"`` never interleave with those of ``b"ab"``: a per-key prefix scan returns
that key's rows only.

Window store rows (value = the window's value / empty)::

    primary  b"k" + len(key) + key + start          ordered by (len, key, start)
    index    b"t" + start + len(key) + key          ordered by (start, len, key)

Session store rows::

    primary  b"k" + len(key) + key + end + start    ordered by (len, key, end, start)
    index    b"t" + end + len(key) + key + start    ordered by (end, len, key, start)
"""

from __future__ import annotations

import struct

from streamer.errors import StateError

PRIMARY = b"k"
INDEX = b"t"
MIN_TIME = -(2**63)
MAX_TIME = 2**63 - 1

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_FLIP = 2**63


def encode_time(ts: int) -> bytes:
    """8 bytes that sort like the signed 64-bit timestamp ``ts``."""
    if not MIN_TIME <= ts <= MAX_TIME:
        msg = f"timestamp {ts} does not fit in a signed 64-bit integer"
        raise StateError(msg)
    return _U64.pack(ts + _FLIP)


def decode_time(data: bytes, offset: int = 0) -> int:
    """The timestamp :func:`encode_time` stored at ``data[offset:offset + 8]``."""
    value: int = _U64.unpack_from(data, offset)[0]
    return value - _FLIP


def length_prefixed(key: bytes) -> bytes:
    """``key`` preceded by its length as 4 big-endian bytes."""
    if len(key) >= 2**32:
        msg = f"a state store key is limited to 4 GiB, got {len(key)} bytes"
        raise StateError(msg)
    return _U32.pack(len(key)) + key


def read_length_prefixed(data: bytes, offset: int) -> tuple[bytes, int]:
    """The key at ``data[offset:]`` and the offset just past it."""
    (length,) = _U32.unpack_from(data, offset)
    start = offset + 4
    end = start + length
    if end > len(data):
        msg = (
            f"a state store row of {len(data)} bytes is truncated: key length {length} at "
            f"byte {offset} overruns it"
        )
        raise StateError(msg)
    return data[start:end], end


def key_prefix(key: bytes) -> bytes:
    """The prefix shared by every primary row of ``key`` (window and session stores)."""
    return PRIMARY + length_prefixed(key)


# -- window rows -------------------------------------------------------------------------


def window_key(key: bytes, start: int) -> bytes:
    return key_prefix(key) + encode_time(start)


def window_index_key(key: bytes, start: int) -> bytes:
    return INDEX + encode_time(start) + length_prefixed(key)


def parse_window_key(row: bytes) -> tuple[bytes, int]:
    """``(key, start)`` of a primary window row."""
    key, pos = read_length_prefixed(row, 1)
    return key, decode_time(row, pos)


def parse_window_index_key(row: bytes) -> tuple[bytes, int]:
    """``(key, start)`` of a window index row."""
    start = decode_time(row, 1)
    key, _ = read_length_prefixed(row, 9)
    return key, start


# -- session rows ------------------------------------------------------------------------


def session_key(key: bytes, start: int, end: int) -> bytes:
    return key_prefix(key) + encode_time(end) + encode_time(start)


def session_index_key(key: bytes, start: int, end: int) -> bytes:
    return INDEX + encode_time(end) + length_prefixed(key) + encode_time(start)


def parse_session_key(row: bytes) -> tuple[bytes, int, int]:
    """``(key, start, end)`` of a primary session row."""
    key, pos = read_length_prefixed(row, 1)
    return key, decode_time(row, pos + 8), decode_time(row, pos)


def parse_session_index_key(row: bytes) -> tuple[bytes, int, int]:
    """``(key, start, end)`` of a session index row."""
    end = decode_time(row, 1)
    key, pos = read_length_prefixed(row, 9)
    return key, decode_time(row, pos), end
