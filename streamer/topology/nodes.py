"""The topology as named data: frozen dataclasses for nodes, stores and tables.

A node's ``name`` is unique in its topology and stable across code changes that do not
touch the step itself; stateful steps take their name from the user. Store names fix the
store directory and the changelog topic ``<app_id>-<store>-changelog``; repartition steps
fix ``<app_id>-<name>-repartition``.

Nodes are listed parents first. Processor nodes carry a ``factory`` that makes a fresh
:class:`~streamer.processors.api.Processor` for each task.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamer.errors import TopologyError
from streamer.processors.api import Processor, RecordContext
from streamer.serde import Serde

TimestampExtractor = Callable[[Any, Any, int], int]
"""``extractor(key, value, record_timestamp) -> event time in ms``."""
TopicExtractor = Callable[[Any, Any, RecordContext], str]
"""``extractor(key, value, context) -> the name of the topic the record goes to``."""
StreamPartitioner = Callable[[Any, Any, int], int]
"""``partitioner(key, value, partition_count) -> partition``, given the decoded key and
value (objects, before the sink's serdes encode them)."""


def callable_name(fn: Callable[..., Any]) -> str:
    """A user function's name for descriptions and messages (``<lambda>`` for a lambda)."""
    return str(getattr(fn, "__qualname__", None) or type(fn).__name__)


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A topic name; internal topics are prefixed with the app id when resolved."""

    name: str
    internal: bool = False

    def resolve(self, app_id: str) -> str:
        return f"{app_id}-{self.name}" if self.internal else self.name


class StoreKind(enum.Enum):
    KEY_VALUE = "key-value"
    WINDOW = "window"
    SESSION = "session"
    VERSIONED = "versioned"
    KEY_VALUE_TTL = "key-value-ttl"


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """A state store. One instance per task (per partition), plus a changelog topic."""

    name: str
    kind: StoreKind
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    changelog: bool = True
    history_retention: int | None = None
    """Milliseconds of history a ``VERSIONED`` store keeps; None for other kinds."""
    ttl_ms: int | None = None
    """Milliseconds of stream time a ``KEY_VALUE_TTL`` store keeps an unwritten key."""

    def changelog_topic(self, app_id: str) -> str:
        return f"{app_id}-{self.name}-changelog"

    def describe_kind(self) -> str:
        """The kind, with the history retention of a versioned store or the time to live
        of a key-value store with one."""
        if self.ttl_ms is not None:
            return f"{self.kind.value}, ttl {self.ttl_ms} ms"
        if self.history_retention is None:
            return self.kind.value
        return f"{self.kind.value}, history {self.history_retention} ms"


@dataclass(frozen=True, slots=True)
class SourceNode:
    name: str
    topics: tuple[TopicRef, ...]
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    timestamp_extractor: TimestampExtractor | None = None
    parents: tuple[str, ...] = ()

    def describe(self) -> str:
        topics = ", ".join(t.name + (" (internal)" if t.internal else "") for t in self.topics)
        return f"Source: {self.name} (topics: [{topics}])"


@dataclass(frozen=True, slots=True)
class SinkNode:
    """Writes records to ``topic``; or, with a ``topic_extractor``, each record to the topic
    the extractor names, which must be one of ``declared_topics`` (then ``topic`` is None).

    ``partitioner`` picks each record's partition; without one the producer's default
    (murmur2 of the key bytes) does.
    """

    name: str
    topic: TopicRef | None
    parents: tuple[str, ...]
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    topic_extractor: TopicExtractor | None = None
    declared_topics: tuple[TopicRef, ...] = ()
    partitioner: StreamPartitioner | None = None

    def __post_init__(self) -> None:
        dynamic = self.topic_extractor is not None
        if (self.topic is None) != dynamic or dynamic != bool(self.declared_topics):
            msg = (
                f"sink {self.name!r} needs either a topic, or a topic extractor with the "
                "topics it may pick"
            )
            raise TopologyError(msg)

    def topic_refs(self) -> tuple[TopicRef, ...]:
        """Every topic this sink may write to."""
        return self.declared_topics if self.topic is None else (self.topic,)

    def describe(self) -> str:
        if self.topic_extractor is not None:
            names = ", ".join(t.name for t in self.declared_topics)
            where = f"topics: [{names}] picked by {callable_name(self.topic_extractor)}"
        else:
            internal = " (internal)" if self.topic is not None and self.topic.internal else ""
            where = f"topic: {self.topic_refs()[0].name}{internal}"
        if self.partitioner is not None:
            where += f"; partitioner: {callable_name(self.partitioner)}"
        return f"Sink: {self.name} ({where})"


@dataclass(frozen=True, slots=True)
class ProcessorNode:
    name: str
    parents: tuple[str, ...]
    factory: Callable[[], Processor]
    operation: str
    stores: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        stores = f" (stores: [{', '.join(self.stores)}])" if self.stores else ""
        detail = f" {self.detail}" if self.detail else ""
        return f"Processor: {self.name} [{self.operation}]{detail}{stores}"


Node = SourceNode | SinkNode | ProcessorNode


@dataclass(frozen=True, slots=True)
class GlobalTableSpec:
    """Reference data every task can read: the whole topic, in one store per worker."""

    name: str
    topic: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]


@dataclass(frozen=True, slots=True)
class SubTopology:
    """A connected part of the topology. One task runs it per input partition."""

    id: int
    nodes: tuple[str, ...]
    source_topics: tuple[TopicRef, ...]
    stores: tuple[str, ...]
    copartition_groups: tuple[tuple[TopicRef, ...], ...] = field(default=())
