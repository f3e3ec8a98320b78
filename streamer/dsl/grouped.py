"""Grouped and windowed streams: the inputs of aggregations, which produce tables.

``GroupedStream[K, V]`` aggregates into ``Table[K, A]``; ``WindowedStream[K, V]`` into
``Table[Windowed, A]``, whose keys carry the window bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal

from streamer.dsl._aggregate import aggregate_table
from streamer.dsl._types import VA, K, V
from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.stateless import PassThroughProcessor
from streamer.processors.tables import AggregateProcessor, ReduceProcessor
from streamer.processors.ttl import Fold, aggregate_fold, reduce_fold
from streamer.processors.windowed import (
    FixedWindowAggregateProcessor,
    SessionWindowAggregateProcessor,
    SlidingWindowAggregateProcessor,
)
from streamer.serde import JsonSerde, LongSerde, Serde
from streamer.topology.nodes import StoreKind, TopicRef
from streamer.topology.windows import (
    HoppingWindows,
    SessionWindows,
    SlidingWindows,
    TumblingWindows,
    Windowed,
    WindowedSerde,
    Windows,
)

if TYPE_CHECKING:
    from streamer.dsl._graph import GraphBuilder
    from streamer.dsl.cogrouped import CogroupedStream
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import Table

Emit = Literal["update", "final"]


def _count_adder(key: Any, value: Any, aggregate: int) -> int:
    return aggregate + 1


def _zero() -> int:
    return 0


def _count_merger(key: Any, a: int, b: int) -> int:
    return a + b


class GroupedStream(Generic[K, V]):
    """Records grouped by key; each key is owned by one task."""

    def __init__(self, stream: Stream[K, V], graph: GraphBuilder) -> None:
        self.stream = stream
        self._graph = graph

    def _aggregate(
        self,
        name: str,
        operation: str,
        serdes: tuple[Serde[Any] | None, Serde[Any]],
        factory: Callable[[], Processor],
        fold: Fold,
        ttl: int | None,
    ) -> Table[Any, Any]:
        """The aggregate step ``name`` and its store ``name``; ``serdes`` are the store's key
        serde (None: the stream's) and value serde."""
        key_serde = serdes[0] or self.stream.key_serde
        return aggregate_table(
            self._graph,
            [self.stream.node],
            name,
            operation=operation,
            serdes=(key_serde, serdes[1]),
            factory=factory,
            fold=fold,
            ttl=ttl,
        )

    def count(
        self,
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        ttl: int | None = None,
    ) -> Table[K, int]:
        """The number of records per key; stored with ``LongSerde`` unless ``value_serde``.
        With ``ttl`` (ms of stream time), a key not counted for that long is deleted."""
        return self._aggregate(
            name,
            "count",
            (key_serde, value_serde or LongSerde()),
            lambda: AggregateProcessor(name, _zero, _count_adder),
            aggregate_fold(_zero, _count_adder),
            ttl,
        )

    def reduce(
        self,
        reducer: Callable[[V, V], V],
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        ttl: int | None = None,
    ) -> Table[K, V]:
        """``reducer(aggregate, value)``; the first value of a key starts the aggregate.
        Stored with the stream's value serde unless ``value_serde``; ``ttl`` as for count."""
        return self._aggregate(
            name,
            "reduce",
            (key_serde, value_serde or self.stream.value_serde),
            lambda: ReduceProcessor(name, reducer),
            reduce_fold(reducer),
            ttl,
        )

    def aggregate(
        self,
        initializer: Callable[[], VA],
        adder: Callable[[K, V, VA], VA],
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        ttl: int | None = None,
    ) -> Table[K, VA]:
        """``initializer()`` then ``adder(key, value, aggregate)`` for each record. Stored
        as JSON unless ``value_serde``; ``ttl`` as for count."""
        return self._aggregate(
            name,
            "aggregate",
            (key_serde, value_serde or JsonSerde()),
            lambda: AggregateProcessor(name, initializer, adder),
            aggregate_fold(initializer, adder),
            ttl,
        )

    def windowed_by(self, windows: Windows) -> WindowedStream[K, V]:
        """Aggregate per key and per window; see :mod:`streamer.topology.windows`."""
        return WindowedStream(self, windows)

    def cogroup(self, adder: Callable[[K, V, VA], VA]) -> CogroupedStream[K, VA]:
        """Start a cogroup: this stream's records update one aggregate with ``adder(key,
        value, aggregate)``; add more grouped streams with ``.cogroup(grouped, adder)``.
        See :mod:`streamer.dsl.cogrouped`."""
        from streamer.dsl.cogrouped import CogroupedStream

        return CogroupedStream(self._graph, ((self, adder),))


class WindowedStream(Generic[K, V]):
    """A grouped stream with windows. Aggregations give tables keyed by ``Windowed`` keys."""

    def __init__(self, grouped: GroupedStream[K, V], windows: Windows) -> None:
        self.grouped = grouped
        self.windows = windows
        self._graph = grouped._graph

    def count(
        self,
        *,
        name: str,
        emit: Emit = "update",
        late_topic: str | None = None,
        idle_close_ms: int | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Table[Windowed, int]:
        """The number of records per key and window (``LongSerde`` unless ``value_serde``)."""
        return self.aggregate(
            _zero,
            _count_adder,
            merger=_count_merger,
            name=name,
            key_serde=key_serde,
            value_serde=value_serde or LongSerde(),
            emit=emit,
            late_topic=late_topic,
            idle_close_ms=idle_close_ms,
        )

    def reduce(
        self,
        reducer: Callable[[V, V], V],
        *,
        name: str,
        emit: Emit = "update",
        late_topic: str | None = None,
        idle_close_ms: int | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Table[Windowed, V]:
        """``reducer(aggregate, value)`` per key and window (stored with the stream's value
        serde unless ``value_serde``)."""
        missing = object()

        def initializer() -> Any:
            return missing

        def adder(key: Any, value: Any, aggregate: Any) -> Any:
            return value if aggregate is missing else reducer(aggregate, value)

        def merger(key: Any, a: Any, b: Any) -> Any:
            return reducer(a, b)

        return self.aggregate(
            initializer,
            adder,
            merger=merger,
            name=name,
            key_serde=key_serde,
            value_serde=value_serde or self.grouped.stream.value_serde,
            emit=emit,
            late_topic=late_topic,
            idle_close_ms=idle_close_ms,
        )

    def aggregate(
        self,
        initializer: Callable[[], VA],
        adder: Callable[[K, V, VA], VA],
        *,
        name: str,
        merger: Callable[[K, VA, VA], VA] | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        emit: Emit = "update",
        late_topic: str | None = None,
        idle_close_ms: int | None = None,
    ) -> Table[Windowed, VA]:
        """Aggregate per key and window.

        ``merger(key, a, b)`` combines two session aggregates (session windows only).
        ``emit="final"`` forwards each window once, when it closes. ``late_topic`` receives
        late records (otherwise they are dropped and counted). ``idle_close_ms`` closes
        windows by the wall clock when no record has arrived for that long. The store's keys
        use ``key_serde`` (default: the stream's), its values ``value_serde`` (default JSON).
        """
        from streamer.dsl.table import Table

        _check_emit(emit, idle_close_ms)
        stream = self.grouped.stream
        graph = self._graph
        graph.claim(name)
        spec = _WindowedAggregate(
            name=name,
            windows=self.windows,
            key_serde=key_serde or stream.key_serde,
            value_serde=value_serde or JsonSerde(),
            initializer=initializer,
            adder=adder,
            merger=merger,
            emit=emit,
            late_branch=f"{name}-late" if late_topic else None,
            idle_close_ms=idle_close_ms,
        )
        node = spec.add_to(graph, [stream.node])
        if late_topic is not None and spec.late_branch is not None:
            graph.add_processor("late-records", [node], PassThroughProcessor, name=spec.late_branch)
            graph.sink(spec.late_branch, TopicRef(late_topic), stream.key_serde, stream.value_serde)
        windowed_serde = WindowedSerde(spec.key_serde)
        return Table(graph, node, None, windowed_serde, spec.value_serde, windowed=True)


def _check_emit(emit: str, idle_close_ms: int | None) -> None:
    """Refuse an unknown ``emit`` mode or a non-positive idle timeout."""
    if emit not in ("update", "final"):
        msg = f"emit must be 'update' or 'final', not {emit!r}"
        raise TopologyError(msg)
    if idle_close_ms is not None and idle_close_ms <= 0:
        msg = f"idle_close_ms must be positive, got {idle_close_ms}"
        raise TopologyError(msg)


@dataclass(frozen=True, slots=True)
class _WindowedAggregate:
    """One windowed aggregation: declares its stores and makes its processors.

    Store names derive from ``name``: ``<name>`` for fixed and session windows,
    ``<name>-records`` (and, with ``emit="final"``, ``<name>-pending``) for sliding windows.
    """

    name: str
    windows: Windows
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    initializer: Callable[[], Any]
    adder: Callable[[Any, Any, Any], Any]
    merger: Callable[[Any, Any, Any], Any] | None
    emit: Emit
    late_branch: str | None
    idle_close_ms: int | None

    def options(self) -> dict[str, Any]:
        """The keyword options every windowed aggregate processor takes."""
        return {
            "emit_final": self.emit == "final",
            "late_branch": self.late_branch,
            "idle_close_ms": self.idle_close_ms,
        }

    def add_to(self, graph: GraphBuilder, parents: list[str]) -> str:
        """Declare the stores and add the ``<name>-aggregate`` step after ``parents``."""
        stores, factory = self.declare(graph)
        return graph.add_processor(
            "windowed-aggregate",
            parents,
            factory,
            name=f"{self.name}-aggregate",
            stores=stores,
            detail=self.windows.describe() + (" emit=final" if self.emit == "final" else ""),
        )

    def declare(self, graph: GraphBuilder) -> tuple[list[str], Callable[[], Processor]]:
        """Declare the stores in ``graph``; returns them and the processor factory."""
        windows = self.windows
        if isinstance(windows, (TumblingWindows, HoppingWindows)):
            return self._fixed(graph, windows)
        if isinstance(windows, SlidingWindows):
            return self._sliding(graph, windows)
        return self._session(graph, windows)

    def _fixed(
        self, graph: GraphBuilder, windows: TumblingWindows | HoppingWindows
    ) -> tuple[list[str], Callable[[], Processor]]:
        store = graph.add_store(
            self.name, StoreKind.WINDOW, key_serde=self.key_serde, value_serde=self.value_serde
        )
        init, add, options = self.initializer, self.adder, self.options()

        def factory() -> Processor:
            return FixedWindowAggregateProcessor(store, windows, init, add, **options)

        return [store], factory

    def _sliding(
        self, graph: GraphBuilder, windows: SlidingWindows
    ) -> tuple[list[str], Callable[[], Processor]]:
        records = graph.add_store(
            f"{self.name}-records",
            StoreKind.WINDOW,
            key_serde=self.key_serde,
            value_serde=JsonSerde(),
        )
        pending = (
            graph.add_store(f"{self.name}-pending", StoreKind.WINDOW, key_serde=self.key_serde)
            if self.emit == "final"
            else None
        )
        init, add, options = self.initializer, self.adder, self.options()

        def factory() -> Processor:
            return SlidingWindowAggregateProcessor(records, pending, windows, init, add, **options)

        return [records] + ([pending] if pending else []), factory

    def _session(
        self, graph: GraphBuilder, windows: SessionWindows
    ) -> tuple[list[str], Callable[[], Processor]]:
        merger = self.merger
        if merger is None:
            msg = f"session-window aggregate {self.name!r} needs merger=(key, a, b) -> merged"
            raise TopologyError(msg)
        store = graph.add_store(
            self.name, StoreKind.SESSION, key_serde=self.key_serde, value_serde=self.value_serde
        )
        init, add, options = self.initializer, self.adder, self.options()

        def factory() -> Processor:
            return SessionWindowAggregateProcessor(store, windows, init, add, merger, **options)

        return [store], factory
