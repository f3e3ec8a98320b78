"""A RocksDB-backed :class:`~streamer.state.base.BytesStore` (through ``rocksdict``).

This is the only module that imports ``rocksdict``. The database is opened in raw mode, so
keys and values are stored as the exact bytes given, and RocksDB's default bytewise
comparator gives the lexicographic order the store contract requires.

Invariants:

* One :class:`RocksDBStore` owns its directory: RocksDB's ``LOCK`` file is held from open to
  :meth:`RocksDBStore.close`. A second open of the same directory, from this or another
  process, fails at once with :class:`~streamer.errors.StateError` naming the directory.
* Iterators are RocksDB iterators: each sees a consistent snapshot taken when
  :meth:`RocksDBStore.range` (or ``prefix``) is called, and writes made afterwards are not
  visible to it.
* Every ``rocksdict`` failure is re-raised as :class:`~streamer.errors.StateError`.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from rocksdict import (
    DbClosedError,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

from streamer.errors import StateError
from streamer.state.base import closed_error, prefix_upper_bound, range_is_empty

# A store's memtables fill with every write (all versions of a key) until flushed, and a
# worker holds one store per partition and stateful step. So memtables are 16 MiB, at most
# 3 per store (Kafka Streams' RocksDB defaults; RocksDB's own are 64 MiB), and all stores of
# the process share one write buffer manager: past MEMTABLE_LIMIT_BYTES in total, RocksDB
# flushes memtables to disk, so their memory does not grow with the number of stores.
WRITE_BUFFER_BYTES = 16 << 20
MAX_WRITE_BUFFERS = 3
MEMTABLE_LIMIT_BYTES = 64 << 20
_write_buffers: WriteBufferManager | None = None

# The store's own metadata (its changelog position) lives in a column family of its own,
# so no key of the data can collide with it, and is written in the data's write batches.
_META_FAMILY = "streamer-meta"
_POSITION_KEY = b"changelog-position"
_POSITION = struct.Struct(">q")
_UNLOGGED = WriteOptions()
# rocksdict's stub declares a method; at run time this is a settable attribute.
_UNLOGGED.disable_wal = True  # type: ignore[method-assign,assignment]


def _options() -> Any:
    global _write_buffers
    if _write_buffers is None:
        _write_buffers = WriteBufferManager(MEMTABLE_LIMIT_BYTES, False)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(MAX_WRITE_BUFFERS)
    options.set_write_buffer_manager(_write_buffers)
    # Unlogged writes (restore) survive a crash only through flushed memtables: flushing
    # every column family together keeps the position from being flushed without its data.
    options.set_atomic_flush(True)
    return options


def _read_options(end: bytes | None, reverse: bool) -> Any:
    """Read options that stop a forward scan at ``end`` inside RocksDB.

    Without an upper bound, an iterator that has passed the last live key of the range walks
    every deleted key (tombstone) after it before it finds the next live key, so a scan just
    below recently deleted rows (closed windows) costs more the more rows were deleted.
    Reverse scans stop themselves: rocksdict 0.3's lower bound does not bound from below.
    """
    options = ReadOptions()
    if end is not None and not reverse:
        options.set_iterate_upper_bound(end)
    return options


class RocksDBStore:
    """A persistent ordered bytes map in the RocksDB directory ``path``.

    The directory (and its parents) is created when missing. Data written with :meth:`put`,
    :meth:`delete` or :meth:`write_batch` goes to RocksDB's write-ahead log, so it survives
    a process crash; :meth:`flush` also writes the memtables out to SST files.
    """

    def __init__(self, path: Path, name: str) -> None:
        self._path = Path(path)
        self._name = name
        try:
            self._path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"state store {name!r}: cannot create directory {self._path}: {exc}"
            raise StateError(msg) from exc
        try:
            self._db: Any = Rdict(str(self._path), _options())
        except Exception as exc:
            text = str(exc)
            if "lock" in text.lower():
                msg = (
                    f"state store {name!r}: the RocksDB directory {self._path} is locked by "
                    f"another open store (in this or another process); close that one first "
                    f"or give each instance its own state directory ({text})"
                )
            else:
                msg = f"state store {name!r}: cannot open RocksDB at {self._path}: {text}"
            raise StateError(msg) from exc
        self._open = True
        self._meta_handle: Any = None
        try:
            self._families: list[str] = list(Rdict.list_cf(str(self._path), _options()))
            self._position = self._read_position()
        except Exception as exc:
            self.close()
            msg = f"state store {name!r}: cannot read its metadata at {self._path}: {exc}"
            raise StateError(msg) from exc

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> Path:
        return self._path

    @property
    def is_open(self) -> bool:
        return self._open

    def _check_open(self) -> None:
        if not self._open:
            raise closed_error(self._name)

    def _fail(self, operation: str, exc: Exception) -> NoReturn:
        if isinstance(exc, DbClosedError):
            raise closed_error(self._name) from exc
        msg = f"state store {self._name!r} ({self._path}): {operation} failed: {exc}"
        raise StateError(msg) from exc

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        try:
            value: bytes | None = self._db.get(key)
        except Exception as exc:
            self._fail("get", exc)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self._check_open()
        try:
            self._db.put(key, value)
        except Exception as exc:
            self._fail("put", exc)

    def delete(self, key: bytes) -> None:
        self._check_open()
        try:
            self._db.delete(key)
        except Exception as exc:
            self._fail("delete", exc)

    def range(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        if range_is_empty(start, end):
            return iter(())
        try:
            it = self._db.iter(_read_options(end, reverse))
            if reverse:
                self._seek_last_below(it, end)
            elif start is None:
                it.seek_to_first()
            else:
                it.seek(start)
        except Exception as exc:
            self._fail("range", exc)
        if reverse:
            return self._backward(it, start)
        return self._forward(it, end)

    @staticmethod
    def _seek_last_below(it: Any, end: bytes | None) -> None:
        """Position ``it`` on the greatest key ``< end`` (the last key when ``end`` is None)."""
        if end is None:
            it.seek_to_last()
            return
        it.seek_for_prev(end)  # greatest key <= end
        if it.valid() and it.key() >= end:
            it.prev()

    def _forward(self, it: Any, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        try:
            while it.valid():
                key: bytes = it.key()
                if end is not None and key >= end:
                    break
                yield key, it.value()
                it.next()
            it.status()
        except Exception as exc:
            self._fail("range scan", exc)

    def _backward(self, it: Any, start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        try:
            while it.valid():
                key: bytes = it.key()
                if start is not None and key < start:
                    break
                yield key, it.value()
                it.prev()
            it.status()
        except Exception as exc:
            self._fail("reverse range scan", exc)

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.range(prefix, prefix_upper_bound(prefix))

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        self._check_open()
        # Materialise first: if the caller's iterable raises, that error propagates as is and
        # nothing is written.
        rows = entries if isinstance(entries, list) else list(entries)
        try:
            batch = WriteBatch(raw_mode=True)
            for key, value in rows:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            if position is not None:
                batch.put(_POSITION_KEY, _POSITION.pack(position), self._meta())
            if logged:
                self._db.write(batch)
            else:
                self._db.write(batch, _UNLOGGED)
        except Exception as exc:
            self._fail("write_batch (nothing was written)", exc)
        if position is not None:
            self._position = position

    def changelog_position(self) -> int | None:
        self._check_open()
        return self._position

    def _meta(self) -> Any:
        """The handle of the column family that holds the store's own metadata."""
        if self._meta_handle is None:
            if _META_FAMILY not in self._families:
                self._db.create_column_family(_META_FAMILY, _options())
                self._families.append(_META_FAMILY)
            self._meta_handle = self._db.get_column_family_handle(_META_FAMILY)
        return self._meta_handle

    def _read_position(self) -> int | None:
        if _META_FAMILY not in self._families:
            return None
        family = self._db.get_column_family(_META_FAMILY)
        try:
            raw = family.get(_POSITION_KEY)
        finally:
            del family  # a live column-family view would keep the database open
        return None if raw is None else int(_POSITION.unpack(raw)[0])

    def approximate_size(self) -> int:
        self._check_open()
        total = 0
        try:
            for prop in ("rocksdb.estimate-live-data-size", "rocksdb.cur-size-all-mem-tables"):
                value = self._db.property_int_value(prop)
                total += int(value or 0)
        except Exception as exc:
            self._fail("approximate_size", exc)
        return total

    def flush(self) -> None:
        """Write the memtables to SST files: the data first, then the position, so that a
        crash in between leaves the position behind the data, never ahead of it."""
        self._check_open()
        try:
            self._db.flush(True)
            if _META_FAMILY in self._families:
                self._db.get_column_family(_META_FAMILY).flush(True)
        except Exception as exc:
            self._fail("flush", exc)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._meta_handle = None
        try:
            self._db.close()
        except Exception as exc:
            msg = f"state store {self._name!r}: closing RocksDB at {self._path} failed: {exc}"
            raise StateError(msg) from exc

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"RocksDBStore({self._name!r}, {str(self._path)!r}, {state})"


def destroy(path: Path) -> None:
    """Delete the RocksDB database in ``path`` and the directory itself.

    A missing directory is not an error. The database must not be open anywhere: destroying
    a directory whose lock is held raises :class:`~streamer.errors.StateError`.
    """
    path = Path(path)
    if not path.exists():
        return
    try:
        Rdict.destroy(str(path), Options(raw_mode=True))
    except Exception as exc:
        msg = f"cannot destroy the RocksDB store at {path}: {exc}"
        raise StateError(msg) from exc
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["RocksDBStore", "destroy"]
