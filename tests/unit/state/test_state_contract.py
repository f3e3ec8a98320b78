"""The BytesStore contract, run against every backend and every cache configuration."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.errors import StateError
from streamer.state import (
    BytesStore,
    CachingStore,
    MemoryStore,
    RocksDBStore,
    prefix_upper_bound,
)


class CommittingCache(CachingStore):
    """A cache that commits after every ``every``-th write, so reads see both layers."""

    def __init__(self, inner: BytesStore, every: int) -> None:
        super().__init__(inner)
        self._every = every
        self._writes = 0

    def _tick(self) -> None:
        self._writes += 1
        if self._writes % self._every == 0:
            self.commit()

    def put(self, key: bytes, value: bytes) -> None:
        super().put(key, value)
        self._tick()

    def delete(self, key: bytes) -> None:
        super().delete(key)
        self._tick()

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        super().write_batch(entries, position=position, logged=logged)
        self._tick()


Factory = Callable[[Path], BytesStore]

FACTORIES: dict[str, Factory] = {
    "memory": lambda _path: MemoryStore("s"),
    "rocksdb": lambda path: RocksDBStore(path / "db", "s"),
    "cache-memory-uncommitted": lambda _path: CachingStore(MemoryStore("s")),
    "cache-memory-committed": lambda _path: CommittingCache(MemoryStore("s"), every=1),
    "cache-memory-mixed": lambda _path: CommittingCache(MemoryStore("s"), every=2),
    "cache-rocksdb-uncommitted": lambda path: CachingStore(RocksDBStore(path / "db", "s")),
    "cache-rocksdb-committed": lambda path: CommittingCache(
        RocksDBStore(path / "db", "s"), every=1
    ),
    "cache-rocksdb-mixed": lambda path: CommittingCache(RocksDBStore(path / "db", "s"), every=3),
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = FACTORIES[request.param]
    return factory


@pytest.fixture
def store(make: Factory, tmp_path: Path) -> Iterator[BytesStore]:
    s = make(tmp_path)
    yield s
    s.close()


# Binary keys around the interesting edges: empty, 0x00, shared prefixes, 0xff runs.
KEYS = [
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x00\xff",
    b"a",
    b"a\x00",
    b"a\xff",
    b"ab",
    b"b",
    b"\x7f",
    b"\x80",
    b"\xfe\xff",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
    b"\xff\xff\xff",
]
BOUNDS: list[bytes | None] = [None, *KEYS, b"\x00\x01", b"aa", b"c", b"\xff\xfe", b"\xff" * 4]


def fill(store: BytesStore, keys: Iterable[bytes] = KEYS) -> dict[bytes, bytes]:
    model = {}
    for key in keys:
        value = b"v" + key
        store.put(key, value)
        model[key] = value
    return model


def model_range(
    model: dict[bytes, bytes], start: bytes | None, end: bytes | None, reverse: bool = False
) -> list[tuple[bytes, bytes]]:
    rows = sorted(
        (k, v)
        for k, v in model.items()
        if (start is None or k >= start) and (end is None or k < end)
    )
    return rows[::-1] if reverse else rows


def test_implements_protocol(store: BytesStore) -> None:
    assert isinstance(store, BytesStore)
    assert store.name == "s"
    assert store.is_open


def test_get_put_delete(store: BytesStore) -> None:
    assert store.get(b"k") is None
    store.put(b"k", b"1")
    assert store.get(b"k") == b"1"
    store.put(b"k", b"2")
    assert store.get(b"k") == b"2"
    store.delete(b"k")
    assert store.get(b"k") is None
    store.delete(b"k")  # deleting a missing key is fine
    store.delete(b"never")
    assert list(store.range(None, None)) == []


def test_empty_value_is_not_absent(store: BytesStore) -> None:
    store.put(b"k", b"")
    assert store.get(b"k") == b""
    assert list(store.prefix(b"k")) == [(b"k", b"")]


def test_binary_keys_round_trip(store: BytesStore) -> None:
    model = fill(store)
    for key, value in model.items():
        assert store.get(key) == value
    assert list(store.range(None, None)) == model_range(model, None, None)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_range_matches_model_for_every_bound_pair(store: BytesStore, reverse: bool) -> None:
    model = fill(store)
    for start in BOUNDS:
        for end in BOUNDS:
            got = list(store.range(start, end, reverse=reverse))
            assert got == model_range(model, start, end, reverse), (start, end)


def test_range_is_half_open(store: BytesStore) -> None:
    fill(store, [b"a", b"b", b"c"])
    assert [k for k, _ in store.range(b"a", b"c")] == [b"a", b"b"]
    assert [k for k, _ in store.range(b"a", b"c", reverse=True)] == [b"b", b"a"]
    assert [k for k, _ in store.range(b"b", b"b")] == []
    assert [k for k, _ in store.range(b"c", b"a")] == []
    assert [k for k, _ in store.range(b"c", b"a", reverse=True)] == []
    assert [k for k, _ in store.range(None, b"b")] == [b"a"]
    assert [k for k, _ in store.range(b"b", None, reverse=True)] == [b"c", b"b"]


def test_range_on_empty_store(store: BytesStore) -> None:
    assert list(store.range(None, None)) == []
    assert list(store.range(None, None, reverse=True)) == []
    assert list(store.prefix(b"")) == []


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\x00", b"a", b"ab", b"abc", b"\x7f", b"\xfe", b"\xff", b"\xff\xff", b"\xff" * 3, b"z"],
)
def test_prefix_matches_model(store: BytesStore, prefix: bytes) -> None:
    model = fill(store)
    expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    assert list(store.prefix(prefix)) == expected


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound(b"") is None
    assert prefix_upper_bound(b"\xff\xff") is None
    assert prefix_upper_bound(b"a") == b"b"
    assert prefix_upper_bound(b"a\xff") == b"b"
    assert prefix_upper_bound(b"a\x00") == b"a\x01"
    assert prefix_upper_bound(b"\xfe\xff\xff") == b"\xff"


def test_write_batch_puts_and_deletes(store: BytesStore) -> None:
    fill(store, [b"a", b"b", b"c"])
    store.write_batch([(b"a", None), (b"d", b"4"), (b"b", b"22"), (b"zz", None)])
    assert list(store.range(None, None)) == [(b"b", b"22"), (b"c", b"vc"), (b"d", b"4")]


def test_write_batch_later_entries_win(store: BytesStore) -> None:
    store.write_batch([(b"k", b"1"), (b"k", None), (b"k", b"3"), (b"j", b"1"), (b"j", None)])
    assert store.get(b"k") == b"3"
    assert store.get(b"j") is None
    store.write_batch([])
    assert list(store.range(None, None)) == [(b"k", b"3")]


def test_write_batch_is_atomic_when_iterable_fails(store: BytesStore) -> None:
    fill(store, [b"a"])

    def entries() -> Iterator[tuple[bytes, bytes | None]]:
        yield b"b", b"2"
        yield b"a", None
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        store.write_batch(entries())
    assert list(store.range(None, None)) == [(b"a", b"va")]


def test_write_batch_rejects_bad_entries_atomically(store: BytesStore) -> None:
    bad: list[tuple[bytes, bytes | None]] = [(b"b", b"2"), ("c", b"3")]  # type: ignore[list-item]
    with pytest.raises(StateError):
        store.write_batch(bad)
    assert store.get(b"b") is None


def test_delete_while_iterating(store: BytesStore) -> None:
    model = fill(store)
    seen = []
    for key, _ in store.range(None, None):
        seen.append(key)
        store.delete(key)
    assert seen == sorted(model)
    assert list(store.range(None, None)) == []


def test_approximate_size(store: BytesStore) -> None:
    assert store.approximate_size() >= 0
    for i in range(200):
        store.put(i.to_bytes(4, "big"), b"x" * 500)
    assert store.approximate_size() > 0


def test_flush_keeps_data(store: BytesStore) -> None:
    model = fill(store)
    store.flush()
    assert list(store.range(None, None)) == model_range(model, None, None)


def test_closed_store_raises(make: Factory, tmp_path: Path) -> None:
    store = make(tmp_path)
    store.put(b"a", b"1")
    store.close()
    assert not store.is_open
    store.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        store.get(b"a")
    with pytest.raises(StateError, match="closed"):
        store.put(b"a", b"1")
    with pytest.raises(StateError, match="closed"):
        store.range(None, None)
    with pytest.raises(StateError, match="closed"):
        store.write_batch([(b"a", None)])


# -- model-based: random operations against a dict -------------------------------------

small_keys = st.binary(max_size=3).map(lambda b: bytes(x & 0x81 for x in b))  # few, edgy bytes
ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), small_keys, st.binary(max_size=2)),
        st.tuples(st.just("delete"), small_keys),
        st.tuples(
            st.just("batch"),
            st.lists(st.tuples(small_keys, st.none() | st.binary(max_size=2)), max_size=4),
        ),
        st.tuples(st.just("range"), st.none() | small_keys, st.none() | small_keys, st.booleans()),
        st.tuples(st.just("prefix"), small_keys),
        st.tuples(st.just("commit")),
        st.tuples(st.just("discard")),
    ),
    max_size=40,
)


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=ops)
def test_cached_store_matches_dict_model(backend: str, script: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inner: BytesStore = (
            MemoryStore("s") if backend == "memory" else RocksDBStore(Path(tmp) / "db", "s")
        )
        cache = CachingStore(inner)
        committed: dict[bytes, bytes] = {}
        current: dict[bytes, bytes] = {}
        try:
            for op in script:
                _apply(op, cache, committed, current)
                assert dict(inner.range(None, None)) == committed
        finally:
            cache.close()


def _apply(
    op: tuple[object, ...],
    cache: CachingStore,
    committed: dict[bytes, bytes],
    current: dict[bytes, bytes],
) -> None:
    name = op[0]
    if name == "put":
        key, value = op[1], op[2]
        assert isinstance(key, bytes)
        assert isinstance(value, bytes)
        cache.put(key, value)
        current[key] = value
    elif name == "delete":
        key = op[1]
        assert isinstance(key, bytes)
        cache.delete(key)
        current.pop(key, None)
    elif name == "batch":
        entries = op[1]
        assert isinstance(entries, list)
        cache.write_batch(entries)
        for key, value in entries:
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
    elif name == "range":
        start, end, reverse = op[1], op[2], op[3]
        assert start is None or isinstance(start, bytes)
        assert end is None or isinstance(end, bytes)
        assert isinstance(reverse, bool)
        got = list(cache.range(start, end, reverse=reverse))
        assert got == model_range(current, start, end, reverse)
    elif name == "prefix":
        prefix = op[1]
        assert isinstance(prefix, bytes)
        assert list(cache.prefix(prefix)) == sorted(
            (k, v) for k, v in current.items() if k.startswith(prefix)
        )
    elif name == "commit":
        cache.commit()
        committed.clear()
        committed.update(current)
    elif name == "discard":
        cache.discard()
        current.clear()
        current.update(committed)
    for key in {k for k in current} | {k for k in committed}:
        assert cache.get(key) == current.get(key)


# --- changelog positions (persistent and memory backends; caches record them on commit) ---


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
def test_a_position_is_recorded_with_its_batch(backend: str, tmp_path: Path) -> None:
    s = FACTORIES[backend](tmp_path)
    assert s.changelog_position() is None
    s.write_batch([(b"", b"user key that is empty")], position=5)
    s.write_batch([(b"k", b"v")])  # no position: the recorded one stays
    assert s.changelog_position() == 5
    assert dict(s.range(None, None)) == {b"": b"user key that is empty", b"k": b"v"}
    s.close()


def test_a_rocksdb_position_survives_reopening_and_never_shows_as_data(tmp_path: Path) -> None:
    s = RocksDBStore(tmp_path / "db", "s")
    s.write_batch([(b"a", b"1")], position=41)
    s.write_batch([(b"b", None)], position=42)
    s.close()
    again = RocksDBStore(tmp_path / "db", "s")
    assert again.changelog_position() == 42
    assert list(again.range(None, None)) == [(b"a", b"1")]
    assert again.approximate_size() >= 0
    again.close()


def test_a_failed_rocksdb_batch_records_no_position(tmp_path: Path) -> None:
    s = RocksDBStore(tmp_path / "db", "s")
    s.write_batch([(b"a", b"1")], position=1)

    def broken() -> Iterator[tuple[bytes, bytes | None]]:
        yield (b"b", b"2")
        raise RuntimeError("producer of entries failed")

    with pytest.raises(RuntimeError):
        s.write_batch(broken(), position=2)
    s.close()
    again = RocksDBStore(tmp_path / "db", "s")
    assert (again.changelog_position(), again.get(b"b")) == (1, None)
    again.close()
