"""The window store's rows: the time-index row is written with a new window and deleted
with it, not rewritten by every update; scans can start past deleted windows."""

from __future__ import annotations

from typing import Any

from streamer.serde import JsonSerde, StringSerde
from streamer.state import CachingStore, MemoryStore, WindowStore, layout


def store() -> tuple[WindowStore[Any, Any], CachingStore]:
    cache = CachingStore(MemoryStore("w"))
    return WindowStore(cache, StringSerde(), JsonSerde()), cache


def test_an_update_of_a_stored_window_writes_only_its_value_row() -> None:
    windows, cache = store()
    windows.put("a", 0, 1)
    cache.commit()
    windows.put("a", 0, windows.fetch("a", 0) + 1, exists=True)
    assert [row[:1] for row, _ in cache.dirty_entries()] == [layout.PRIMARY]
    cache.commit()
    assert windows.fetch("a", 0) == 2
    assert list(windows.windows_starting_before(1)) == [("a", 0, 2)]


def test_a_new_window_and_a_deleted_one_write_both_rows() -> None:
    windows, cache = store()
    windows.put("a", 0, 1)
    assert sorted(row[:1] for row, _ in cache.dirty_entries()) == [layout.PRIMARY, layout.INDEX]
    cache.commit()
    windows.delete("a", 0)
    assert [value for _, value in cache.dirty_entries()] == [None, None]
    cache.commit()
    assert list(cache.range(None, None)) == []


def test_windows_starting_before_since_skips_earlier_windows() -> None:
    windows, _ = store()
    for start in (0, 10, 20, 30):
        windows.put("a", start, start)
    assert [s for _, s, _ in windows.windows_starting_before(30, since=10)] == [10, 20]
    assert [s for _, s, _ in windows.windows_starting_before(30)] == [0, 10, 20]
    assert list(windows.windows_starting_before(30, since=2**63)) == []


def test_a_mutable_key_is_encoded_again_at_each_call() -> None:
    windows = WindowStore(CachingStore(MemoryStore("w")), JsonSerde(), JsonSerde())
    key = {"card": 1}
    windows.put(key, 0, "first")
    key["card"] = 2
    assert windows.fetch(key, 0) is None, "the changed key is another key"
    windows.put(key, 0, "second")
    assert sorted(k["card"] for k, _, _ in windows.all()) == [1, 2]
