"""The processor API: what every node of a compiled pipeline implements.

A :class:`Processor` receives :class:`Record` objects one at a time from its parents, may
read and write the state stores it declared, and passes results on with
:meth:`ProcessorContext.forward`. The same processors run inside the Kafka worker and inside
:class:`streamer.testing.TopologyTestDriver`; only the context behind them differs.

Ordering invariants:

* ``init`` is called once per task, parents after children, before any record;
* ``process`` calls are serial within a task; ``forward`` calls children synchronously and in
  the order they were added to the topology, so a child sees a record before the parent's
  next ``process`` returns;
* punctuators run between records, never during one;
* ``close`` is called once, after the last record, in the same order as ``init``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(slots=True)
class Record:
    """One key/value pair travelling through a pipeline.

    ``timestamp`` is event time in milliseconds since the epoch. ``headers`` are the Kafka
    headers, passed through untouched unless a step replaces them.
    """

    key: Any
    value: Any
    timestamp: int
    headers: Headers = ()

    def with_value(self, value: Any) -> Record:
        return Record(self.key, value, self.timestamp, self.headers)

    def with_key_value(self, key: Any, value: Any) -> Record:
        return Record(key, value, self.timestamp, self.headers)


@dataclass(frozen=True, slots=True)
class RecordOrigin:
    """Where the record being processed came from (the source topic, partition, offset)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class RecordContext:
    """What a topic extractor sees of a record besides its key and value: its event time,
    its headers, and where the record being processed came from (None in a punctuator)."""

    timestamp: int
    headers: Headers
    origin: RecordOrigin | None


class PunctuationType(enum.Enum):
    """Which clock a punctuator follows."""

    STREAM_TIME = "stream-time"
    """Fires when the task's stream time (max event time seen) passes each interval."""
    WALL_CLOCK = "wall-clock"
    """Fires on the wall clock, even when no records arrive (a quiet partition)."""


Punctuator = Callable[[int], None]
"""A scheduled callback; receives the time (ms) it fires for."""


class ProcessorContext(Protocol):
    """What a processor can see and do. One context per processor per task."""

    @property
    def step_name(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def child_names(self) -> tuple[str, ...]:
        """The names of the steps this processor forwards to, in topology order."""
        ...

    @property
    def stream_time(self) -> int:
        """The largest event time this task has seen, or -1 before the first record."""
        ...

    @property
    def wall_clock_time(self) -> int: ...

    @property
    def origin(self) -> RecordOrigin | None:
        """The source position of the record being processed; None inside a punctuator."""
        ...

    def forward(self, record: Record, to: str | None = None) -> None:
        """Pass ``record`` to every child, or only to the child step named ``to``."""
        ...

    def store(self, name: str) -> Any:
        """The typed state store called ``name``, which the step must have declared."""
        ...

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Punctuator) -> None:
        """Call ``callback`` every ``interval_ms`` on the given clock."""
        ...

    def count(self, metric: str, amount: int = 1) -> None:
        """Add to a named task counter (late records, dropped records, ...)."""
        ...


class Processor:
    """Base class of pipeline nodes. Subclasses override :meth:`process`."""

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; stores are closed by the task, not here."""


@dataclass
class TaskCounters:
    """Per-task counters that processors bump through :meth:`ProcessorContext.count`."""

    values: dict[str, int] = field(default_factory=dict)

    def add(self, metric: str, amount: int = 1) -> None:
        self.values[metric] = self.values.get(metric, 0) + amount
