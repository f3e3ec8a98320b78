"""Grouped and windowed streams: the inputs of aggregations, which produce tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.tables import AggregateProcessor, ReduceProcessor, StoreView
from streamer.processors.windowed import (
    FixedWindowAggregateProcessor,
    SessionWindowAggregateProcessor,
    SlidingWindowAggregateProcessor,
)
from streamer.serde import JsonSerde, LongSerde, Serde
from streamer.topology.nodes import StoreKind, TopicRef
from streamer.topology.windows import (
    HoppingWindows,
    SlidingWindows,
    TumblingWindows,
    WindowedSerde,
    Windows,
)

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import Table

Emit = Literal["update", "final"]


def _count_adder(key: Any, value: Any, aggregate: int) -> int:
    return aggregate + 1


def _zero() -> int:
    return 0


def _count_merger(key: Any, a: int, b: int) -> int:
    return a + b


class GroupedStream:
    """Records grouped by key; each key is owned by one task."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.builder = stream.builder

    def _aggregate_node(
        self,
        name: str,
        factory: Callable[[], Processor],
        value_serde: Serde[Any],
        operation: str,
    ) -> Table:
        from streamer.dsl.table import Table

        self.builder.add_store(name, key_serde=self.stream.key_serde, value_serde=value_serde)
        node = self.builder.add_processor(
            operation, [self.stream.node], factory, name=name, stores=[name]
        )
        return Table(self.builder, node, StoreView(name), self.stream.key_serde, value_serde)

    def count(self, *, name: str) -> Table:
        """The number of records per key."""
        return self._aggregate_node(
            name, lambda: AggregateProcessor(name, _zero, _count_adder), LongSerde(), "count"
        )

    def reduce(
        self,
        reducer: Callable[[Any, Any], Any],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table:
        """``reducer(aggregate, value)``; the first value of a key starts the aggregate."""
        return self._aggregate_node(
            name,
            lambda: ReduceProcessor(name, reducer),
            value_serde or self.stream.value_serde,
            "reduce",
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        *,
        name: str,
        value_serde: Serde[Any] | None = None,
    ) -> Table:
        """``initializer()`` then ``adder(key, value, aggregate)`` for each record."""
        return self._aggregate_node(
            name,
            lambda: AggregateProcessor(name, initializer, adder),
            value_serde or JsonSerde(),
            "aggregate",
        )

    def windowed_by(self, windows: Windows) -> WindowedStream:
        """Aggregate per key and per window; see :mod:`streamer.topology.windows`."""
        return WindowedStream(self, windows)


class WindowedStream:
    """A grouped stream with windows. Aggregations give tables keyed by ``Windowed`` keys."""

    def __init__(self, grouped: GroupedStream, windows: Windows) -> None:
        self.grouped = grouped
        self.windows = windows
        self.builder = grouped.builder

    def count(
        self,
        *,
        name: str,
        emit: Emit = "update",
        late_topic: str | None = None,
        idle_close_ms: int | None = None,
    ) -> Table:
        """The number of records per key and window."""
        return self.aggregate(
            _zero,
            _count_adder,
            merger=_count_merger,
            name=name,
            value_serde=LongSerde(),
            emit=emit,
            late_topic=late_topic,
            idle_close_ms=idle_close_ms,
        )

    def reduce(
        self,
        reducer: Callable[[Any, Any], Any],
        *,
        name: str,
        emit: Emit = "update",
        late_topic: str | None = None,
        idle_close_ms: int | None = None,
    ) -> Table:
        """``reducer(aggregate, value)`` per key and window."""
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
            value_serde=self.grouped.stream.value_serde,
            emit=emit,
            late_topic=late_topic,
            idle_close_ms=idle_close_ms,
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        *,
        name: str,
        merger: Callable[[Any, Any, Any], Any] | None = None,
        value_serde: Serde[Any] | None = None,
        emit: Emit = "update",
        late_topic: str | None = None,
        idle_close_ms: int | None = None,
    ) -> Table:
        """Aggregate per key and window.

        ``merger(key, a, b)`` combines two session aggregates (session windows only).
        ``emit="final"`` forwards each window once, when it closes. ``late_topic`` receives
        late records (otherwise they are dropped and counted). ``idle_close_ms`` closes
        windows by the wall clock when no record has arrived for that long.
        """
        from streamer.dsl.table import Table

        if emit not in ("update", "final"):
            msg = f"emit must be 'update' or 'final', not {emit!r}"
            raise TopologyError(msg)
        if idle_close_ms is not None and idle_close_ms <= 0:
            msg = f"idle_close_ms must be positive, got {idle_close_ms}"
            raise TopologyError(msg)
        stream = self.grouped.stream
        builder = self.builder
        vs = value_serde or JsonSerde()
        builder.claim(name)
        late_branch = f"{name}-late" if late_topic else None
        options: dict[str, Any] = {
            "emit_final": emit == "final",
            "late_branch": late_branch,
            "idle_close_ms": idle_close_ms,
        }
        windows = self.windows
        factory: Callable[[], Processor]
        if isinstance(windows, (TumblingWindows, HoppingWindows)):
            store = builder.add_store(
                name, StoreKind.WINDOW, key_serde=stream.key_serde, value_serde=vs
            )
            stores = [store]

            def factory() -> Processor:
                return FixedWindowAggregateProcessor(store, windows, initializer, adder, **options)

        elif isinstance(windows, SlidingWindows):
            records = builder.add_store(
                f"{name}-records",
                StoreKind.WINDOW,
                key_serde=stream.key_serde,
                value_serde=JsonSerde(),
            )
            pending = (
                builder.add_store(f"{name}-pending", StoreKind.WINDOW, key_serde=stream.key_serde)
                if emit == "final"
                else None
            )
            stores = [records] + ([pending] if pending else [])

            def factory() -> Processor:
                return SlidingWindowAggregateProcessor(
                    records, pending, windows, initializer, adder, **options
                )

        else:
            if merger is None:
                msg = f"session-window aggregate {name!r} needs merger=(key, a, b) -> merged"
                raise TopologyError(msg)
            session_merger = merger
            store = builder.add_store(
                name, StoreKind.SESSION, key_serde=stream.key_serde, value_serde=vs
            )
            stores = [store]

            def factory() -> Processor:
                return SessionWindowAggregateProcessor(
                    store, windows, initializer, adder, session_merger, **options
                )

        node = builder.add_processor(
            "windowed-aggregate",
            [stream.node],
            factory,
            name=f"{name}-aggregate",
            stores=stores,
            detail=windows.describe() + (" emit=final" if emit == "final" else ""),
        )
        if late_topic is not None and late_branch is not None:
            builder.add_processor("late-records", [node], _pass_through, name=late_branch)
            builder.sink(late_branch, TopicRef(late_topic), stream.key_serde, stream.value_serde)
        windowed_serde = WindowedSerde(stream.key_serde)
        return Table(builder, node, None, windowed_serde, vs, windowed=True)


def _pass_through() -> Processor:
    from streamer.processors.stateless import PassThroughProcessor

    return PassThroughProcessor()
