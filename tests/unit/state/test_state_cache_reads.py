"""The write cache's read cache: committed values read or applied are served again without
reading the inner store, which only commit() writes."""

from __future__ import annotations

import pytest

from streamer.state import CachingStore, MemoryStore
from streamer.state import cache as cache_module


class CountingStore(MemoryStore):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gets = 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return super().get(key)


def test_a_committed_value_is_read_from_the_inner_store_once() -> None:
    inner = CountingStore("s")
    inner.put(b"a", b"1")
    cache = CachingStore(inner)
    assert cache.get(b"a") == b"1"
    assert cache.get(b"a") == b"1"
    assert cache.get(b"missing") is None
    assert cache.get(b"missing") is None
    assert inner.gets == 2


def test_commit_remembers_what_it_applied_and_discard_keeps_committed_values() -> None:
    inner = CountingStore("s")
    cache = CachingStore(inner)
    cache.put(b"a", b"1")
    cache.put(b"b", b"2")
    cache.commit()
    cache.delete(b"b")
    cache.commit()
    cache.put(b"a", b"uncommitted")
    cache.discard()
    assert (cache.get(b"a"), cache.get(b"b")) == (b"1", None)
    assert inner.gets == 0
    assert (inner.get(b"a"), inner.get(b"b")) == (b"1", None)


def test_forget_reads_reads_the_inner_store_again() -> None:
    inner = CountingStore("s")
    cache = CachingStore(inner)
    assert cache.get(b"a") is None
    inner.put(b"a", b"restored")  # as a changelog restore writes it
    cache.forget_reads()
    assert cache.get(b"a") == b"restored"


def test_the_read_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "READ_CACHE_ENTRIES", 4)
    inner = CountingStore("s")
    cache = CachingStore(inner)
    for n in range(10):
        cache.get(bytes([n]))
    assert len(cache._reads) <= 4
    for n in range(10):
        cache.put(bytes([n]), b"v")
    cache.commit()
    assert len(cache._reads) <= 4
    assert all(cache.get(bytes([n])) == b"v" for n in range(10))
