"""What a task builds around its steps: each step's context, the sink step, typed stores.

:class:`NodeContext` is the :class:`~streamer.processors.api.ProcessorContext` a step sees:
forwarding to its children (an exception from a child becomes a :class:`ProcessingError`
naming the step), the stores it declared, punctuation and counters. :class:`SinkProcessor`
encodes a record and hands it to the task's :class:`~streamer.runtime.task.RecordSink`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamer.errors import ProcessingError, SerializationError, StateError, StreamerError
from streamer.processors.api import Processor, PunctuationType, Punctuator, Record, RecordOrigin
from streamer.state import BytesStore, KeyValueStore, SessionStore, WindowStore
from streamer.topology.nodes import SinkNode, StoreKind

if TYPE_CHECKING:
    from streamer.runtime.task import RecordSink, Task


def typed_store(kind: StoreKind, store: BytesStore, key_serde: Any, value_serde: Any) -> Any:
    if kind is StoreKind.KEY_VALUE:
        return KeyValueStore(store, key_serde, value_serde)
    if kind is StoreKind.WINDOW:
        return WindowStore(store, key_serde, value_serde)
    return SessionStore(store, key_serde, value_serde)


class SinkProcessor(Processor):
    def __init__(self, node: SinkNode, topic: str, sink: RecordSink) -> None:
        self.topic = topic
        self.encode_key = node.key_serde.encode
        self.encode_value = node.value_serde.encode
        self.sink = sink
        self.name = node.name

    def process(self, record: Record) -> None:
        try:
            key = None if record.key is None else self.encode_key(record.key)
            value = None if record.value is None else self.encode_value(record.value)
        except Exception as exc:
            # Serdes outside this package may raise anything on a value they cannot encode.
            reason = str(exc) if isinstance(exc, SerializationError) else repr(exc)
            msg = f"cannot encode a record for topic {self.topic!r}: {reason}"
            raise ProcessingError(msg, step=self.name) from exc
        self.sink.send(self.topic, key, value, timestamp=record.timestamp, headers=record.headers)


class NodeContext:
    """The :class:`~streamer.processors.api.ProcessorContext` of one step in one task."""

    __slots__ = ("_allowed", "_child_list", "_children", "_task", "step_name")

    def __init__(
        self,
        task: Task,
        step_name: str,
        children: dict[str, Processor],
        allowed_stores: frozenset[str],
    ) -> None:
        self._task = task
        self.step_name = step_name
        self._children = children
        self._child_list = tuple(children.items())
        self._allowed = allowed_stores

    @property
    def task_id(self) -> str:
        return str(self._task.id)

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def child_names(self) -> tuple[str, ...]:
        return tuple(self._children)

    @property
    def stream_time(self) -> int:
        return self._task.stream_time

    @property
    def wall_clock_time(self) -> int:
        return self._task.clock.now_ms()

    @property
    def origin(self) -> RecordOrigin | None:
        return self._task.origin

    def forward(self, record: Record, to: str | None = None) -> None:
        if to is None:
            targets = self._child_list
        else:
            child = self._children.get(to)
            if child is None:
                msg = f"step {self.step_name!r} has no child step {to!r}"
                raise ProcessingError(msg, step=self.step_name)
            targets = ((to, child),)
        for name, child in targets:
            try:
                child.process(record)
            except StreamerError:
                raise
            except Exception as exc:
                msg = f"step {name!r} raised {type(exc).__name__}: {exc}"
                raise ProcessingError(msg, step=name) from exc

    def store(self, name: str) -> Any:
        if name not in self._allowed:
            msg = f"step {self.step_name!r} did not declare store {name!r}"
            raise ProcessingError(msg, step=self.step_name)
        store = self._task.find_store(name)
        if store is None:
            msg = f"store {name!r} is not available to task {self._task.id}"
            raise StateError(msg)
        return store

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Punctuator) -> None:
        step = self.step_name

        def punctuate(now: int) -> None:
            try:
                callback(now)
            except StreamerError:
                raise
            except Exception as exc:
                msg = f"a punctuator of step {step!r} raised {type(exc).__name__}: {exc}"
                raise ProcessingError(msg, step=step) from exc

        self._task.schedule(interval_ms, kind, punctuate)

    def count(self, metric: str, amount: int = 1) -> None:
        self._task.counters.add(metric, amount)
