"""At-least-once commit intervals: positions that wait for their records' deliveries.

An interval is what an at-least-once commit puts aside instead of flushing the producer:
the input positions processed since the previous commit, their offset metadata, and the
producer's :class:`~streamer.runtime.clients.DeliveryGroup` of every record sent meanwhile.
Invariants:

* intervals are kept in the order they ended, and only a run of the oldest ones, each with
  all its records delivered, is ever handed out to be committed; so an offset is never
  committed while a record sent before it is still in flight;
* a later interval's position for a partition replaces an earlier one's (positions only
  grow), so the merged positions of a run are those of its newest interval per partition.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from streamer.kafka.types import TP
from streamer.runtime.clients import DeliveryGroup


@dataclass(slots=True)
class Interval:
    deliveries: DeliveryGroup
    positions: dict[TP, int]
    metadata: dict[TP, str]


class Intervals:
    """The ended intervals whose positions are not committed yet, oldest first."""

    def __init__(self) -> None:
        self._pending: deque[Interval] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def end(
        self, deliveries: DeliveryGroup, positions: dict[TP, int], metadata: dict[TP, str]
    ) -> None:
        """Put an interval aside (copies of ``positions`` and ``metadata`` are kept)."""
        self._pending.append(Interval(deliveries, dict(positions), dict(metadata)))

    def delivered(self) -> tuple[int, dict[TP, int], dict[TP, str]]:
        """How many of the oldest intervals have all their records delivered, and their
        merged positions and metadata."""
        count = 0
        positions: dict[TP, int] = {}
        metadata: dict[TP, str] = {}
        for interval in self._pending:
            if not interval.deliveries.done:
                break
            count += 1
            positions.update(interval.positions)
            metadata.update(interval.metadata)
        return count, positions, metadata

    def committed(self, count: int) -> None:
        """The oldest ``count`` intervals were committed."""
        for _ in range(count):
            self._pending.popleft()

    def forget(self, partitions: Iterable[TP]) -> None:
        """Partitions that left this worker: their positions are not ours to commit."""
        gone = set(partitions)
        for interval in self._pending:
            for tp in gone:
                interval.positions.pop(tp, None)
                interval.metadata.pop(tp, None)

    def clear(self) -> None:
        self._pending.clear()


__all__ = ["Interval", "Intervals"]
