"""An idle commit moves committed offsets past transaction markers read since the last
commit, so a caught-up partition of a transactional topic does not show a lag of 1 forever
(streamer/runtime/commit.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streamer.kafka.types import TP
from streamer.runtime import commit as commit_module
from streamer.runtime.commit import CommitProtocol

A: TP = ("in", 0)
B: TP = ("in", 1)


@dataclass
class Producer:
    calls: list[Any] = field(default_factory=list)

    def begin(self) -> None:
        self.calls.append("begin")

    def send(self, *args: Any) -> None:
        self.calls.append("send")

    def commit(self, positions: dict[TP, int], group: Any, metadata: Any) -> None:
        self.calls.append(("commit", dict(positions)))

    def mark(self) -> Any:
        return None

    def flush(self) -> None:
        self.calls.append("flush")

    def check_errors(self) -> None:
        pass


@dataclass
class Consumer:
    position: dict[TP, int] = field(default_factory=dict)
    commits: list[dict[TP, int]] = field(default_factory=list)

    def positions(self, partitions: Any) -> dict[TP, int]:
        return {tp: self.position[tp] for tp in partitions if tp in self.position}

    def commit(self, offsets: dict[TP, int], metadata: Any = None) -> None:
        self.commits.append(dict(offsets))

    def group_metadata(self) -> str:
        return "group"


@dataclass
class Tasks:
    running: dict[TP, Any] = field(default_factory=lambda: {A: object(), B: object()})

    def running_tasks(self) -> list[Any]:
        return []

    def committed(self, running: Any) -> None:
        pass

    def stream_time_of(self, tp: TP) -> int | None:
        return 42


def protocol(
    *, exactly_once: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[CommitProtocol, Producer, Consumer, Tasks]:
    monkeypatch.setattr(commit_module, "MARKER_CHECK_INTERVAL_S", 0.0)
    producer, consumer, tasks = Producer(), Consumer(), Tasks()
    commit = CommitProtocol(
        exactly_once=exactly_once,
        interval_s=0.0,
        producer=producer,  # type: ignore[arg-type]
        consumer=consumer,  # type: ignore[arg-type]
        tasks=tasks,  # type: ignore[arg-type]
    )
    return commit, producer, consumer, tasks


def test_exactly_once_commits_a_position_past_a_marker_in_a_transaction_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit, producer, consumer, _tasks = protocol(exactly_once=True, monkeypatch=monkeypatch)
    commit.note_committed({A: 10, B: 20})
    consumer.position = {A: 11, B: 20}  # a commit marker at offset 10 was read since
    assert commit.commit()
    assert producer.calls == ["begin", ("commit", {A: 11})]
    assert not commit.in_transaction
    producer.calls.clear()
    assert not commit.commit()  # nothing moved since: no empty transaction
    assert producer.calls == []


def test_exactly_once_commits_processed_positions_then_the_marker_read_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit, producer, consumer, _tasks = protocol(exactly_once=True, monkeypatch=monkeypatch)
    commit.note_committed({A: 0})
    commit.sink.send("out", b"k", b"v", timestamp=1)
    commit.processed({A: 9})
    consumer.position = {A: 10}  # the marker after offset 9 has not been fetched yet
    assert commit.commit()
    assert producer.calls == ["begin", "send", ("commit", {A: 10})]
    consumer.position = {A: 11}  # now it has
    producer.calls.clear()
    assert commit.commit()
    assert producer.calls == ["begin", ("commit", {A: 11})]


def test_a_restoring_or_released_partition_is_not_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    commit, producer, consumer, tasks = protocol(exactly_once=True, monkeypatch=monkeypatch)
    commit.note_committed({A: 10, B: 20})
    del tasks.running[A]  # restoring: its records are not processed yet
    commit.forget([B])
    consumer.position = {A: 15, B: 25}
    assert not commit.commit()
    assert producer.calls == []


def test_at_least_once_commits_a_position_past_a_marker_when_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit, _producer, consumer, _tasks = protocol(exactly_once=False, monkeypatch=monkeypatch)
    commit.note_committed({A: 10})
    consumer.position = {A: 11}
    assert commit.commit(wait=False)
    assert consumer.commits == [{A: 11}]
    assert not commit.commit(wait=False)
    assert consumer.commits == [{A: 11}]


def test_the_check_runs_at_most_once_an_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    commit, producer, consumer, _tasks = protocol(exactly_once=True, monkeypatch=monkeypatch)
    monkeypatch.setattr(commit_module, "MARKER_CHECK_INTERVAL_S", 3600.0)
    commit.note_committed({A: 10})
    assert not commit.commit()  # the first check finds nothing and waits an interval
    consumer.position = {A: 11}
    assert not commit.commit()
    assert producer.calls == []
