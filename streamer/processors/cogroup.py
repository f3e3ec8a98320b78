"""Cogrouping: several grouped streams feeding one aggregate through one store.

Each input goes through a :class:`CogroupTagProcessor`, which pairs its values with the
input's index; one aggregate processor (key-value or windowed, the same ones plain
aggregations use) receives every input's records in arrival order, and its adder is a
:class:`CogroupAdder`, which hands each value to the adder of the input it came from.

A tagged value is ``(index, value)``. The sliding-window aggregate buffers values in a JSON
store, so a tag also has to read back as the list ``[index, value]``: the adder unpacks any
two-element sequence. A ``None`` value is never tagged, so the aggregate still skips and
counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamer.processors.api import Processor, Record

Adder = Callable[[Any, Any, Any], Any]


class CogroupTagProcessor(Processor):
    """Forwards each record with its value tagged by the input ``index``."""

    def __init__(self, index: int) -> None:
        self.index = index

    def process(self, record: Record) -> None:
        if record.value is None:
            self.context.forward(record)
            return
        self.context.forward(record.with_value((self.index, record.value)))


@dataclass(frozen=True, slots=True)
class CogroupAdder:
    """``adder(key, (index, value), aggregate)``: the adder of input ``index`` applied."""

    adders: tuple[Adder, ...]

    def __call__(self, key: Any, tagged: Sequence[Any], aggregate: Any) -> Any:
        index, value = tagged
        return self.adders[index](key, value, aggregate)
