"""What the worker publishes for observers: a snapshot, and a small metrics hook.

The worker's parts never hand out their fields. Instead, the loop publishes a
:class:`WorkerSnapshot`, a frozen value assembled from what each part reports (the task
manager its tasks, the restorer its progress, the commit protocol its counts), at most every
``SNAPSHOT_INTERVAL_S`` and after every change of assignment. Readers on any thread
(metrics, tests, an HTTP endpoint) read the latest one; a snapshot never changes after it is
published.

The metrics hook (:class:`WorkerMetrics`) is called at a few points only, never per record:

* :meth:`WorkerMetrics.client_config` when the worker's client factory builds its group
  consumer (``"consumer"``) and producer (``"producer"``): settings merged into theirs, such
  as librdkafka's ``statistics.interval.ms`` and ``stats_cb`` (the callback runs inside the
  client's poll, on the worker's thread);
* :meth:`WorkerMetrics.started` once, with the worker's identity;
* :meth:`WorkerMetrics.batch` once per polled batch that had records, with the batch and
  the seconds it took to process;
* :meth:`WorkerMetrics.commit` after each successful commit, with its duration;
* :meth:`WorkerMetrics.tick` once per loop iteration with the latest snapshot, where an
  implementation can refresh gauges at its own pace (it must return quickly).

:class:`streamer.runtime.prometheus.PrometheusMetrics` serves them to Prometheus. Tests
and the test driver need nothing: :class:`NoopMetrics` is the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from streamer.kafka.types import TP

if TYPE_CHECKING:
    from streamer.kafka.types import Message

SNAPSHOT_INTERVAL_S = 0.2


@dataclass(frozen=True)
class WorkerInfo:
    """Who the worker is: fixed for its lifetime."""

    app_id: str
    slot: str
    guarantee: str


@dataclass(frozen=True)
class TaskRestore:
    """One task's restore: records applied and left, and seconds since it began (its whole
    duration once ``done``)."""

    restored: int
    remaining: int
    seconds: float
    done: bool = False

    @property
    def rate(self) -> float:
        return self.restored / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class TaskSnapshot:
    """One task as last published. ``counters`` are totals since the worker started."""

    id: str
    restoring: bool
    inputs: tuple[TP, ...]
    store_sizes: Mapping[str, int] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    restore: TaskRestore | None = None
    """Its restore in progress, or its last completed one on this worker."""


@dataclass(frozen=True)
class WorkerSnapshot:
    """The whole worker as last published; all counts are totals since it started."""

    info: WorkerInfo
    records_in: int = 0
    records_out: int = 0
    commits: int = 0
    aborts: int = 0
    rebalances: int = 0
    restored: int = 0
    """Changelog records applied by restores."""
    restore_remaining: int = 0
    restores_cancelled: int = 0
    """Restorations stopped before they finished, because their task moved away."""
    tasks: tuple[TaskSnapshot, ...] = ()
    task_counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Per task id, its counters; they outlive the tasks (moves, rollbacks)."""
    standby_lags: Mapping[str, int] = field(default_factory=dict)
    """Per task with a standby copy in this worker: changelog records it is behind."""

    @property
    def ready(self) -> bool:
        """True once the worker owns tasks and none of them is restoring."""
        return bool(self.tasks) and not any(task.restoring for task in self.tasks)

    @property
    def restoring(self) -> bool:
        """True while any owned task is restoring."""
        return any(task.restoring for task in self.tasks)

    @property
    def assigned(self) -> frozenset[TP]:
        return frozenset(tp for task in self.tasks for tp in task.inputs)

    def counter(self, name: str) -> int:
        """One task counter summed over all tasks, e.g. ``"late-records"``."""
        return sum(counters.get(name, 0) for counters in self.task_counters.values())


class WorkerMetrics(Protocol):
    def client_config(self, client: str) -> Mapping[str, Any]: ...

    def started(self, info: WorkerInfo) -> None: ...

    def batch(self, messages: Sequence[Message], seconds: float) -> None: ...

    def commit(self, seconds: float) -> None: ...

    def tick(self, snapshot: WorkerSnapshot) -> None: ...


class NoopMetrics:
    """Records nothing."""

    def client_config(self, client: str) -> Mapping[str, Any]:
        return {}

    def started(self, info: WorkerInfo) -> None:
        return None

    def batch(self, messages: Sequence[Message], seconds: float) -> None:
        return None

    def commit(self, seconds: float) -> None:
        return None

    def tick(self, snapshot: WorkerSnapshot) -> None:
        return None


__all__ = [
    "SNAPSHOT_INTERVAL_S",
    "NoopMetrics",
    "TaskRestore",
    "TaskSnapshot",
    "WorkerInfo",
    "WorkerMetrics",
    "WorkerSnapshot",
]
