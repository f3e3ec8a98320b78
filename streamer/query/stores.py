"""The worker's open stores, as the query server reads them: committed state only.

The worker gives every task store it opens to :meth:`StoreRegistry.wrap`, which wraps it
in a :class:`GuardedStore` and files it under ``(task id, store name)`` (the store's
directory is ``<app_dir>/<task id>/<store>``). The worker's thread uses the wrapper
as it would the store itself. The query server's threads read through
:meth:`StoreRegistry.reading`.

Invariants:

* Only committed writes are ever read: the bytes store under a task's write cache holds
  only writes whose output and changelog records are committed (see
  :mod:`streamer.state.cache`); uncommitted writes live in the cache, which queries never
  see.
* A read and the store's close exclude each other: a reader holds the store's lock for the
  whole read (a page of a scan is read to its end under it), and :meth:`GuardedStore.close`
  takes the same lock. So a task that closes (revoked, rolled back, stopped) waits for the
  read in progress, and a read that comes later finds the store gone
  (:class:`StoreUnavailable`), never a closed database. The worker's own reads and writes
  take no lock: RocksDB is safe for one writer and concurrent readers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streamer.errors import StreamerError
from streamer.state import BytesStore


class StoreUnavailable(StreamerError):
    """The store of a task is not open on this worker (not owned, or closing)."""


class GuardedStore:
    """A :class:`~streamer.state.base.BytesStore` that lets readers on other threads
    exclude its close; everything else is passed to the store underneath."""

    def __init__(self, inner: BytesStore, on_close: Callable[[GuardedStore], None]) -> None:
        self._inner = inner
        self._on_close = on_close
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    @property
    def inner(self) -> BytesStore:
        return self._inner

    def get(self, key: bytes) -> bytes | None:
        return self._inner.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._inner.put(key, value)

    def delete(self, key: bytes) -> None:
        self._inner.delete(key)

    def range(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._inner.range(start, end, reverse=reverse)

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._inner.prefix(prefix)

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        self._inner.write_batch(entries, position=position, logged=logged)

    def changelog_position(self) -> int | None:
        return self._inner.changelog_position()

    def approximate_size(self) -> int:
        return self._inner.approximate_size()

    def flush(self) -> None:
        self._inner.flush()

    def close(self) -> None:
        """Close the store once no read is in progress; later reads find it gone."""
        with self.lock:
            try:
                self._inner.close()
            finally:
                self._on_close(self)


class StoreRegistry:
    """Every store the worker has open, by task id and store name. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], GuardedStore] = {}

    def wrap(self, path: Path, name: str, store: BytesStore) -> BytesStore:
        """File the task store ``name`` just opened at ``path`` (``<app_dir>/<task>/<name>``)
        and return the guarded store the task is to use instead."""
        key = (Path(path).parent.name, name)
        guarded = GuardedStore(store, lambda s: self._forget(key, s))
        with self._lock:
            self._stores[key] = guarded
        return guarded

    def _forget(self, key: tuple[str, str], store: GuardedStore) -> None:
        with self._lock:
            if self._stores.get(key) is store:
                del self._stores[key]

    def tasks(self) -> set[str]:
        """The ids of the tasks with an open store."""
        with self._lock:
            return {task for task, _name in self._stores}

    @contextmanager
    def reading(self, task: str, name: str) -> Iterator[BytesStore]:
        """The committed bytes store ``name`` of ``task``, held open for the ``with`` block.

        Raises :class:`StoreUnavailable` when it is not open here. Read everything needed
        inside the block: the store may close right after it.
        """
        with self._lock:
            store = self._stores.get((task, name))
        if store is None:
            msg = f"store {name!r} of task {task} is not open on this worker"
            raise StoreUnavailable(msg)
        with store.lock:
            if not store.is_open:
                msg = f"store {name!r} of task {task} is closing"
                raise StoreUnavailable(msg)
            yield store.inner


__all__ = ["GuardedStore", "StoreRegistry", "StoreUnavailable"]
