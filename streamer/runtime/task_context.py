"""What a task builds around its steps: each step's context, the sink step, typed stores.

:class:`NodeContext` is the :class:`~streamer.processors.api.ProcessorContext` a step sees:
forwarding to its children (an exception from a child becomes a :class:`ProcessingError`
naming the step), the stores it declared, punctuation and counters. :class:`SinkProcessor`
encodes a record and hands it to the task's :class:`~streamer.runtime.task.RecordSink`.

Streamer puts no record contents in error messages: they name the record's position and the
step, and a user function's exception by its kind and its own message, cut to
:data:`MESSAGE_CHARS` (that message is the user's text; streamer cannot tell whether it
quotes the record). Only with the task's ``log_payloads`` on does the task add a bounded
preview of the raw key and value (:func:`payload_preview`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamer.errors import ProcessingError, SerializationError, StateError, StreamerError
from streamer.processors.api import Processor, PunctuationType, Punctuator, Record, RecordOrigin
from streamer.state import BytesStore, KeyValueStore, SessionStore, WindowStore
from streamer.state.ttl import TtlKeyValueStore
from streamer.state.versioned import VersionedKeyValueStore
from streamer.topology.nodes import SinkNode, StoreKind, StoreSpec

if TYPE_CHECKING:
    from streamer.runtime.task import RecordSink, Task

PREVIEW_BYTES = 64
"""At most this many bytes of a key or value are shown, and only with ``log_payloads``."""
MESSAGE_CHARS = 200
"""At most this many characters of a user function's exception message are shown."""


def describe_exception(exc: BaseException) -> str:
    """``Kind: message``, the message cut to :data:`MESSAGE_CHARS` (``Kind`` if empty)."""
    kind = type(exc).__name__
    text = str(exc)
    if not text:
        return kind
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + "..."
    return f"{kind}: {text}"


def without_user_message(exc: StreamerError, reason: str) -> str:
    """``reason`` without the message of a user function's exception, which only
    ``log_payloads`` shows; streamer's own messages never quote records."""
    cause = exc.__cause__
    if cause is None or isinstance(cause, StreamerError):
        return reason
    step = exc.step if isinstance(exc, ProcessingError) else "?"
    return (
        f"step {step!r} raised {type(cause).__name__} (its message may quote the record: "
        "shown with --log-payloads, and in the dead-letter record's streamer.error header)"
    )


def _preview(data: bytes | None) -> str:
    if data is None:
        return "null"
    cut = "..." if len(data) > PREVIEW_BYTES else ""
    return f"{data[:PREVIEW_BYTES]!r}{cut} ({len(data)} bytes)"


def decode_failure(
    exc: SerializationError, decode_key: Callable[[bytes], Any], key: bytes | None, where: str
) -> SerializationError:
    """The error of a record at ``where`` that its source could not decode, naming the key
    or the value: the key is the culprit if decoding it fails again (serdes are pure)."""
    part = "value"
    if key is not None:
        try:
            decode_key(key)
        except SerializationError:
            part = "key"
    msg = f"cannot decode record at {where}: {exc} (in its {part})"
    return SerializationError(msg)


def payload_preview(key: bytes | None, value: bytes | None) -> str:
    """The raw key and value, each cut to :data:`PREVIEW_BYTES`; for ``log_payloads`` only."""
    return f"key {_preview(key)}, value {_preview(value)}"


def typed_store(spec: StoreSpec, store: BytesStore, stream_time: Callable[[], int]) -> Any:
    """The typed view of ``spec``'s kind over ``store``; a ``KEY_VALUE_TTL`` store reads the
    task's ``stream_time`` to tell live keys from expired ones."""
    kind, key_serde, value_serde = spec.kind, spec.key_serde, spec.value_serde
    if kind is StoreKind.KEY_VALUE_TTL:
        if spec.ttl_ms is None:
            msg = f"key-value-ttl store {store.name!r} has no time to live"
            raise StateError(msg)
        return TtlKeyValueStore(store, key_serde, value_serde, spec.ttl_ms, stream_time)
    if kind is StoreKind.VERSIONED:
        if spec.history_retention is None:
            msg = f"versioned store {store.name!r} has no history retention"
            raise StateError(msg)
        return VersionedKeyValueStore(store, key_serde, value_serde, spec.history_retention)
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
            reason = str(exc) if isinstance(exc, SerializationError) else describe_exception(exc)
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
            except SerializationError as exc:
                # Inside a step, a serde failure is the step's (a store it writes), not the
                # source's: name the step, so error policies and logs point at it.
                msg = f"step {name!r}: {exc}"
                raise ProcessingError(msg, step=name) from exc
            except StreamerError:
                raise
            except Exception as exc:
                msg = f"step {name!r} raised {describe_exception(exc)}"
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
                msg = f"a punctuator of step {step!r} raised {describe_exception(exc)}"
                raise ProcessingError(msg, step=step) from exc

        self._task.schedule(interval_ms, kind, punctuate)

    def count(self, metric: str, amount: int = 1) -> None:
        self._task.counters.add(metric, amount)
