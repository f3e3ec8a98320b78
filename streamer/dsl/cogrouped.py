"""Cogrouped streams: several grouped streams aggregated into one table through one store.

``grouped_a.cogroup(adder_a).cogroup(grouped_b, adder_b).aggregate(initializer, name=...)``
builds, per input ``i``, a ``<name>-cogroup-<i>`` step that tags the input's values, then one
aggregate step (``<name>`` or, windowed, ``<name>-aggregate``) with one store and one
changelog, that every input's records update in arrival order, each with its own adder.
The step and the store are those of a plain aggregation (see
:mod:`streamer.processors.cogroup` for the tagging).

Co-partitioning: each input is a grouped stream, so an input that ``group_by`` re-keyed has
been repartitioned already; all inputs then run in one sub-topology, whose source topics must
have the same partition count (checked when the worker starts). Keys are encoded with the
first input's key serde, which every input must share (equal keys must have equal bytes to
meet in one partition).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic

from streamer.dsl._aggregate import aggregate_table, check_ttl
from streamer.dsl._types import VA, K, V
from streamer.dsl.grouped import Emit, _check_emit, _WindowedAggregate
from streamer.errors import TopologyError
from streamer.processors.cogroup import CogroupAdder, CogroupTagProcessor
from streamer.processors.tables import AggregateProcessor
from streamer.processors.ttl import aggregate_fold
from streamer.serde import JsonSerde, Serde
from streamer.topology.windows import Windowed, WindowedSerde, Windows

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.grouped import GroupedStream
    from streamer.dsl.table import Table

Input = tuple["GroupedStream[Any, Any]", Callable[[Any, Any, Any], Any]]


class CogroupedStream(Generic[K, VA]):
    """Grouped streams that update one aggregate of type ``VA``; immutable: ``cogroup``
    returns a new one."""

    def __init__(self, graph: GraphBuilder, inputs: tuple[Input, ...]) -> None:
        self._graph = graph
        self.inputs = inputs

    def cogroup(
        self, grouped: GroupedStream[K, V], adder: Callable[[K, V, VA], VA]
    ) -> CogroupedStream[K, VA]:
        """Add ``grouped``, whose records update the aggregate with ``adder(key, value,
        aggregate)``. A grouped stream can be added once."""
        first = self.inputs[0][0].stream
        if any(g.stream.node == grouped.stream.node for g, _ in self.inputs):
            msg = f"the grouped stream from {grouped.stream.node!r} is already in this cogroup"
            raise TopologyError(msg)
        if type(grouped.stream.key_serde) is not type(first.key_serde):
            msg = (
                f"cogrouped streams must share a key serde: {first.node!r} has "
                f"{type(first.key_serde).__name__}, {grouped.stream.node!r} has "
                f"{type(grouped.stream.key_serde).__name__}"
            )
            raise TopologyError(msg)
        return CogroupedStream(self._graph, (*self.inputs, (grouped, adder)))

    def _tagged(self, name: str) -> list[str]:
        """One tagging step per input, named ``<name>-cogroup-<i>``."""
        return [
            self._graph.add_processor(
                "cogroup",
                [grouped.stream.node],
                _tagger(index),
                name=f"{name}-cogroup-{index}",
                detail=f"input {index}",
            )
            for index, (grouped, _) in enumerate(self.inputs)
        ]

    def _adder(self) -> CogroupAdder:
        return CogroupAdder(tuple(adder for _, adder in self.inputs))

    @property
    def _key_serde(self) -> Serde[Any]:
        return self.inputs[0][0].stream.key_serde

    def aggregate(
        self,
        initializer: Callable[[], VA],
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        ttl: int | None = None,
    ) -> Table[K, VA]:
        """``initializer()`` then each input's adder for each of its records; one store
        ``name`` (keys with the inputs' key serde unless ``key_serde``, values JSON unless
        ``value_serde``), one changelog, one table. ``ttl`` (ms of stream time) deletes a key
        that no input updated for that long, as for ``GroupedStream.aggregate``."""
        check_ttl(name, ttl)
        tags = self._tagged(name)
        adder = self._adder()
        return aggregate_table(
            self._graph,
            tags,
            name,
            operation="cogroup-aggregate",
            serdes=(key_serde or self._key_serde, value_serde or JsonSerde()),
            factory=lambda: AggregateProcessor(name, initializer, adder),
            fold=aggregate_fold(initializer, adder),
            ttl=ttl,
            detail=f"{len(tags)} inputs",
        )

    def windowed_by(self, windows: Windows) -> CogroupedWindowedStream[K, VA]:
        """Aggregate per key and per window; see :mod:`streamer.topology.windows`."""
        return CogroupedWindowedStream(self, windows)


class CogroupedWindowedStream(Generic[K, VA]):
    """A cogroup with windows: one windowed aggregate over every input."""

    def __init__(self, cogrouped: CogroupedStream[K, VA], windows: Windows) -> None:
        self.cogrouped = cogrouped
        self.windows = windows

    def aggregate(
        self,
        initializer: Callable[[], VA],
        *,
        name: str,
        merger: Callable[[K, VA, VA], VA] | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        emit: Emit = "update",
        idle_close_ms: int | None = None,
    ) -> Table[Windowed, VA]:
        """Aggregate per key and window, as ``WindowedStream.aggregate`` does (``merger``
        for session windows, store serdes, ``emit``, ``idle_close_ms``). Late records are counted
        (``late-records``) and dropped: a cogroup has no late topic, since its inputs'
        values may need different serdes."""
        from streamer.dsl.table import Table

        _check_emit(emit, idle_close_ms)
        cogrouped = self.cogrouped
        graph = cogrouped._graph
        graph.claim(name)
        spec = _WindowedAggregate(
            name=name,
            windows=self.windows,
            key_serde=key_serde or cogrouped._key_serde,
            value_serde=value_serde or JsonSerde(),
            initializer=initializer,
            adder=cogrouped._adder(),
            merger=merger,
            emit=emit,
            late_branch=None,
            idle_close_ms=idle_close_ms,
        )
        node = spec.add_to(graph, cogrouped._tagged(name))
        windowed_serde = WindowedSerde(spec.key_serde)
        return Table(graph, node, None, windowed_serde, spec.value_serde, windowed=True)


def _tagger(index: int) -> Callable[[], CogroupTagProcessor]:
    def factory() -> CogroupTagProcessor:
        return CogroupTagProcessor(index)

    return factory
