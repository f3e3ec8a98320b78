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

from streamer.processors.api import Processor
from streamer.serde import Serde

TimestampExtractor = Callable[[Any, Any, int], int]
"""``extractor(key, value, record_timestamp) -> event time in ms``."""


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


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """A state store. One instance per task (per partition), plus a changelog topic."""

    name: str
    kind: StoreKind
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    changelog: bool = True

    def changelog_topic(self, app_id: str) -> str:
        return f"{app_id}-{self.name}-changelog"


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
    name: str
    topic: TopicRef
    parents: tuple[str, ...]
    key_serde: Serde[Any]
    value_serde: Serde[Any]

    def describe(self) -> str:
        internal = " (internal)" if self.topic.internal else ""
        return f"Sink: {self.name} (topic: {self.topic.name}{internal})"


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
