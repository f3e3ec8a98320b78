"""Opening a task over a state directory another process of the host just let go of.

Workers of one host share a state directory: a task moving between them is opened over the
stores its previous owner wrote, once that owner has committed, checkpointed and closed
them (opening waits for RocksDB's lock meanwhile). These tests drive the
:class:`TaskManager` with a store opener that plays that previous owner: its last commit
lands while the new owner waits for the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.kafka.types import TP
from streamer.runtime.task import Task, TaskId
from streamer.runtime.task_manager import CHECKPOINT_FILE, TaskManager
from streamer.state import BytesStore, Checkpoint, open_store
from streamer.topology.graph import Topology

APP = "app"
CHANGELOG: TP = (f"{APP}-counts-changelog", 0)
IN0: TP = ("in", 0)
KEY, VALUE = b"a", b"\x00\x00\x00\x00\x00\x00\x00\x05"


def _topology() -> Topology:
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(name="counts").to_stream().to("out")
    return builder.build()


class _Ends:
    """The changelog as the new owner sees it: its last stable offset and its log end."""

    def __init__(self) -> None:
        self.stable = 0
        self.log_end = 0

    def stable_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return {tp: self.stable for tp in partitions}

    def log_end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return {tp: self.log_end for tp in partitions}


class _Restorer:
    """Records the restores the manager asks for."""

    def __init__(self, ends: _Ends) -> None:
        self.end_offsets = ends.stable_offsets
        self.added: list[tuple[TP, int | None, int]] = []

    def add(self, task: str, changelog: TP, store: BytesStore, start: int | None, end: int) -> None:
        self.added.append((changelog, start, end))

    def cancel_task(self, task: str) -> None:
        pass


class _Sink:
    def send(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Clock:
    def now_ms(self) -> int:
        return 0


def _previous_owner_commits(path: Path, ends: _Ends, position: int) -> None:
    """The previous owner's last commit and clean close: the changelog grows to
    ``position``, the store holds the key at that position, the checkpoint says so."""
    ends.stable = ends.log_end = position
    store = open_store("rocksdb", "counts", path)
    store.write_batch([(KEY, VALUE)], position=position)
    store.close()
    Checkpoint.write(path.parent / CHECKPOINT_FILE, {"counts": position})


def _manager(
    tmp_path: Path, ends: _Ends, restorer: _Restorer, open_store_at: Callable[[Path, str], Any]
) -> TaskManager:
    topology = _topology()

    def new_task(task_id: TaskId, opener: Callable[[str], BytesStore]) -> Task:
        sub = topology.subtopologies[task_id.subtopology]
        return Task(
            topology, sub, task_id.partition, app_id=APP, open_store=opener, sink=_Sink(),
            clock=_Clock(),
        )  # fmt: skip

    return TaskManager(
        topology,
        prefix=APP,
        app_dir=tmp_path / APP,
        exactly_once=True,
        restorer=restorer,  # type: ignore[arg-type]
        new_task=new_task,
        open_store=open_store_at,
        log_end_offsets=ends.log_end_offsets,
    )


def _task(manager: TaskManager) -> Task:
    (task,) = manager.running_tasks()
    return task


def test_the_ends_are_read_after_the_previous_owner_let_go_of_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ends = _Ends()
    restorer = _Restorer(ends)

    def open_after_previous_owner(path: Path, name: str) -> BytesStore:
        # Waiting for the lock: meanwhile the previous owner commits 3 records and closes.
        _previous_owner_commits(path, ends, position=3)
        return open_store("rocksdb", name, path)

    manager = _manager(tmp_path, ends, restorer, open_after_previous_owner)
    manager.assign([IN0])
    assert "ahead of its changelog" not in caplog.text
    assert restorer.added == [], "the store holds the changelog already"
    assert _task(manager).caches["counts"].get(KEY) == VALUE, "the state was kept"
    manager.close_all(clean=False)


def test_a_store_past_the_last_stable_offset_but_not_the_log_end_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ends = _Ends()
    restorer = _Restorer(ends)
    _previous_owner_commits(tmp_path / APP / "0_0" / "counts", ends, position=3)
    ends.stable = 2  # the last commit's markers are still being written
    manager = _manager(
        tmp_path, ends, restorer, lambda path, name: open_store("rocksdb", name, path)
    )
    manager.assign([IN0])
    assert "ahead of its changelog" not in caplog.text
    assert restorer.added == []
    assert _task(manager).caches["counts"].get(KEY) == VALUE
    manager.close_all(clean=False)


def test_a_store_past_the_log_end_is_wiped_and_restored_in_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ends = _Ends()
    restorer = _Restorer(ends)
    _previous_owner_commits(tmp_path / APP / "0_0" / "counts", ends, position=3)
    ends.stable = ends.log_end = 1  # the changelog was recreated since
    manager = _manager(
        tmp_path, ends, restorer, lambda path, name: open_store("rocksdb", name, path)
    )
    manager.assign([IN0])
    assert "is ahead of its changelog" in caplog.text
    assert restorer.added == [(CHANGELOG, None, 1)]
    manager.close_all(clean=False)
