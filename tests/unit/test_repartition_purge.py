"""RepartitionPurger: which offsets it deletes below, and when."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, NamedTuple

import pytest

from streamer.runtime.purge import RepartitionPurger

TP = tuple[str, int]


class _TopicPartition(NamedTuple):
    topic: str
    partition: int
    offset: int


class _Deleter:
    def __init__(self) -> None:
        self.requests: list[dict[TP, int]] = []
        self.futures: list[Future[Any]] = []

    def submit_delete_records(self, before: Mapping[TP, int]) -> Mapping[Any, Any]:
        self.requests.append(dict(before))
        out: dict[Any, Any] = {}
        for (topic, partition), offset in before.items():
            future: Future[Any] = Future()
            self.futures.append(future)
            out[_TopicPartition(topic, partition, offset)] = future
        return out


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _purger(deleter: _Deleter, clock: Callable[[], float]) -> RepartitionPurger:
    return RepartitionPurger(deleter, ["app-x-repartition"], interval=30.0, clock=clock)


def test_deletes_only_repartition_offsets_and_only_after_the_interval() -> None:
    deleter, clock = _Deleter(), _Clock()
    purger = _purger(deleter, clock)
    purger.committed({("app-x-repartition", 0): 10, ("input", 0): 99})
    assert deleter.requests == []  # the interval has not passed
    clock.now += 30
    purger.committed({("app-x-repartition", 1): 5})
    assert deleter.requests == [{("app-x-repartition", 0): 10, ("app-x-repartition", 1): 5}]
    clock.now += 10
    purger.committed({("app-x-repartition", 0): 20})
    assert len(deleter.requests) == 1
    clock.now += 20
    purger.committed({("app-x-repartition", 1): 5})  # already requested: not sent again
    assert deleter.requests[1:] == [{("app-x-repartition", 0): 20}]


def test_nothing_committed_sends_nothing() -> None:
    deleter, clock = _Deleter(), _Clock()
    purger = _purger(deleter, clock)
    clock.now += 100
    purger.committed({("input", 0): 7})
    purger.flush()
    assert deleter.requests == []


def test_a_failed_deletion_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    deleter, clock = _Deleter(), _Clock()
    purger = _purger(deleter, clock)
    purger.committed({("app-x-repartition", 3): 42})
    purger.flush()
    deleter.futures[0].set_exception(RuntimeError("broker says no"))
    assert purger.failures == 1
    assert "app-x-repartition[3]<42" in caplog.text
    assert "broker says no" in caplog.text
