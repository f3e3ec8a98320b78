"""TopologyTestDriver: run a topology in memory, deterministically, without a broker.

It compiles the same :class:`~streamer.runtime.task.Task` pipelines the Kafka worker runs;
only the I/O is swapped: topics are in-memory lists, the wall clock is controlled by the
test, and every piped record is followed by a commit (changelog flush, then store commit),
so stores read after ``pipe`` show committed state.

Records sent to a topic that the topology itself reads (repartition topics, or a user topic
that feeds another sub-topology) are processed in order before ``pipe`` returns. Records
piped into a global table's topic update that table for every task.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.errors import StreamerError
from streamer.partitioner import partition_for_key
from streamer.processors.api import Headers
from streamer.runtime.config import ErrorPolicy
from streamer.runtime.global_tables import GlobalStores
from streamer.runtime.task import Task
from streamer.serde import Serde
from streamer.state import Backend, BytesStore, open_store
from streamer.topology.graph import Topology
from streamer.topology.nodes import SinkNode, SourceNode


@dataclass(frozen=True, slots=True)
class TestRecord:
    """A record as it arrived on an output topic, decoded with the sink's serdes."""

    __test__ = False  # not a pytest test class

    topic: str
    key: Any
    value: Any
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...]
    partition: int | None


@dataclass(frozen=True, slots=True)
class _Raw:
    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...]
    partition: int | None


class ManualClock:
    """A wall clock that moves only when the test says so."""

    def __init__(self, start_ms: int = 0) -> None:
        self.time_ms = start_ms

    def now_ms(self) -> int:
        return self.time_ms


class _Sink:
    def __init__(self, driver: TopologyTestDriver) -> None:
        self.driver = driver

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        self.driver._deliver(_Raw(topic, key, value, timestamp, tuple(headers), partition))


def default_partition(key: bytes | None, partitions: int) -> int:
    """The partition of a keyed record, as Kafka's producer picks it (murmur2; keyless: 0)."""
    if key is None or partitions == 1:
        return 0
    return partition_for_key(key, partitions)


class TopologyTestDriver:
    """Pipe records in, read records out, inspect stores, move the wall clock.

    ``partitions`` gives the partition count of topics (default 1 each; internal topics
    default to the counts the worker would give them), so multi-task behaviour can be
    tested; ``state="rocksdb"`` with ``state_dir`` uses real RocksDB stores.
    ``log_payloads`` adds a bounded preview of a failed record's raw key and value to its
    error message, warning and dead-letter header, as the worker's option of that name does.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        app_id: str = "test-app",
        partitions: Mapping[str, int] | None = None,
        state: Backend = "memory",
        state_dir: Path | None = None,
        wall_clock_ms: int = 0,
        error_policy: ErrorPolicy | str = ErrorPolicy.FAIL,
        log_payloads: bool = False,
    ) -> None:
        self.topology = topology
        self.app_id = app_id
        self.partitions = dict(partitions or {})
        self.state: Backend = state
        self.state_dir = state_dir
        self.clock = ManualClock(wall_clock_ms)
        self.error_policy = ErrorPolicy(error_policy)
        self.log_payloads = log_payloads
        self._sink = _Sink(self)
        self._tasks: dict[tuple[int, int], Task] = {}
        self._outputs: dict[str, list[_Raw]] = {}
        self._pending: deque[_Raw] = deque()
        self._next_offsets: dict[tuple[str, int], int] = {}
        self._sink_serdes: dict[str, tuple[Serde[Any], Serde[Any]]] = {}
        for node in topology.nodes:
            if isinstance(node, SinkNode):
                for ref in node.topic_refs():
                    serdes = (node.key_serde, node.value_serde)
                    self._sink_serdes.setdefault(ref.resolve(app_id), serdes)
        self._globals = GlobalStores(topology, lambda name: self._open(f"global/{name}", name))
        user_topics = {ref.name for ref in topology.source_topics() if not ref.internal}
        self._internal_counts = topology.internal_partition_counts(
            {t: self.partitions.get(t, 1) for t in user_topics}, app_id
        )
        topology.validate_partitions(
            {t: self.partition_count(t) for t in self._all_source_topics()}, app_id
        )

    # --- input ------------------------------------------------------------------------------

    def partition_count(self, topic: str) -> int:
        """``partitions[topic]``; else, for an internal topic, the count the worker would
        create it with (:meth:`Topology.internal_partition_counts`); else 1."""
        count = self.partitions.get(topic)
        return self._internal_counts.get(topic, 1) if count is None else count

    def _all_source_topics(self) -> set[str]:
        return {ref.resolve(self.app_id) for ref in self.topology.source_topics()}

    def pipe(
        self,
        topic: str,
        key: Any,
        value: Any,
        *,
        timestamp: int | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        """Encode ``key`` and ``value`` with the serdes of the step reading ``topic``, then
        process the record (``timestamp`` defaults to the wall clock)."""
        key_serde, value_serde = self._input_serdes(topic)
        self.pipe_raw(
            topic,
            None if key is None else key_serde.encode(key),
            None if value is None else value_serde.encode(value),
            timestamp=timestamp,
            headers=headers,
            partition=partition,
        )

    def pipe_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        """Process a record given as bytes, exactly as a consumer would hand it over."""
        ts = self.clock.now_ms() if timestamp is None else timestamp
        self._pending.append(_Raw(topic, key, value, ts, tuple(headers), partition))
        self._drain()

    def pipe_many(self, topic: str, records: list[tuple[Any, Any, int]]) -> None:
        """Pipe ``(key, value, timestamp)`` tuples in order."""
        for key, value, ts in records:
            self.pipe(topic, key, value, timestamp=ts)

    def _input_serdes(self, topic: str) -> tuple[Serde[Any], Serde[Any]]:
        for node in self.topology.nodes:
            if isinstance(node, SourceNode) and any(
                ref.resolve(self.app_id) == topic for ref in node.topics
            ):
                return node.key_serde, node.value_serde
        for table in self.topology.global_tables:
            if table.topic == topic:
                return table.key_serde, table.value_serde
        msg = f"no step reads topic {topic!r}; use pipe_raw() to send bytes anyway"
        raise StreamerError(msg)

    def _drain(self) -> None:
        touched: dict[tuple[int, int], Task] = {}
        while self._pending:
            raw = self._pending.popleft()
            self._globals.apply(raw.topic, raw.key, raw.value)
            sub = self.topology.subtopology_for(raw.topic, self.app_id)
            if sub is None:
                continue
            count = self.partition_count(raw.topic)
            partition = raw.partition
            if partition is None:
                partition = default_partition(raw.key, count)
            task = self._task(sub.id, partition)
            offset = self._next_offsets.get((raw.topic, partition), 0)
            self._next_offsets[(raw.topic, partition)] = offset + 1
            task.process(
                raw.topic,
                raw.key,
                raw.value,
                timestamp=raw.timestamp,
                offset=offset,
                headers=raw.headers,
            )
            touched[(sub.id, partition)] = task
        for task in touched.values():
            self._commit(task)

    def _commit(self, task: Task) -> None:
        task.flush_changelog()
        task.commit_stores()

    def _task(self, subtopology: int, partition: int) -> Task:
        key = (subtopology, partition)
        task = self._tasks.get(key)
        if task is None:
            sub = self.topology.subtopologies[subtopology]
            task_dir = f"{subtopology}_{partition}"
            task = Task(
                self.topology,
                sub,
                partition,
                app_id=self.app_id,
                open_store=lambda name: self._open(f"{task_dir}/{name}", name),
                sink=self._sink,
                clock=self.clock,
                global_stores=self._globals.views,
                error_policy=self.error_policy,
                log_payloads=self.log_payloads,
                partition_count=self.partition_count,
            )
            self._tasks[key] = task
        return task

    def _open(self, relative: str, name: str) -> BytesStore:
        path = None if self.state_dir is None else self.state_dir / self.app_id / relative
        return open_store(self.state, name, path)

    def _deliver(self, raw: _Raw) -> None:
        self._outputs.setdefault(raw.topic, []).append(raw)
        if raw.topic in self._all_source_topics() or raw.topic in self._globals.topics:
            self._pending.append(raw)

    # --- time ------------------------------------------------------------------------------

    def advance_wall_clock(self, ms: int) -> None:
        """Move the wall clock forward and fire wall-clock punctuators that are due."""
        if ms < 0:
            msg = f"the wall clock cannot go back ({ms} ms)"
            raise StreamerError(msg)
        self.clock.time_ms += ms
        for task in list(self._tasks.values()):
            task.punctuate_wall_clock()
        self._drain()
        for task in list(self._tasks.values()):
            self._commit(task)

    # --- output -----------------------------------------------------------------------------

    def read_output(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> list[TestRecord]:
        """Take every record that arrived on ``topic`` since the last read, decoded."""
        raws = self._outputs.pop(topic, [])
        default_key, default_value = self._sink_serdes.get(topic, (None, None))
        ks = key_serde or default_key
        vs = value_serde or default_value
        return [
            TestRecord(
                topic=r.topic,
                key=r.key if ks is None or r.key is None else ks.decode(r.key),
                value=r.value if vs is None or r.value is None else vs.decode(r.value),
                timestamp=r.timestamp,
                headers=r.headers,
                partition=r.partition,
            )
            for r in raws
        ]

    def read_key_values(self, topic: str) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read_output(topic)]

    def read_values(self, topic: str) -> list[Any]:
        return [r.value for r in self.read_output(topic)]

    def output_topics(self) -> list[str]:
        return sorted(self._outputs)

    # --- state --------------------------------------------------------------------------------

    def store(self, name: str, *, partition: int = 0) -> Any:
        """The typed store ``name`` of the task owning ``partition`` (created if needed)."""
        if name in self._globals.views:
            return self._globals.views[name]
        for sub in self.topology.subtopologies:
            if name in sub.stores:
                return self._task(sub.id, partition).stores[name]
        msg = f"no store named {name!r}"
        raise StreamerError(msg)

    def counters(self) -> dict[str, int]:
        """Task counters (late records, skipped records, ...) summed over all tasks."""
        total: dict[str, int] = {}
        for task in self._tasks.values():
            for metric, value in task.counters.values.items():
                total[metric] = total.get(metric, 0) + value
        return total

    def close(self) -> None:
        for task in self._tasks.values():
            task.close()
        self._tasks.clear()
        self._globals.close()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
