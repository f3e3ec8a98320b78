"""At-least-once commits without a flush: an interval's offsets are committed once all of
its records, and those of every earlier interval, are delivered (streamer/runtime/commit.py,
streamer/runtime/intervals.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streamer.kafka.runtime_clients import KafkaRuntimeError
from streamer.kafka.types import TP
from streamer.runtime.commit import CommitProtocol

A: TP = ("in", 0)
B: TP = ("in", 1)


@dataclass
class Group:
    done: bool = False


@dataclass
class Producer:
    groups: list[Group] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    failure: KafkaRuntimeError | None = None

    def send(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("send")

    def mark(self) -> Group:
        self.calls.append("mark")
        self.groups.append(Group())
        return self.groups[-1]

    def flush(self) -> None:
        self.calls.append("flush")
        for group in self.groups:
            group.done = True

    def check_errors(self) -> None:
        if self.failure is not None:
            raise self.failure


@dataclass
class Consumer:
    commits: list[dict[TP, int]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def positions(self, partitions: Any) -> dict[TP, int]:
        return {}

    def commit(self, offsets: dict[TP, int], metadata: Any = None) -> None:
        self.calls.append("commit_offsets")
        self.commits.append(dict(offsets))


@dataclass
class Tasks:
    applied: int = 0

    def running_tasks(self) -> list[Any]:
        return []

    def committed(self, running: Any) -> None:
        self.applied += 1

    def stream_time_of(self, tp: TP) -> int | None:
        return None


def protocol() -> tuple[CommitProtocol, Producer, Consumer, Tasks]:
    producer, consumer, tasks = Producer(), Consumer(), Tasks()
    commit = CommitProtocol(
        exactly_once=False,
        interval_s=1.0,
        producer=producer,  # type: ignore[arg-type]
        consumer=consumer,  # type: ignore[arg-type]
        tasks=tasks,  # type: ignore[arg-type]
    )
    return commit, producer, consumer, tasks


def test_offsets_wait_for_their_interval_to_be_delivered() -> None:
    commit, producer, consumer, tasks = protocol()
    commit.processed({A: 9})
    assert not commit.commit(wait=False)
    assert consumer.commits == [], "nothing is committed while its records are in flight"
    assert tasks.applied == 1, "the stores are applied without waiting"
    assert "flush" not in producer.calls
    assert not commit.commit_delivered()
    producer.groups[0].done = True
    assert commit.commit_delivered()
    assert consumer.commits == [{A: 10}]
    assert not commit.commit_delivered(), "each interval is committed once"


def test_a_later_interval_delivered_first_waits_for_the_earlier_one() -> None:
    commit, producer, consumer, _ = protocol()
    commit.processed({A: 9})
    commit.commit(wait=False)
    commit.processed({A: 19, B: 4})
    commit.commit(wait=False)
    producer.groups[1].done = True
    assert not commit.commit_delivered()
    assert consumer.commits == []
    producer.groups[0].done = True
    assert commit.commit_delivered()
    assert consumer.commits == [{A: 20, B: 5}], "both in one commit, the newest positions"


def test_a_waiting_commit_flushes_then_commits_every_interval() -> None:
    commit, producer, consumer, _ = protocol()
    commit.processed({A: 9})
    commit.commit(wait=False)
    commit.processed({B: 2})
    assert commit.commit()
    assert producer.calls == ["mark", "mark", "flush"]
    assert consumer.commits == [{A: 10, B: 3}]


def test_partitions_that_left_are_not_committed() -> None:
    commit, producer, consumer, _ = protocol()
    commit.processed({A: 9, B: 3})
    commit.commit(wait=False)
    commit.forget([B])
    producer.groups[0].done = True
    commit.commit_delivered()
    assert consumer.commits == [{A: 10}]


def test_a_failed_delivery_stops_the_commit() -> None:
    commit, producer, consumer, _ = protocol()
    commit.processed({A: 9})
    commit.commit(wait=False)
    producer.groups[0].done = True
    producer.failure = KafkaRuntimeError("1 records failed delivery")
    with pytest.raises(KafkaRuntimeError, match="failed delivery"):
        commit.commit_delivered()
    assert consumer.commits == []


def test_a_refused_commit_keeps_the_intervals_for_the_next() -> None:
    commit, producer, consumer, _ = protocol()
    refusals = iter([True, False])

    def commit_offsets(offsets: dict[TP, int], metadata: Any = None) -> None:
        if next(refusals):
            raise KafkaRuntimeError("stale member epoch", retriable=True)
        consumer.commits.append(dict(offsets))

    consumer.commit = commit_offsets  # type: ignore[method-assign]
    commit.processed({A: 9})
    commit.commit(wait=False)
    producer.groups[0].done = True
    assert not commit.commit_delivered()
    assert commit.commit_delivered()
    assert consumer.commits == [{A: 10}]
