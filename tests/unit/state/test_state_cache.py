"""The write cache's commit protocol: dirty entries, commit, discard, tombstones."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from streamer.errors import StateError
from streamer.state import CachingStore, MemoryStore


class SpyStore(MemoryStore):
    """A MemoryStore that records every write call it receives."""

    def __init__(self) -> None:
        super().__init__("spy")
        self.calls: list[str] = []
        self.fail_next_batch = False

    def put(self, key: bytes, value: bytes) -> None:
        self.calls.append("put")
        super().put(key, value)

    def delete(self, key: bytes) -> None:
        self.calls.append("delete")
        super().delete(key)

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        self.calls.append("write_batch")
        if self.fail_next_batch:
            self.fail_next_batch = False
            raise StateError("disk full")
        super().write_batch(entries, position=position, logged=logged)


@pytest.fixture
def inner() -> SpyStore:
    spy = SpyStore()
    spy.write_batch([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    spy.calls.clear()
    return spy


def test_writes_never_reach_inner_before_commit(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"10")
    cache.put(b"d", b"4")
    cache.delete(b"b")
    cache.write_batch([(b"e", b"5"), (b"c", None)])
    assert inner.calls == []
    assert list(inner.range(None, None)) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]

    cache.commit()
    assert inner.calls == ["write_batch"]
    assert list(inner.range(None, None)) == [(b"a", b"10"), (b"d", b"4"), (b"e", b"5")]
    assert cache.dirty_count == 0
    assert cache.dirty_entries() == []


def test_dirty_entries_one_per_key_latest_value_in_key_order(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"z", b"1")
    cache.put(b"a", b"1")
    cache.put(b"z", b"2")
    cache.delete(b"a")
    cache.put(b"m", b"1")
    cache.delete(b"m")
    cache.put(b"m", b"3")
    cache.delete(b"b")
    assert cache.dirty_entries() == [(b"a", None), (b"b", None), (b"m", b"3"), (b"z", b"2")]
    assert cache.dirty_count == 4


def test_tombstones_hide_inner_rows(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.delete(b"b")
    assert cache.get(b"b") is None
    assert inner.get(b"b") == b"2"
    assert list(cache.range(None, None)) == [(b"a", b"1"), (b"c", b"3")]
    assert list(cache.range(None, None, reverse=True)) == [(b"c", b"3"), (b"a", b"1")]
    assert list(cache.prefix(b"b")) == []
    assert list(cache.range(b"b", b"c")) == []


def test_dirty_values_shadow_inner_in_scans(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"b", b"20")
    cache.put(b"bb", b"new")
    cache.put(b"0", b"first")
    assert list(cache.range(None, None)) == [
        (b"0", b"first"),
        (b"a", b"1"),
        (b"b", b"20"),
        (b"bb", b"new"),
        (b"c", b"3"),
    ]
    assert [k for k, _ in cache.range(b"a", b"c", reverse=True)] == [b"bb", b"b", b"a"]


def test_discard_restores_committed_view(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"x")
    cache.commit()
    cache.put(b"a", b"y")
    cache.delete(b"b")
    cache.put(b"q", b"q")
    assert cache.discard() == 3
    assert cache.dirty_count == 0
    assert cache.dirty_bytes == 0
    assert list(cache.range(None, None)) == [(b"a", b"x"), (b"b", b"2"), (b"c", b"3")]
    assert cache.discard() == 0


def test_commit_with_nothing_dirty_touches_nothing(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.commit()
    assert inner.calls == []


def test_failed_commit_keeps_dirty_entries(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"x")
    inner.fail_next_batch = True
    with pytest.raises(StateError, match="disk full"):
        cache.commit()
    assert cache.dirty_entries() == [(b"a", b"x")]
    assert inner.get(b"a") == b"1"
    cache.commit()
    assert inner.get(b"a") == b"x"


def test_dirty_bytes_accounting(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"key", b"12345")
    assert cache.dirty_bytes == 3 + 5
    cache.put(b"key", b"12")
    assert cache.dirty_bytes == 3 + 2
    cache.delete(b"key")
    assert cache.dirty_bytes == 3
    cache.put(b"k2", b"v")
    assert cache.dirty_bytes == 3 + 2 + 1
    assert cache.dirty_count == 2
    assert cache.approximate_size() == inner.approximate_size() + cache.dirty_bytes
    cache.commit()
    assert cache.dirty_bytes == 0


def test_flush_does_not_commit(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"x")
    cache.flush()
    assert inner.calls == []
    assert cache.dirty_count == 1


def test_close_drops_uncommitted_and_closes_inner(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"x")
    cache.close()
    assert not inner.is_open
    assert not cache.is_open
    assert inner.calls == []
    with pytest.raises(StateError, match="closed"):
        cache.dirty_entries()


def test_scan_snapshot_of_dirty_entries_survives_commit(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"b", b"20")
    cache.put(b"d", b"4")
    rows = cache.range(None, None)
    assert next(rows) == (b"a", b"1")
    cache.commit()
    assert list(rows) == [(b"b", b"20"), (b"c", b"3"), (b"d", b"4")]


def test_name_and_inner(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    assert cache.name == "spy"
    assert cache.inner is inner


def test_commit_records_the_position_in_the_same_batch(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"9")
    with pytest.raises(StateError, match="recorded by commit"):
        cache.write_batch([(b"b", b"1")], position=3)
    cache.commit(position=7)
    assert inner.calls == ["write_batch"]
    assert (inner.get(b"a"), cache.changelog_position()) == (b"9", 7)
    cache.commit(position=8)  # nothing dirty: the position alone is still recorded
    assert inner.changelog_position() == 8


def test_a_failed_commit_records_no_position(inner: SpyStore) -> None:
    cache = CachingStore(inner)
    cache.put(b"a", b"9")
    inner.fail_next_batch = True
    with pytest.raises(StateError):
        cache.commit(position=7)
    assert cache.changelog_position() is None
