"""Typed stores: key-value, window and session stores, row layout."""

from __future__ import annotations

from typing import Any

import pytest

from streamer.errors import StateError
from streamer.serde import BytesSerde, JsonSerde, LongSerde, StringSerde
from streamer.state import (
    CachingStore,
    KeyValueStore,
    MemoryStore,
    SessionStore,
    WindowStore,
    layout,
)

# -- layout ------------------------------------------------------------------------------


def test_time_encoding_sorts_like_signed_integers() -> None:
    times = [layout.MIN_TIME, -(10**12), -2, -1, 0, 1, 2, 10**12, layout.MAX_TIME]
    encoded = [layout.encode_time(t) for t in times]
    assert encoded == sorted(encoded)
    assert [layout.decode_time(e) for e in encoded] == times
    assert layout.encode_time(0) == b"\x80" + b"\x00" * 7


@pytest.mark.parametrize("bad", [layout.MIN_TIME - 1, layout.MAX_TIME + 1])
def test_time_out_of_range(bad: int) -> None:
    with pytest.raises(StateError, match="64-bit"):
        layout.encode_time(bad)


def test_window_row_layout() -> None:
    row = layout.window_key(b"ab", -1)
    assert row == b"k" + b"\x00\x00\x00\x02" + b"ab" + b"\x7f" + b"\xff" * 7
    assert layout.parse_window_key(row) == (b"ab", -1)
    index = layout.window_index_key(b"ab", 5)
    assert index == b"t" + layout.encode_time(5) + b"\x00\x00\x00\x02ab"
    assert layout.parse_window_index_key(index) == (b"ab", 5)


def test_session_row_layout() -> None:
    row = layout.session_key(b"k", 3, 9)
    assert row == b"k\x00\x00\x00\x01k" + layout.encode_time(9) + layout.encode_time(3)
    assert layout.parse_session_key(row) == (b"k", 3, 9)
    index = layout.session_index_key(b"k", 3, 9)
    assert layout.parse_session_index_key(index) == (b"k", 3, 9)


def test_truncated_row_is_an_error() -> None:
    with pytest.raises(StateError, match="truncated"):
        layout.parse_window_key(b"k\x00\x00\x00\x09ab")


# -- key-value ---------------------------------------------------------------------------


def test_key_value_store_basics() -> None:
    kv: KeyValueStore[str, Any] = KeyValueStore(MemoryStore("kv"), StringSerde(), JsonSerde())
    assert kv.name == "kv"
    assert kv.get("a") is None
    assert "a" not in kv
    kv.put("a", {"n": 1})
    assert kv.get("a") == {"n": 1}
    assert "a" in kv
    kv.put("a", None)
    assert "a" not in kv
    kv.put_all([("b", 2), ("c", [3]), ("b", None), ("d", "x")])
    assert list(kv.items()) == [("c", [3]), ("d", "x")]
    kv.delete("c")
    assert list(kv.items()) == [("d", "x")]


def test_key_value_range_and_prefix_with_string_keys() -> None:
    kv: KeyValueStore[str, int] = KeyValueStore(MemoryStore("kv"), StringSerde(), LongSerde())
    for i, key in enumerate(["user:1", "user:2", "user:10", "order:1", "usr", "user;"]):
        kv.put(key, i)
    assert [k for k, _ in kv.prefix("user:")] == ["user:1", "user:10", "user:2"]
    assert [k for k, _ in kv.range("order:", "user:2")] == ["order:1", "user:1", "user:10"]
    assert [k for k, _ in kv.range("user:", None, reverse=True)] == [
        "usr",
        "user;",
        "user:2",
        "user:10",
        "user:1",
    ]
    assert [v for _, v in kv.range(None, "user:")] == [3]


# -- windows -----------------------------------------------------------------------------


def window_store() -> WindowStore[bytes, int]:
    return WindowStore(CachingStore(MemoryStore("w")), BytesSerde(), LongSerde())


def test_window_fetch_put_delete() -> None:
    ws = window_store()
    ws.put(b"a", 100, 1)
    assert ws.fetch(b"a", 100) == 1
    assert ws.fetch(b"a", 101) is None
    ws.put(b"a", 100, 2)
    assert ws.fetch(b"a", 100) == 2
    ws.delete(b"a", 100)
    assert ws.fetch(b"a", 100) is None
    assert list(ws.store.range(None, None)) == []  # both rows are gone
    ws.put(b"a", 5, 1)
    ws.put(b"a", 5, None)
    assert list(ws.all()) == []


def test_window_fetch_range_is_per_key_and_inclusive() -> None:
    ws = window_store()
    for key in [b"a", b"ab", b"", b"a\x00", b"b"]:
        for start in [-20, -10, 0, 10, 20]:
            ws.put(key, start, len(key) * 1000 + start)
    assert list(ws.fetch_range(b"a", -10, 10)) == [(-10, 990), (0, 1000), (10, 1010)]
    assert [s for s, _ in ws.fetch_range(b"a", -15, -5)] == [-10]
    assert [s for s, _ in ws.fetch_range(b"", layout.MIN_TIME - 5, layout.MAX_TIME + 5)] == [
        -20,
        -10,
        0,
        10,
        20,
    ]
    assert list(ws.fetch_range(b"a", 11, 19)) == []
    assert list(ws.fetch_range(b"a", 10, -10)) == []
    assert list(ws.fetch_range(b"zz", -100, 100)) == []


def test_windows_starting_before_orders_by_time_across_keys() -> None:
    ws = window_store()
    ws.put(b"b", 5, 1)
    ws.put(b"a", 5, 2)
    ws.put(b"ab", -7, 3)
    ws.put(b"a", 100, 4)
    ws.put(b"c", -(2**40), 5)
    got = list(ws.windows_starting_before(100))
    assert got == [(b"c", -(2**40), 5), (b"ab", -7, 3), (b"a", 5, 2), (b"b", 5, 1)]
    assert list(ws.windows_starting_before(-7)) == [(b"c", -(2**40), 5)]
    assert len(list(ws.windows_starting_before(layout.MAX_TIME + 1))) == 5
    assert list(ws.windows_starting_before(layout.MIN_TIME - 1)) == []


def test_window_expiry_loop_deletes_while_scanning() -> None:
    ws = window_store()
    for start in range(10):
        ws.put(b"k", start * 10, start)
    expired = []
    for key, start, _ in ws.windows_starting_before(50):
        expired.append(start)
        ws.delete(key, start)
    assert expired == [0, 10, 20, 30, 40]
    assert [s for s, _ in ws.fetch_range(b"k", 0, 100)] == [50, 60, 70, 80, 90]


def test_window_all_orders_by_key_then_start() -> None:
    ws: WindowStore[str, str] = WindowStore(MemoryStore("w"), StringSerde(), StringSerde())
    ws.put("b", 1, "b1")
    ws.put("a", 2, "a2")
    ws.put("a", -1, "a-1")
    assert list(ws.all()) == [("a", -1, "a-1"), ("a", 2, "a2"), ("b", 1, "b1")]


# -- sessions ----------------------------------------------------------------------------


def session_store() -> SessionStore[bytes, str]:
    return SessionStore(CachingStore(MemoryStore("s")), BytesSerde(), StringSerde())


def test_session_put_fetch_remove() -> None:
    ss = session_store()
    ss.put(b"u", 0, 10, "x")
    assert ss.fetch(b"u", 0, 10) == "x"
    assert ss.fetch(b"u", 0, 11) is None
    ss.remove(b"u", 0, 10)
    assert ss.fetch(b"u", 0, 10) is None
    assert list(ss.store.range(None, None)) == []
    with pytest.raises(StateError, match="after its end"):
        ss.put(b"u", 5, 4, "bad")


def test_find_sessions_overlapping_or_touching() -> None:
    ss = session_store()
    ss.put(b"u", 0, 10, "s1")
    ss.put(b"u", 30, 40, "s2")
    ss.put(b"u", 70, 75, "s3")
    ss.put(b"uu", 20, 50, "other key")
    ss.put(b"", 20, 50, "empty key")
    # a record at t=45 with gap 5: sessions ending >= 40 and starting <= 50
    assert list(ss.find_sessions(b"u", 40, 50)) == [(30, 40, "s2")]
    # t=20, gap 10: touches s1 (end 10) and s2 (start 30)
    assert list(ss.find_sessions(b"u", 10, 30)) == [(0, 10, "s1"), (30, 40, "s2")]
    assert list(ss.find_sessions(b"u", 11, 29)) == []
    assert list(ss.find_sessions(b"u", layout.MIN_TIME - 1, layout.MAX_TIME + 1)) == [
        (0, 10, "s1"),
        (30, 40, "s2"),
        (70, 75, "s3"),
    ]
    assert list(ss.find_sessions(b"u", layout.MAX_TIME + 1, 0)) == []


def test_sessions_ending_before_orders_by_end() -> None:
    ss = session_store()
    ss.put(b"b", -50, -20, "b")
    ss.put(b"a", 0, 10, "a1")
    ss.put(b"a", -100, -30, "a0")
    ss.put(b"c", 5, 10, "c")
    got = list(ss.sessions_ending_before(10))
    assert got == [(b"a", -100, -30, "a0"), (b"b", -50, -20, "b")]
    assert [v for *_, v in ss.sessions_ending_before(11)] == ["a0", "b", "a1", "c"]
    assert [v for *_, v in ss.all()] == ["a0", "a1", "b", "c"]
