"""Property tests: window and session stores against plain-dict models under random ops."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.serde import BytesSerde, LongSerde
from streamer.state import (
    CachingStore,
    MemoryStore,
    RocksDBStore,
    SessionStore,
    WindowStore,
    layout,
)

# Keys that are prefixes of each other, empty, and 0x00/0xff-laden.
keys = st.sampled_from([b"", b"a", b"ab", b"a\x00", b"b", b"\xff", b"\xff\xff"])
times = st.one_of(
    st.integers(min_value=-6, max_value=6),
    st.sampled_from([layout.MIN_TIME, layout.MAX_TIME, -(2**32), 2**32]),
)
values = st.integers(min_value=-(2**63), max_value=2**63 - 1)

BACKENDS = ["memory", "cache-memory", "cache-rocksdb"]
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def backend(kind: str) -> Iterator[CachingStore | MemoryStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store: CachingStore | MemoryStore
        if kind == "memory":
            store = MemoryStore("m")
        elif kind == "cache-memory":
            store = CachingStore(MemoryStore("m"))
        else:
            store = CachingStore(RocksDBStore(Path(tmp) / "db", "m"))
        try:
            yield store
        finally:
            store.close()


def _transaction(store: CachingStore | MemoryStore, op: str, snapshot: dict, model: dict) -> None:  # type: ignore[type-arg]
    """Apply a commit/discard op to the store and the models (no-op for a bare store)."""
    if not isinstance(store, CachingStore):
        return
    if op == "commit":
        store.commit()
        snapshot.clear()
        snapshot.update(model)
    else:
        store.discard()
        model.clear()
        model.update(snapshot)


window_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, times, values),
        st.tuples(st.just("delete"), keys, times),
        st.tuples(st.just("fetch"), keys, times),
        st.tuples(st.just("fetch_range"), keys, times, times),
        st.tuples(st.just("before"), times),
        st.tuples(st.sampled_from(["commit", "discard"])),
    ),
    max_size=50,
)


@pytest.mark.parametrize("kind", BACKENDS)
@SETTINGS
@given(script=window_ops)
def test_window_store_matches_model(kind: str, script: list[tuple]) -> None:  # type: ignore[type-arg]
    with backend(kind) as store:
        ws: WindowStore[bytes, int] = WindowStore(store, BytesSerde(), LongSerde())
        model: dict[tuple[bytes, int], int] = {}
        snapshot: dict[tuple[bytes, int], int] = {}
        for op in script:
            name = op[0]
            if name == "put":
                ws.put(op[1], op[2], op[3])
                model[op[1], op[2]] = op[3]
            elif name == "delete":
                ws.delete(op[1], op[2])
                model.pop((op[1], op[2]), None)
            elif name == "fetch":
                assert ws.fetch(op[1], op[2]) == model.get((op[1], op[2]))
            elif name == "fetch_range":
                key, lo, hi = op[1], op[2], op[3]
                expected = sorted(
                    (s, v) for (k, s), v in model.items() if k == key and lo <= s <= hi
                )
                assert list(ws.fetch_range(key, lo, hi)) == expected
            elif name == "before":
                got = list(ws.windows_starting_before(op[1]))
                assert sorted(got, key=lambda r: (r[1], len(r[0]), r[0])) == got
                assert sorted(got) == sorted((k, s, v) for (k, s), v in model.items() if s < op[1])
            else:
                _transaction(store, name, snapshot, model)
        assert sorted(ws.all()) == sorted((k, s, v) for (k, s), v in model.items())
        for key in {k for k, _ in model}:
            rows = sorted((s, v) for (k, s), v in model.items() if k == key)
            assert list(ws.fetch_range(key, rows[0][0], rows[-1][0])) == rows
        assert list(ws.all()) == sorted(
            ((k, s, v) for (k, s), v in model.items()), key=lambda r: (len(r[0]), r[0], r[1])
        )


session_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, times, times, values),
        st.tuples(st.just("remove"), keys, times, times),
        st.tuples(st.just("fetch"), keys, times, times),
        st.tuples(st.just("find"), keys, times, times),
        st.tuples(st.just("before"), times),
        st.tuples(st.sampled_from(["commit", "discard"])),
    ),
    max_size=50,
)


@pytest.mark.parametrize("kind", BACKENDS)
@SETTINGS
@given(script=session_ops)
def test_session_store_matches_model(kind: str, script: list[tuple]) -> None:  # type: ignore[type-arg]
    with backend(kind) as store:
        ss: SessionStore[bytes, int] = SessionStore(store, BytesSerde(), LongSerde())
        model: dict[tuple[bytes, int, int], int] = {}
        snapshot: dict[tuple[bytes, int, int], int] = {}
        for op in script:
            name = op[0]
            if name in ("put", "remove", "fetch"):
                key, start, end = op[1], min(op[2], op[3]), max(op[2], op[3])
                if name == "put":
                    ss.put(key, start, end, op[4])
                    model[key, start, end] = op[4]
                elif name == "remove":
                    ss.remove(key, start, end)
                    model.pop((key, start, end), None)
                else:
                    assert ss.fetch(key, start, end) == model.get((key, start, end))
            elif name == "find":
                key, earliest_end, latest_start = op[1], op[2], op[3]
                expected = sorted(
                    ((s, e, v) for (k, s, e), v in model.items() if k == key),
                    key=lambda r: (r[1], r[0]),
                )
                expected = [r for r in expected if r[1] >= earliest_end and r[0] <= latest_start]
                assert list(ss.find_sessions(key, earliest_end, latest_start)) == expected
            elif name == "before":
                got = list(ss.sessions_ending_before(op[1]))
                assert sorted(got, key=lambda r: (r[2], len(r[0]), r[0], r[1])) == got
                assert sorted(got) == sorted(
                    (k, s, e, v) for (k, s, e), v in model.items() if e < op[1]
                )
            else:
                _transaction(store, name, snapshot, model)
        assert sorted(ss.all()) == sorted((k, s, e, v) for (k, s, e), v in model.items())
        for key in {k for k, _, _ in model}:
            rows = sorted(
                ((s, e, v) for (k, s, e), v in model.items() if k == key),
                key=lambda r: (r[1], r[0]),
            )
            earliest_end = min(e for _, e, _ in rows)
            latest_start = max(s for s, _, _ in rows)
            assert list(ss.find_sessions(key, earliest_end, latest_start)) == rows
