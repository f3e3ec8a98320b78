"""State stores: ordered bytes stores, a commit-interval write cache, typed views, checkpoints.

A task's store is a stack of layers (see :mod:`streamer.state.base`)::

    cache = CachingStore(open_store("rocksdb", "counts", state_dir / "counts"))
    counts = KeyValueStore(cache, StringSerde(), LongSerde())

The runtime drives the cache's commit protocol (:mod:`streamer.state.cache`) and records
changelog offsets with :class:`Checkpoint` (:mod:`streamer.state.checkpoint`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from streamer.errors import StateError
from streamer.state.base import BytesStore, prefix_upper_bound
from streamer.state.cache import CachingStore
from streamer.state.checkpoint import Checkpoint
from streamer.state.memory import MemoryStore
from streamer.state.rocksdb import RocksDBStore, destroy
from streamer.state.typed import KeyValueStore
from streamer.state.versioned import PutOutcome, Version, VersionedKeyValueStore
from streamer.state.windowed import SessionStore, WindowStore

Backend = Literal["memory", "rocksdb"]


def open_store(backend: Backend, name: str, path: Path | None = None) -> BytesStore:
    """Open the bytes store ``name`` on ``backend``.

    ``path`` is the store's own directory for ``"rocksdb"`` (required; created when missing)
    and is ignored for ``"memory"``.
    """
    kind: str = backend  # checked at run time too: callers may pass unchecked config text
    if kind == "memory":
        return MemoryStore(name)
    if kind == "rocksdb":
        if path is None:
            msg = f"state store {name!r}: the rocksdb backend needs a directory path"
            raise StateError(msg)
        return RocksDBStore(path, name)
    msg = f"state store {name!r}: unknown backend {backend!r}; use 'memory' or 'rocksdb'"
    raise StateError(msg)


__all__ = [
    "Backend",
    "BytesStore",
    "CachingStore",
    "Checkpoint",
    "KeyValueStore",
    "MemoryStore",
    "PutOutcome",
    "RocksDBStore",
    "SessionStore",
    "Version",
    "VersionedKeyValueStore",
    "WindowStore",
    "destroy",
    "open_store",
    "prefix_upper_bound",
]
