"""RocksDB-specific behaviour: persistence across reopen, directory locking, destroy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamer.errors import StateError
from streamer.state import RocksDBStore, destroy, open_store

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from streamer.errors import StateError
    from streamer.state import RocksDBStore

    try:
        store = RocksDBStore(Path(sys.argv[1]), "child")
    except StateError as exc:
        print("StateError:", exc)
    else:
        print("opened", store.get(b"k"))
        store.close()
    """
)


def _open_in_child(path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_reopen_after_close_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    store.put(b"a", b"1")
    store.write_batch([(b"b", b"2"), (b"c", b"3"), (b"a", None)])
    store.put(b"\x00\xff", b"bin")
    store.close()

    again = RocksDBStore(path, "s")
    try:
        assert list(again.range(None, None)) == [(b"\x00\xff", b"bin"), (b"b", b"2"), (b"c", b"3")]
        again.flush()
    finally:
        again.close()

    third = RocksDBStore(path, "s")
    try:
        assert third.get(b"b") == b"2"
        assert third.get(b"a") is None
    finally:
        third.close()


def test_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c"
    store = RocksDBStore(path, "s")
    try:
        assert store.path == path
        assert path.is_dir()
    finally:
        store.close()


def test_second_open_in_another_process_raises_state_error(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    store.put(b"k", b"held")
    try:
        out = _open_in_child(path)
    finally:
        store.close()
    assert out.startswith("StateError:"), out
    assert str(path) in out
    assert "locked" in out


def test_other_process_can_open_after_close(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    store.put(b"k", b"v")
    store.close()
    assert _open_in_child(path) == "opened b'v'"


def test_second_open_in_same_process_raises_state_error(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    try:
        with pytest.raises(StateError, match="locked") as info:
            RocksDBStore(path, "other")
        assert str(path) in str(info.value)
    finally:
        store.close()


def test_open_on_a_file_raises_state_error(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("not a directory")
    with pytest.raises(StateError, match=str(path)):
        RocksDBStore(path, "s")


def test_destroy_removes_directory(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    store.put(b"k", b"v")
    store.close()
    destroy(path)
    assert not path.exists()
    destroy(path)  # a missing directory is fine
    fresh = RocksDBStore(path, "s")
    try:
        assert fresh.get(b"k") is None
    finally:
        fresh.close()


def test_destroy_of_open_store_raises(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    try:
        with pytest.raises(StateError, match=str(path)):
            destroy(path)
    finally:
        store.close()


def test_open_store_factory(tmp_path: Path) -> None:
    memory = open_store("memory", "m")
    assert memory.name == "m"
    memory.close()
    rocks = open_store("rocksdb", "r", tmp_path / "r")
    assert isinstance(rocks, RocksDBStore)
    rocks.close()
    with pytest.raises(StateError, match="needs a directory"):
        open_store("rocksdb", "r")
    with pytest.raises(StateError, match="unknown backend"):
        open_store("cassandra", "x")  # type: ignore[arg-type]


def test_iterator_is_a_snapshot(tmp_path: Path) -> None:
    store = RocksDBStore(tmp_path / "db", "s")
    try:
        store.write_batch([(b"a", b"1"), (b"b", b"2")])
        rows = store.range(None, None)
        store.put(b"c", b"3")
        store.put(b"b", b"22")
        assert list(rows) == [(b"a", b"1"), (b"b", b"2")]
    finally:
        store.close()


_UNLOGGED_WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from streamer.state import RocksDBStore

    store = RocksDBStore(Path(sys.argv[1]), "child")
    value = b"v" * 1000
    flush_at = int(sys.argv[2])
    for batch in range(int(sys.argv[3])):
        entries = [(b"%08d" % (batch * 1000 + n), value) for n in range(1000)]
        store.write_batch(entries, position=(batch + 1) * 1000, logged=False)
        if batch + 1 == flush_at:
            store.flush()
    os._exit(0)  # a crash: no close, nothing flushed on the way out
    """
)


def test_unlogged_writes_never_leave_the_position_ahead_of_the_data(tmp_path: Path) -> None:
    """Restore writes skip the WAL. The child writes about 60 MiB (several memtables, so
    RocksDB flushes some on its own), flushes once after batch 20 and dies without closing.
    Whatever survives, the position must not claim data that is gone, and the explicit
    flush is kept."""
    path = tmp_path / "db"
    subprocess.run(
        [sys.executable, "-c", _UNLOGGED_WRITER, str(path), "20", "60"],
        check=True,
        timeout=120,
    )
    store = RocksDBStore(path, "s")
    try:
        position = store.changelog_position()
        assert position is not None
        assert position >= 20_000, "the flush made batch 20 durable"
        keys = {key for key, _ in store.range(None, None)}
        missing = [n for n in range(position) if b"%08d" % n not in keys]
        assert missing == [], f"position {position}, but {len(missing)} keys before it are gone"
    finally:
        store.close()


def test_unlogged_writes_are_read_back_and_survive_a_clean_close(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = RocksDBStore(path, "s")
    store.write_batch([(b"a", b"1"), (b"b", b"2")], position=2, logged=False)
    assert store.get(b"a") == b"1"
    store.close()
    again = RocksDBStore(path, "s")
    try:
        assert (again.get(b"b"), again.changelog_position()) == (b"2", 2)
    finally:
        again.close()
