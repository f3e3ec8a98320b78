"""A worker's task slots and the small pieces around them.

A :class:`TaskSlot` is one task on one worker with its bookkeeping: input partitions, restore
state, checkpointed changelog offsets and the stream time last committed. The committed
stream time travels as the metadata of the committed input offsets
(:func:`encode_offset_metadata`), so a task that starts elsewhere resumes from it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.errors import StateError
from streamer.kafka.types import TP
from streamer.runtime.task import Task, TaskId
from streamer.state import BytesStore, open_store

log = logging.getLogger(__name__)


class WallClock:
    """Milliseconds since the epoch, from the system clock."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)


@dataclass
class TaskSlot:
    """A task and the bookkeeping around it."""

    id: TaskId
    task: Task
    directory: Path
    inputs: set[TP] = field(default_factory=set)
    restoring: bool = False
    last_checkpoint: float = 0.0
    positions_behind: bool = False
    """True while its stores hold writes applied after their last recorded position."""
    committed_stream_time: int = -1
    changelog_offsets: dict[str, int] = field(default_factory=dict)
    """Per store: the next changelog offset its local state does not yet reflect."""


_METADATA_PREFIX = "streamer:st="


def encode_offset_metadata(stream_time: int) -> str:
    """The metadata committed with a task's input offsets: its stream time."""
    return f"{_METADATA_PREFIX}{stream_time}"


def decode_offset_metadata(metadata: str) -> int:
    """Stream time from committed offset metadata; -1 for anything else (e.g. other tools)."""
    if metadata.startswith(_METADATA_PREFIX):
        with contextlib.suppress(ValueError):
            return int(metadata[len(_METADATA_PREFIX) :])
    return -1


def describe_partitions(partitions: list[TP], limit: int = 20) -> str:
    names = [f"{t}[{p}]" for t, p in sorted(partitions)]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def open_locked(path: Path, name: str, *, wait: float = 30.0) -> Any:
    """Open a RocksDB store, waiting while another process still holds its lock.

    During a rebalance the previous owner may still be closing the store. Waiting is bounded:
    after ``wait`` seconds the error says which directory is held.
    """
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return open_store("rocksdb", name, path)
        except StateError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def restore_starts(
    task_id: TaskId,
    stores: Mapping[str, BytesStore],
    checkpoint: Mapping[str, int],
    ends: Mapping[str, tuple[TP, int]],
    log_ends: Mapping[str, int],
) -> tuple[dict[str, int], list[str]]:
    """Per changelogged store, the offset to restore from, and the stores to wipe.

    Each store records the changelog position its contents reflect, in the write batches
    that change it; a checkpoint file may record another. Both are lower bounds of what
    the store holds, so the larger one is where its restore starts. A store with neither
    but with contents is suspect (written by an older version): it is wiped.

    ``ends`` are where a restore reads to (the last stable offset), ``log_ends`` the log
    ends, read after them. A position is a log end the changelog had, so only a store
    ahead of its changelog's log end belongs to a changelog that was deleted, recreated or
    truncated: it is wiped too, with a warning. A store ahead of the last stable offset
    only is not: the stable offset lags the log end while a committed transaction's
    markers are being written (or another producer's transaction is open), and such a
    store already holds what a restore would read; its start is then past its end.
    """
    starts: dict[str, int] = {}
    suspect: list[str] = []
    for name, (tp, end) in ends.items():
        store = stores[name]
        known = [p for p in (checkpoint.get(name), store.changelog_position()) if p is not None]
        if not known:
            if next(iter(store.range(None, None)), None) is not None:
                log.info("task %s: store %s has no recorded position; rebuilding it", task_id, name)
                suspect.append(name)
            continue
        start = max(known)
        log_end = max(end, log_ends.get(name, end))
        if start > log_end:
            log.warning(
                "task %s: store %s is ahead of its changelog %s[%d] (position %d, log end "
                "%d): the changelog was deleted, recreated or truncated (e.g. by streamer "
                "replay or reset); wiping the store and restoring it in full",
                task_id,
                name,
                tp[0],
                tp[1],
                start,
                log_end,
            )
            suspect.append(name)
            continue
        starts[name] = start
    return starts, suspect
