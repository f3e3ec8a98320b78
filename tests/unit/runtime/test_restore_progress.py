"""The restorer's per-task progress: logs with percentage, rate and ETA; figures for metrics."""

from __future__ import annotations

import logging

import pytest

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
    restorer = StateRestorer(ScriptedRestoreConsumer(kafka), batch=2, log_every=0.0)
    store = MemoryStore("counts")
    restorer.add("0_0", CHANGELOG, store, None, 5)
    done: list[tuple[str, dict[str, int]]] = []

    restorer.step(0.0, lambda task, positions: done.append((task, positions)))
    progress = restorer.tasks()["0_0"]
    assert (progress.restored, progress.remaining, progress.done) == (2, 3, False)
    assert "task 0_0: restoring: 2 of 5 records (40%)" in caplog.text
    assert store.changelog_position() == 2, "each batch records where it got to"

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
