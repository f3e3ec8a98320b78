"""The versioned key-value store's contract, on the memory and RocksDB bytes stores, with and
without the write cache between; and a reference model under random out-of-order puts."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.errors import StateError
from streamer.serde import LongSerde, StringSerde
from streamer.state import (
    BytesStore,
    CachingStore,
    MemoryStore,
    PutOutcome,
    RocksDBStore,
    Version,
    VersionedKeyValueStore,
    layout,
)

Factory = Callable[[Path], BytesStore]
BACKENDS: dict[str, Factory] = {
    "memory": lambda _path: MemoryStore("v"),
    "rocksdb": lambda path: RocksDBStore(path / "db", "v"),
    "cache-memory": lambda _path: CachingStore(MemoryStore("v")),
    "cache-rocksdb": lambda path: CachingStore(RocksDBStore(path / "db", "v")),
}
RETENTION = 100


@pytest.fixture(params=sorted(BACKENDS))
def bytes_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BytesStore]:
    store = BACKENDS[request.param](tmp_path)
    yield store
    store.close()


@pytest.fixture
def store(bytes_store: BytesStore) -> VersionedKeyValueStore[str, int]:
    return VersionedKeyValueStore(bytes_store, StringSerde(), LongSerde(), RETENTION)


def test_a_lookup_as_of_a_time_returns_the_version_valid_then(
    store: VersionedKeyValueStore[str, int],
) -> None:
    assert store.put("a", 1, 10) is PutOutcome.LATEST
    assert store.put("a", 2, 20) is PutOutcome.LATEST
    assert store.get("a") == 2
    assert [store.get("a", as_of=t) for t in (9, 10, 19, 20, 1000)] == [None, 1, 1, 2, 2]
    assert store.get_version("a", as_of=15) == Version(1, 10, 20)
    assert store.get_version("a") == Version(2, 20, None)
    assert store.get("b", as_of=15) is None
    assert store.stream_time == 20


def test_an_out_of_order_put_goes_into_the_history(
    store: VersionedKeyValueStore[str, int],
) -> None:
    store.put("a", 1, 10)
    store.put("a", 3, 30)
    assert store.put("a", 2, 20) is PutOutcome.HISTORY
    assert store.get("a") == 3
    assert store.history("a") == [Version(1, 10, 20), Version(2, 20, 30), Version(3, 30, None)]
    assert store.stream_time == 30


def test_a_tombstone_is_a_version(store: VersionedKeyValueStore[str, int]) -> None:
    store.put("a", 1, 10)
    assert store.delete("a", 20) is PutOutcome.LATEST
    assert store.get("a") is None
    assert "a" not in store
    assert store.get("a", as_of=15) == 1
    assert store.get("a", as_of=25) is None
    assert store.put("a", 5, 15) is PutOutcome.HISTORY  # before the tombstone
    assert store.history("a") == [Version(1, 10, 15), Version(5, 15, 20), Version(None, 20, None)]
    assert list(store.items()) == []


def test_a_put_at_an_existing_timestamp_replaces_that_version(
    store: VersionedKeyValueStore[str, int],
) -> None:
    store.put("a", 1, 10)
    store.put("a", 2, 20)
    assert store.put("a", 7, 10) is PutOutcome.HISTORY
    assert store.put("a", 8, 20) is PutOutcome.LATEST
    assert store.history("a") == [Version(7, 10, 20), Version(8, 20, None)]


def test_a_put_older_than_the_history_is_refused(store: VersionedKeyValueStore[str, int]) -> None:
    store.put("a", 1, 500)
    assert store.history_start == 500 - RETENTION
    assert store.put("b", 2, 399) is PutOutcome.EXPIRED
    assert store.put("a", 2, 399) is PutOutcome.EXPIRED
    assert store.get("b") is None
    assert store.history("a") == [Version(1, 500, None)]
    assert store.put("b", 3, 400) is PutOutcome.LATEST  # exactly at the history start


def test_lookups_older_than_the_history_return_none(
    store: VersionedKeyValueStore[str, int],
) -> None:
    store.put("a", 1, 10)
    store.put("b", 1, 300)
    assert store.get("a", as_of=200) == 1
    assert store.get("a", as_of=199) is None  # may have been purged: no exact answer
    assert store.get("a") == 1  # the latest value is kept however old


def test_versions_beyond_the_history_are_purged_as_stream_time_moves(
    store: VersionedKeyValueStore[str, int],
) -> None:
    store.put("gone", 1, 0)
    store.delete("gone", 5)
    for ts in range(0, 1000, 10):
        store.put("a", ts, ts)
    rows = list(store.store.range(None, None))
    # Stream time is 990, the history starts at 890: the last purge (at 889) kept the
    # versions of "a" from 880 on; each after 880 with its purge row, still to come; the
    # latest row of "a", the stream-time row. "gone" has no row left.
    versions = [row for row, _ in rows if row.startswith(layout.PRIMARY)]
    assert [layout.parse_window_key(row) for row in versions] == [
        (b"a", ts) for ts in range(880, 1000, 10)
    ]
    assert len(rows) == len(versions) + (len(versions) - 1) + 2
    assert store.get("a", as_of=store.history_start) == 890
    assert store.history("gone") == []


def test_a_new_store_over_the_same_rows_has_the_same_history_and_stream_time(
    store: VersionedKeyValueStore[str, int],
) -> None:
    """What a changelog restore relies on: the rows alone carry every version."""
    store.put("a", 1, 10)
    store.put("a", 3, 30)
    store.put("a", 2, 20)
    store.delete("b", 25)
    copy = MemoryStore("copy")
    copy.write_batch(list(store.store.range(None, None)))
    restored = VersionedKeyValueStore(copy, StringSerde(), LongSerde(), RETENTION)
    assert restored.stream_time == 30
    assert restored.history("a") == store.history("a")
    assert restored.history("b") == [Version(None, 25, None)]
    assert restored.put("a", 0, 10 - RETENTION) is PutOutcome.EXPIRED


def test_a_discarded_cache_takes_the_stream_time_back_with_it() -> None:
    cache = CachingStore(MemoryStore("v"))
    store = VersionedKeyValueStore(cache, StringSerde(), LongSerde(), RETENTION)
    store.put("a", 1, 10)
    cache.commit()
    store.put("a", 2, 1000)
    cache.discard()  # the transaction aborted
    assert store.stream_time == 10
    assert store.put("a", 3, 20) is PutOutcome.LATEST


def test_purges_undone_by_a_discarded_cache_are_done_again() -> None:
    cache = CachingStore(MemoryStore("v"))
    store = VersionedKeyValueStore(cache, StringSerde(), LongSerde(), 10)
    store.put("a", 1, 0)
    store.put("a", 2, 1)
    cache.commit()
    store.put("b", 3, 100)  # purges a@0
    assert [v.valid_from for v in store.history("a")] == [1]
    cache.discard()  # ... but that purge is discarded with the put
    assert [v.valid_from for v in store.history("a")] == [0, 1]
    store.put("c", 4, 50)
    assert [v.valid_from for v in store.history("a")] == [1]


def test_stream_time_survives_reopening_rocksdb(tmp_path: Path) -> None:
    store = VersionedKeyValueStore(
        RocksDBStore(tmp_path / "db", "v"), StringSerde(), LongSerde(), RETENTION
    )
    store.put("a", 1, 10)
    store.put("a", 2, 40)
    store.store.close()
    again = VersionedKeyValueStore(
        RocksDBStore(tmp_path / "db", "v"), StringSerde(), LongSerde(), RETENTION
    )
    try:
        assert again.stream_time == 40
        assert again.history("a") == [Version(1, 10, 40), Version(2, 40, None)]
    finally:
        again.store.close()


def test_a_retention_must_be_positive() -> None:
    with pytest.raises(StateError, match="positive"):
        VersionedKeyValueStore(MemoryStore("v"), StringSerde(), LongSerde(), 0)


# --- the reference model -----------------------------------------------------------------

KEYS = ["a", "b", "ab"]
Op = tuple[str, int | None, int]  # key, value (None: tombstone), timestamp


class Model:
    """Every accepted put, kept for ever; answers as the store must within its history."""

    def __init__(self, retention: int) -> None:
        self.retention = retention
        self.stream_time = -1
        self.puts: dict[str, dict[int, int | None]] = {k: {} for k in KEYS}

    def put(self, key: str, value: int | None, ts: int) -> PutOutcome:
        if ts < self.stream_time - self.retention:
            return PutOutcome.EXPIRED
        later = any(t > ts for t in self.puts[key])
        self.puts[key][ts] = value
        self.stream_time = max(self.stream_time, ts)
        return PutOutcome.HISTORY if later else PutOutcome.LATEST

    def copy(self) -> Model:
        twin = Model(self.retention)
        twin.stream_time = self.stream_time
        twin.puts = {key: dict(versions) for key, versions in self.puts.items()}
        return twin

    def get(self, key: str, as_of: int) -> int | None:
        times = [t for t in self.puts[key] if t <= as_of]
        return self.puts[key][max(times)] if times else None


ops = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.one_of(st.none(), st.integers(0, 9)),
        st.integers(0, 300),
    ),
    max_size=60,
)


@pytest.mark.parametrize("backend", ["cache-memory", "cache-rocksdb"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=ops,
    retention=st.integers(1, 120),
    commit_every=st.integers(1, 7),
    aborts=st.sets(st.integers(0, 59), max_size=5),
)
def test_the_store_answers_like_the_model(
    backend: str, ops: list[Op], retention: int, commit_every: int, aborts: set[int]
) -> None:
    """Commits now and then; at the ``aborts`` indexes the cache is discarded instead (an
    aborted transaction) and the model goes back to its state at the last commit."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = BACKENDS[backend](Path(tmp))
        assert isinstance(cache, CachingStore)
        store = VersionedKeyValueStore(cache, StringSerde(), LongSerde(), retention)
        model, committed = Model(retention), Model(retention)
        try:
            for index, (key, value, ts) in enumerate(ops):
                assert store.put(key, value, ts) is model.put(key, value, ts)
                if index in aborts:
                    cache.discard()
                    model = committed.copy()
                elif index % commit_every == 0:
                    cache.commit()
                    committed = model.copy()
                _check(store, model)
        finally:
            cache.close()


def _check(store: VersionedKeyValueStore[str, int], model: Model) -> None:
    assert store.stream_time == model.stream_time
    start = model.stream_time - model.retention
    for key in KEYS:
        for as_of in range(max(start, 0), model.stream_time + 2):
            assert store.get(key, as_of=as_of) == model.get(key, as_of), (key, as_of)
        assert store.get(key) == model.get(key, 10**9)
        # Bounded: at most one version older than the last purge, never a tombstone.
        old = [v for v in store.history(key) if v.valid_from <= start - store.purge_step]
        assert len(old) <= 1
        assert all(v.value is not None for v in old)
