"""The restorer's per-task progress: logs with percentage, rate and ETA; figures for metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import pytest

from streamer.errors import StateError
from streamer.runtime.restore import StateRestorer
from streamer.state import MemoryStore
from tests.unit.runtime.scripted import ScriptedKafka, ScriptedRestoreConsumer

CHANGELOG = ("app-counts-changelog", 0)


def test_progress_is_logged_per_task_and_kept_for_metrics_once_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    kafka = ScriptedKafka()
    kafka.create(CHANGELOG[0], 1)
    for n in range(5):
        kafka.append(CHANGELOG[0], 0, f"k{n}".encode(), b"v")
    restorer = StateRestorer(ScriptedRestoreConsumer(kafka), batch=2, write_batch=2, log_every=0.0)
    store = MemoryStore("counts")
    restorer.add("0_0", CHANGELOG, store, None, 5)
    done: list[tuple[str, dict[str, int]]] = []

    restorer.step(0.0, lambda task, positions: done.append((task, positions)))
    progress = restorer.tasks()["0_0"]
    assert (progress.restored, progress.remaining, progress.done) == (2, 3, False)
    assert "task 0_0: restoring: 2 of 5 records (40%)" in caplog.text
    restorer.step(0.0, lambda task, positions: done.append((task, positions)))
    # The second batch's write may still be in flight; the first one has applied.
    assert store.changelog_position() in (2, 4), "each batch records where it got to"

    while not done:
        restorer.step(0.0, lambda task, positions: done.append((task, positions)))
    assert done == [("0_0", {"counts": 5})]
    final = restorer.tasks()["0_0"]
    assert (final.restored, final.remaining, final.done) == (5, 0, True)
    assert "task 0_0: restore done: 5 records in" in caplog.text
    assert len(list(store.range(None, None))) == 5


def test_a_cancelled_restore_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    kafka = ScriptedKafka()
    kafka.create(CHANGELOG[0], 1)
    kafka.append(CHANGELOG[0], 0, b"k", b"v")
    restorer = StateRestorer(ScriptedRestoreConsumer(kafka), batch=10)
    restorer.add("0_0", CHANGELOG, MemoryStore("counts"), None, 1)
    restorer.cancel_task("0_0")
    assert restorer.tasks() == {}
    assert restorer.cancelled == 1


class GatedStore(MemoryStore):
    """Writes wait for ``gate``; every write and flush is recorded in ``calls``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate = threading.Event()
        self.calls: list[str] = []
        self.sizes: list[int] = []
        self.fail = False

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        assert self.gate.wait(30), "the test never opened the gate"
        if self.fail:
            raise StateError("disk full")
        rows = list(entries)
        super().write_batch(rows, position=position, logged=logged)
        self.calls.append(f"write {position} logged={logged}")
        self.sizes.append(len(rows))

    def flush(self) -> None:
        self.calls.append("flush")


def _restorer_of_three(store: MemoryStore) -> StateRestorer:
    kafka = ScriptedKafka()
    kafka.create(CHANGELOG[0], 1)
    for n in range(3):
        kafka.append(CHANGELOG[0], 0, f"k{n}".encode(), b"v")
    restorer = StateRestorer(ScriptedRestoreConsumer(kafka), batch=2, write_batch=2)
    restorer.add("0_0", CHANGELOG, store, None, 3)
    return restorer


def test_a_write_overlaps_the_next_fetch_and_a_task_is_done_once_written_and_flushed() -> None:
    store = GatedStore("counts")
    restorer = _restorer_of_three(store)
    done: list[str] = []

    restorer.step(0.0, lambda task, positions: done.append(f"done {positions}"))
    assert store.calls == [], "step returned while its batch was still being written"
    store.gate.set()
    restorer.step(0.0, lambda task, positions: done.append(f"done {positions}"))
    assert store.calls == ["write 2 logged=False", "write 3 logged=False", "flush"]
    assert done == ["done {'counts': 3}"]
    restorer.close()


def test_a_failed_restore_write_raises_in_the_loop() -> None:
    store = GatedStore("counts")
    store.fail = True
    store.gate.set()
    restorer = _restorer_of_three(store)
    restorer.step(0.0, lambda task, positions: None)  # the first batch's write fails
    with pytest.raises(StateError, match="disk full"):
        restorer.step(0.0, lambda task, positions: None)
    restorer.close()


def test_a_write_batch_holds_the_last_value_of_each_key_read_since_the_last_write() -> None:
    kafka = ScriptedKafka()
    kafka.create(CHANGELOG[0], 1)
    for key, value in [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None)]:
        kafka.append(CHANGELOG[0], 0, key, value)
    store = GatedStore("counts")
    store.gate.set()
    store.put(b"b", b"0")
    restorer = StateRestorer(ScriptedRestoreConsumer(kafka), batch=10)
    restorer.add("0_0", CHANGELOG, store, None, 4)
    done: list[dict[str, int]] = []
    while not done:
        restorer.step(0.0, lambda task, positions: done.append(positions))
    assert store.calls == ["write 4 logged=False", "flush"], "one write for all four"
    assert store.sizes == [2], "one entry per key"
    assert list(store.range(None, None)) == [(b"a", b"2")], "the delete of b is kept"
    assert restorer.tasks()["0_0"].restored == 4
    restorer.close()
