"""What one worker's query server answers from its own state, with no HTTP in sight.

:class:`QueryService` holds the worker's :class:`~streamer.query.stores.StoreRegistry`, a
function returning its latest :class:`~streamer.runtime.metrics.WorkerSnapshot`, and the
:class:`~streamer.query.routing.Locator`. For a partition it says whether this worker can
answer (:meth:`QueryService.state`), and answers: committed reads only, never a value of a
task that is restoring (see :mod:`streamer.query.stores`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamer.query import reads
from streamer.query.metrics import LatencyMetrics
from streamer.query.routing import Locator, Place
from streamer.query.stores import StoreRegistry
from streamer.runtime.metrics import TaskSnapshot, WorkerSnapshot

DEAD_LETTERED = "records-dead-lettered"
SKIPPED = "records-skipped"


@dataclass(frozen=True)
class PartitionState:
    """Whether this worker answers for a partition: ``running`` (yes), ``restoring`` (not
    yet: its restore progress is in ``restore``), ``standby`` (another member's, with a
    warm copy here ``lag`` changelog records behind) or ``absent`` (another member's)."""

    state: str
    restore: dict[str, Any] | None = None
    lag: int | None = None


class QueryService:
    """Local answers of one worker. Thread-safe: every call reads published state."""

    def __init__(
        self,
        *,
        locator: Locator,
        registry: StoreRegistry,
        snapshot: Callable[[], WorkerSnapshot],
        url: str,
        latency: LatencyMetrics | None = None,
    ) -> None:
        self.locator = locator
        self.registry = registry
        self.snapshot = snapshot
        self.url = url
        self.latency = latency

    def state(self, task: str) -> PartitionState:
        """Running only when the latest snapshot shows the task caught up and its stores are
        open here; a store that closes after this check makes the read fail, not lie."""
        snapshot = self.snapshot()
        found = next((t for t in snapshot.tasks if t.id == task), None)
        if found is None:
            lag = snapshot.standby_lags.get(task)
            if lag is not None and task in self.registry.tasks():
                return PartitionState("standby", lag=lag)
            return PartitionState("absent")
        if found.restoring:
            return PartitionState("restoring", _restore(found))
        if task not in self.registry.tasks():
            return PartitionState("absent")
        return PartitionState("running")

    def get(self, place: Place, key: bytes) -> dict[str, Any]:
        with self.registry.reading(place.task, place.store.name) as store:
            found, value = reads.get(store, place.store, key)
        return {**self._where(place), "found": found, "value": value}

    def stale(self, read: Callable[[Place, bytes], dict[str, Any]], lag: int) -> Any:
        """``read`` from a standby copy: its answer marked stale, with the copy's lag."""

        def answer(place: Place, key: bytes) -> dict[str, Any]:
            return {**read(place, key), "stale": True, "lag": lag}

        return answer

    def scan(
        self,
        place: Place,
        start: bytes | None,
        end: bytes | None,
        after: bytes | None,
        limit: int,
    ) -> list[tuple[bytes, bytes]]:
        with self.registry.reading(place.task, place.store.name) as store:
            return reads.scan(store, start, end, after, limit)

    def timed(self, place: Place, key: bytes, span: tuple[int, int], limit: int) -> dict[str, Any]:
        """A window store's windows, or a session store's sessions, of one key."""
        read = reads.windows if place.store.kind.value == "window" else reads.sessions
        with self.registry.reading(place.task, place.store.name) as store:
            rows = read(store, place.store, key, span[0], span[1], limit)
        return {**self._where(place), "rows": rows}

    def _where(self, place: Place) -> dict[str, Any]:
        return {
            "store": place.store.name,
            "partition": place.partition,
            "task": place.task,
            "served_by": self.url,
            "stale": False,
        }

    def worker(self) -> dict[str, Any]:
        """This worker's state for the console: counts, tasks, latency."""
        snap = self.snapshot()
        return {
            "slot": snap.info.slot,
            "url": self.url,
            "app_id": snap.info.app_id,
            "guarantee": snap.info.guarantee,
            "time": time.time(),
            "records_in": snap.records_in,
            "records_out": snap.records_out,
            "commits": snap.commits,
            "aborts": snap.aborts,
            "rebalances": snap.rebalances,
            "standbys": dict(snap.standby_lags),
            "restored": snap.restored,
            "restore_remaining": snap.restore_remaining,
            "dead_lettered": snap.counter(DEAD_LETTERED),
            "skipped": snap.counter(SKIPPED),
            "latency": None if self.latency is None else self.latency.latency(),
            "tasks": [
                {
                    "id": task.id,
                    "state": "restoring" if task.restoring else "running",
                    "inputs": [[t, p] for t, p in task.inputs],
                    "restore": _restore(task),
                    "store_sizes": dict(task.store_sizes),
                }
                for task in sorted(snap.tasks, key=lambda t: t.id)
            ],
        }


def _restore(task: TaskSnapshot) -> dict[str, Any] | None:
    if task.restore is None:
        return None
    r = task.restore
    total = r.restored + r.remaining
    return {
        "restored": r.restored,
        "remaining": r.remaining,
        "done": r.done,
        "seconds": round(r.seconds, 3),
        "progress": 1.0 if total == 0 else r.restored / total,
    }


__all__ = ["PartitionState", "QueryService"]
