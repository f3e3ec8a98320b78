"""Stateless operators. Each holds the user's function and forwards what it returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streamer.processors.api import Processor, ProcessorContext, Record

KeyValueFn = Callable[[Any, Any], Any]


class FilterProcessor(Processor):
    def __init__(self, predicate: Callable[[Any, Any], bool], *, negate: bool = False) -> None:
        self.predicate = predicate
        self.negate = negate

    def process(self, record: Record) -> None:
        if bool(self.predicate(record.key, record.value)) != self.negate:
            self.context.forward(record)


class MapProcessor(Processor):
    """``fn(key, value) -> (new_key, new_value)``."""

    def __init__(self, fn: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        self.fn = fn

    def process(self, record: Record) -> None:
        key, value = self.fn(record.key, record.value)
        self.context.forward(record.with_key_value(key, value))


class MapValuesProcessor(Processor):
    """``fn(value) -> new_value``; or ``fn(key, value)`` when ``with_key``."""

    def __init__(self, fn: Callable[..., Any], *, with_key: bool = False) -> None:
        self.fn = fn
        self.with_key = with_key

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self._forward = context.forward

    def process(self, record: Record) -> None:
        value = self.fn(record.key, record.value) if self.with_key else self.fn(record.value)
        self._forward(Record(record.key, value, record.timestamp, record.headers))


class FlatMapProcessor(Processor):
    """``fn(key, value) -> iterable of (key, value)``; each pair is forwarded in order."""

    def __init__(self, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> None:
        self.fn = fn

    def process(self, record: Record) -> None:
        for key, value in self.fn(record.key, record.value):
            self.context.forward(record.with_key_value(key, value))


class FlatMapValuesProcessor(Processor):
    def __init__(self, fn: Callable[[Any], Iterable[Any]]) -> None:
        self.fn = fn

    def process(self, record: Record) -> None:
        for value in self.fn(record.value):
            self.context.forward(record.with_value(value))


class PeekProcessor(Processor):
    def __init__(self, fn: Callable[[Any, Any], None]) -> None:
        self.fn = fn

    def process(self, record: Record) -> None:
        self.fn(record.key, record.value)
        self.context.forward(record)


class SelectKeyProcessor(Processor):
    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def process(self, record: Record) -> None:
        self.context.forward(record.with_key_value(self.fn(record.key, record.value), record.value))


class BranchProcessor(Processor):
    """Sends each record to the first branch whose predicate holds, else to ``default``.

    ``branches`` maps the child step name to its predicate, in evaluation order. A record that
    matches no predicate and has no default branch is dropped and counted.
    """

    def __init__(
        self, branches: Mapping[str, Callable[[Any, Any], bool]], default: str | None
    ) -> None:
        self.branches = tuple(branches.items())
        self.default = default

    def process(self, record: Record) -> None:
        for child, predicate in self.branches:
            if predicate(record.key, record.value):
                self.context.forward(record, to=child)
                return
        if self.default is not None:
            self.context.forward(record, to=self.default)
        else:
            self.context.count("branch-unmatched")


class PassThroughProcessor(Processor):
    """Forwards every record unchanged: merges, branch outputs, table-to-stream."""

    def process(self, record: Record) -> None:
        self.context.forward(record)
