"""Scripted Kafka clients for unit tests of the worker's own ordering rules.

:class:`ScriptedKafka` is a tiny in-memory log: topics of partitions of records, committed
group offsets, and transactions whose records become visible only when committed. Its
clients implement the Protocols of :mod:`streamer.runtime.clients` and write every call
that matters to :attr:`ScriptedKafka.calls`, so a test can check the order of the worker's
steps. Rebalances are scripted: :meth:`ScriptedKafka.assign`, :meth:`revoke` and
:meth:`lose` queue an event that the group consumer delivers inside its next ``consume``.

This is not Kafka: what Kafka does (fencing, markers, isolation) is proven against the real
broker in tests/integration. These clients only make the worker's side observable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from streamer.kafka.runtime_clients import KafkaRuntimeError
from streamer.kafka.types import TP, Message
from streamer.runtime.clients import PartitionsCallback


@dataclass
class Rec:
    """A record in a scripted partition; implements the runtime's Message protocol."""

    topic_: str
    partition_: int
    offset_: int
    key_: bytes | None
    value_: bytes | None
    timestamp_: int
    headers_: Sequence[tuple[str, bytes | None]] = ()

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def timestamp(self) -> tuple[int, int]:
        return (1, self.timestamp_)

    def headers(self) -> Any:
        return list(self.headers_)

    def error(self) -> Any:
        return None


@dataclass
class ScriptedKafka:
    """The shared state of the scripted clients; see the module docstring."""

    topics: dict[str, list[list[Rec]]] = field(default_factory=dict)
    committed: dict[TP, tuple[int, str]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[str, list[TP]]] = field(default_factory=list)
    fail_next_commit: KafkaRuntimeError | None = None
    fail_next_offset_commit: KafkaRuntimeError | None = None
    crash_on_apply: bool = False
    """Read by tests that make a task's store apply fail as if the process died there."""
    on_commit: Callable[[], None] | None = None
    """Runs inside the producer's commit, before it succeeds: a test looks at local state."""
    members: dict[str, tuple[TP, ...]] = field(default_factory=dict)
    """The group as its description shows it: per member's client id, its partitions."""

    def create(self, topic: str, partitions: int) -> None:
        self.topics.setdefault(topic, [[] for _ in range(partitions)])

    def append(
        self, topic: str, partition: int, key: bytes | None, value: bytes | None, ts: int = 0
    ) -> None:
        log = self.topics[topic][partition]
        log.append(Rec(topic, partition, len(log), key, value, ts))

    def records(self, topic: str) -> list[Rec]:
        return [r for log in self.topics.get(topic, []) for r in log]

    def assign(self, *partitions: TP) -> None:
        self.events.append(("assign", list(partitions)))

    def revoke(self, *partitions: TP) -> None:
        self.events.append(("revoke", list(partitions)))

    def lose(self, *partitions: TP) -> None:
        self.events.append(("lost", list(partitions)))

    def names(self) -> list[str]:
        """The names of the calls so far, in order."""
        return [call[0] for call in self.calls]


class ScriptedClients:
    """A :class:`~streamer.runtime.clients.ClientFactory` over one :class:`ScriptedKafka`."""

    def __init__(self, kafka: ScriptedKafka) -> None:
        self.kafka = kafka
        self.group: ScriptedGroupConsumer | None = None

    def admin(self) -> ScriptedAdmin:
        return ScriptedAdmin(self.kafka)

    def producer(self) -> ScriptedProducer:
        return ScriptedProducer(self.kafka)

    def restore_consumer(self) -> ScriptedRestoreConsumer:
        return ScriptedRestoreConsumer(self.kafka)

    def group_view(self) -> ScriptedGroupView:
        return ScriptedGroupView(self.kafka)

    def group_consumer(
        self,
        *,
        on_assigned: PartitionsCallback,
        on_revoked: PartitionsCallback,
        on_lost: PartitionsCallback,
    ) -> ScriptedGroupConsumer:
        self.group = ScriptedGroupConsumer(self.kafka, on_assigned, on_revoked, on_lost)
        return self.group


class ScriptedGroupView:
    """The group's description: :attr:`ScriptedKafka.members`."""

    def __init__(self, kafka: ScriptedKafka) -> None:
        self.kafka = kafka

    def members(self) -> dict[str, tuple[TP, ...]]:
        return dict(self.kafka.members)


class ScriptedAdmin:
    def __init__(self, kafka: ScriptedKafka) -> None:
        self.kafka = kafka

    def list_topics(self) -> set[str]:
        return set(self.kafka.topics)

    def partitions(self, topic: str) -> Mapping[int, Any]:
        return dict.fromkeys(range(len(self.kafka.topics[topic])))

    def create_topics(self, specs: Any) -> None:
        for spec in specs:
            self.kafka.create(spec.name, spec.partitions)

    def topic_config(self, topic: str) -> dict[str, str]:
        return {"retention.ms": "-1"}

    def submit_delete_records(self, before: Mapping[TP, int]) -> Mapping[Any, Any]:
        return {}

    def log_end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return {tp: len(self.kafka.topics[tp[0]][tp[1]]) for tp in partitions}


class ScriptedProducer:
    """Transactional when the worker opens transactions; records stay pending until commit."""

    def __init__(self, kafka: ScriptedKafka) -> None:
        self.kafka = kafka
        self.pending: list[tuple[str, int, bytes | None, bytes | None, int]] = []

    def init_transactions(self) -> None:
        self.kafka.calls.append(("init_transactions",))

    def begin(self) -> None:
        self.kafka.calls.append(("begin",))

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
    ) -> None:
        self.kafka.calls.append(("send", topic))
        self.pending.append((topic, partition or 0, key, value, timestamp))

    def poll(self) -> None:
        return None

    def _publish(self) -> None:
        for topic, partition, key, value, ts in self.pending:
            self.kafka.append(topic, partition, key, value, ts)
        self.pending.clear()

    def commit(
        self,
        offsets: Mapping[TP, int],
        group_metadata: Any,
        metadata: Mapping[TP, str] | None = None,
    ) -> None:
        self.kafka.calls.append(("commit_transaction", dict(offsets), dict(metadata or {})))
        if self.kafka.on_commit is not None:
            self.kafka.on_commit()
        failure, self.kafka.fail_next_commit = self.kafka.fail_next_commit, None
        if failure is not None:
            raise failure
        self._publish()
        for tp, offset in offsets.items():
            self.kafka.committed[tp] = (offset, (metadata or {}).get(tp, ""))

    def abort(self) -> None:
        self.kafka.calls.append(("abort_transaction",))
        self.pending.clear()

    def flush(self) -> None:
        self.kafka.calls.append(("flush",))
        self._publish()

    def mark(self) -> SimpleNamespace:
        """At-least-once: every record sent so far is delivered at once."""
        self._publish()
        return SimpleNamespace(done=True)

    def check_errors(self) -> None:
        return None

    def close(self) -> None:
        self.kafka.calls.append(("close_producer",))


class ScriptedGroupConsumer:
    def __init__(
        self,
        kafka: ScriptedKafka,
        on_assigned: PartitionsCallback,
        on_revoked: PartitionsCallback,
        on_lost: PartitionsCallback,
    ) -> None:
        self.kafka = kafka
        self.callbacks = {"assign": on_assigned, "revoke": on_revoked, "lost": on_lost}
        self.assignment: dict[TP, int] = {}
        self.paused: set[TP] = set()

    def subscribe(self, topics: Sequence[str]) -> None:
        self.kafka.calls.append(("subscribe", sorted(topics)))

    def consume(self, max_records: int, timeout: float) -> list[Message]:
        while self.kafka.events:
            kind, partitions = self.kafka.events.pop(0)
            if kind == "assign":
                for tp in partitions:
                    self.assignment[tp] = self.kafka.committed.get(tp, (0, ""))[0]
                self.callbacks[kind](partitions)
            else:
                self.callbacks[kind](partitions)
                for tp in partitions:
                    self.assignment.pop(tp, None)
                    self.paused.discard(tp)
        out: list[Message] = []
        for tp, position in sorted(self.assignment.items()):
            if tp in self.paused:
                continue
            batch = self.kafka.topics[tp[0]][tp[1]][position : position + max_records - len(out)]
            out.extend(batch)
            self.assignment[tp] = position + len(batch)
        return out

    def pause(self, partitions: Iterable[TP]) -> None:
        tps = list(partitions)
        if tps:
            self.kafka.calls.append(("pause", sorted(tps)))
        self.paused.update(tps)

    def resume(self, partitions: Iterable[TP]) -> None:
        tps = list(partitions)
        if tps:
            self.kafka.calls.append(("resume", sorted(tps)))
        self.paused.difference_update(tps)

    def seek(self, partition: TP, offset: int) -> None:
        self.kafka.calls.append(("seek", partition, offset))
        self.assignment[partition] = offset

    def committed(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return {tp: o for tp, (o, _m) in self.committed_with_metadata(partitions).items()}

    def committed_with_metadata(self, partitions: Iterable[TP]) -> dict[TP, tuple[int, str]]:
        return {tp: self.kafka.committed[tp] for tp in partitions if tp in self.kafka.committed}

    def positions(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return {tp: self.assignment[tp] for tp in partitions if tp in self.assignment}

    def log_start_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return dict.fromkeys(partitions, 0)

    def commit(self, offsets: Mapping[TP, int], metadata: Mapping[TP, str] | None = None) -> None:
        self.kafka.calls.append(("commit_offsets", dict(offsets)))
        failure, self.kafka.fail_next_offset_commit = self.kafka.fail_next_offset_commit, None
        if failure is not None:
            raise failure
        for tp, offset in offsets.items():
            self.kafka.committed[tp] = (offset, (metadata or {}).get(tp, ""))

    def group_metadata(self) -> Any:
        return "group-metadata"

    def close(self) -> None:
        self.kafka.calls.append(("close_consumer",))
        partitions = sorted(self.assignment)
        if partitions:
            self.callbacks["revoke"](partitions)
        self.assignment.clear()


class ScriptedRestoreConsumer:
    """Reads committed records of hand-assigned partitions; reports each partition's end."""

    def __init__(self, kafka: ScriptedKafka) -> None:
        self.kafka = kafka
        self.positions: dict[TP, int] = {}

    def end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        return {tp: len(self.kafka.topics[tp[0]][tp[1]]) for tp in partitions}

    def add(self, partition: TP, offset: int | None) -> None:
        self.kafka.calls.append(("restore_from", partition, offset))
        self.positions[partition] = offset or 0

    def remove(self, partitions: Iterable[TP]) -> None:
        for tp in partitions:
            self.positions.pop(tp, None)

    def consume(self, max_records: int, timeout: float) -> tuple[list[Message], dict[TP, int]]:
        out: list[Message] = []
        at_end: dict[TP, int] = {}
        for tp, position in list(self.positions.items()):
            batch = self.kafka.topics[tp[0]][tp[1]][position : position + max_records]
            out.extend(batch)
            self.positions[tp] = position + len(batch)
            if self.positions[tp] >= len(self.kafka.topics[tp[0]][tp[1]]):
                at_end[tp] = self.positions[tp]
        return out, at_end

    def close(self) -> None:
        return None
