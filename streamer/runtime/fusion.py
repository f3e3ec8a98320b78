"""Chains of stateless steps fused into plain functions: no Record or forward between them.

A compiled task reaches every step through its *entry*, a function
``entry(key, value, timestamp, headers)``. The entry of a stateless step (filter, map,
map_values, flat_map, flat_map_values, peek, select_key, a pass-through, a sink) calls the
user's function and then its children's entries directly, so a chain of them from a source
to a sink is one nested call per step, without a :class:`Record` or a
:meth:`~streamer.processors.api.ProcessorContext.forward` in between. Any other step
(stateful ones, branches, user processors) keeps its :class:`Processor`: its entry builds a
Record and calls ``process``, and its forwards reach its children's entries through
:class:`EntryProcessor`.

Only processors of exactly these classes are fused (a subclass may override ``process``).
Everything a step-by-step run does is kept:

* children are called in topology order, depth first, synchronously;
* an exception raised by a step's function (or a user processor) becomes a
  :class:`ProcessingError` naming that step, with the message
  :class:`~streamer.runtime.task_context.NodeContext` gives it, unless it is a
  StreamerError other than a serde failure, which passes unchanged; a sink's encoding
  error reads as the sink step's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamer.errors import ProcessingError, SerializationError, StreamerError
from streamer.processors import stateless as sl
from streamer.processors.api import Headers, Processor, Record
from streamer.runtime.task_context import SinkProcessor, describe_exception

Entry = Callable[[Any, Any, int, Headers], None]
"""A step as a function of ``(key, value, timestamp, headers)``."""

_END = object()


def step_failed(step: str, exc: Exception) -> Exception:
    """What to raise when ``step`` raised ``exc``, as
    :meth:`~streamer.runtime.task_context.NodeContext.forward` words it: a serde failure or
    any other exception becomes a :class:`ProcessingError` naming the step (caused by
    ``exc``); another StreamerError is raised unchanged."""
    if isinstance(exc, SerializationError):
        error = ProcessingError(f"step {step!r}: {exc}", step=step)
    elif isinstance(exc, StreamerError):
        return exc
    else:
        error = ProcessingError(f"step {step!r} raised {describe_exception(exc)}", step=step)
    error.__cause__ = exc
    return error


class EntryProcessor(Processor):
    """A fused entry seen as a Processor, for the forwards of unfused parents."""

    __slots__ = ("entry",)

    def __init__(self, entry: Entry) -> None:
        self.entry = entry

    def process(self, record: Record) -> None:
        self.entry(record.key, record.value, record.timestamp, record.headers)


def is_fused(processor: Processor) -> bool:
    """Whether :func:`build_entries` turns ``processor`` into a plain function."""
    return type(processor) in _BUILDERS


def build_entries(
    order: Sequence[str], processors: Mapping[str, Processor], children: Mapping[str, list[str]]
) -> dict[str, Entry]:
    """Each step's entry; ``order`` lists the steps parents first, ``children`` in order."""
    entries: dict[str, Entry] = {}
    for name in reversed(order):
        after = _fan_out([entries[child] for child in children[name]])
        processor = processors[name]
        builder = _BUILDERS.get(type(processor))
        if builder is None:
            entries[name] = _unfused(name, processor)
        else:
            entries[name] = builder(name, processor, after)
    return entries


def _noop(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
    return None


def _fan_out(entries: list[Entry]) -> Entry:
    if not entries:
        return _noop
    if len(entries) == 1:
        return entries[0]
    chain = tuple(entries)

    def fan_out(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        for entry in chain:
            entry(key, value, timestamp, headers)

    return fan_out


def _unfused(name: str, processor: Processor) -> Entry:
    process = processor.process

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            process(Record(key, value, timestamp, headers))
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)

    return entry


def _pass_through(name: str, processor: Any, after: Entry) -> Entry:
    return after


def _filter(name: str, processor: Any, after: Entry) -> Entry:
    predicate, negate = processor.predicate, processor.negate

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            keep = bool(predicate(key, value)) != negate
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)
        if keep:
            after(key, value, timestamp, headers)

    return entry


def _map(name: str, processor: Any, after: Entry) -> Entry:
    fn = processor.fn

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            key, value = fn(key, value)
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)
        after(key, value, timestamp, headers)

    return entry


def _map_values(name: str, processor: Any, after: Entry) -> Entry:
    fn, with_key = processor.fn, processor.with_key

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            value = fn(key, value) if with_key else fn(value)
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)
        after(key, value, timestamp, headers)

    return entry


def _select_key(name: str, processor: Any, after: Entry) -> Entry:
    fn = processor.fn

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            key = fn(key, value)
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)
        after(key, value, timestamp, headers)

    return entry


def _peek(name: str, processor: Any, after: Entry) -> Entry:
    fn = processor.fn

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            fn(key, value)
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)
        after(key, value, timestamp, headers)

    return entry


def _flat_map(name: str, processor: Any, after: Entry) -> Entry:
    """Pairs are taken one at a time, each forwarded before the next is asked for."""
    fn = processor.fn
    with_key = type(processor) is sl.FlatMapProcessor

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            items = iter(fn(key, value) if with_key else fn(value))
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)
        while True:
            try:
                item: Any = next(items, _END)
                if item is _END:
                    return
                new_key, new_value = item if with_key else (key, item)
            except Exception as exc:
                raise step_failed(name, exc)  # noqa: B904 (the cause is set)
            after(new_key, new_value, timestamp, headers)

    return entry


def _sink(name: str, processor: Any, after: Entry) -> Entry:
    """Encode, then send; the same errors as :class:`SinkProcessor`."""
    encode_key, encode_value = processor.encode_key, processor.encode_value
    send, topic = processor.sink.send, processor.topic

    def entry(key: Any, value: Any, timestamp: int, headers: Headers) -> None:
        try:
            key_bytes = None if key is None else encode_key(key)
            value_bytes = None if value is None else encode_value(value)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, SerializationError) else describe_exception(exc)
            msg = f"cannot encode a record for topic {topic!r}: {reason}"
            raise ProcessingError(msg, step=name) from exc
        try:
            send(topic, key_bytes, value_bytes, timestamp=timestamp, headers=headers)
        except Exception as exc:
            raise step_failed(name, exc)  # noqa: B904 (the cause is set)

    return entry


_BUILDERS: dict[type, Callable[[str, Any, Entry], Entry]] = {
    sl.PassThroughProcessor: _pass_through,
    sl.FilterProcessor: _filter,
    sl.MapProcessor: _map,
    sl.MapValuesProcessor: _map_values,
    sl.SelectKeyProcessor: _select_key,
    sl.PeekProcessor: _peek,
    sl.FlatMapProcessor: _flat_map,
    sl.FlatMapValuesProcessor: _flat_map,
    SinkProcessor: _sink,
}

__all__ = ["Entry", "EntryProcessor", "build_entries", "is_fused", "step_failed"]
