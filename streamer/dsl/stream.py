"""Streams: unbounded sequences of key/value records, and their grouped and windowed forms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from streamer.errors import TopologyError
from streamer.processors import stateless as sl
from streamer.processors.api import Processor
from streamer.processors.joins import StreamStreamJoinSide
from streamer.processors.tables import StreamTableJoinProcessor
from streamer.serde import Serde
from streamer.topology.nodes import StoreKind, TopicRef
from streamer.topology.windows import JoinWindows

if TYPE_CHECKING:
    from streamer.dsl.builder import StreamsBuilder
    from streamer.dsl.grouped import GroupedStream
    from streamer.dsl.table import GlobalTable, Table


class Stream:
    """A stream of records. Every operation returns a new Stream; nothing runs until built.

    ``key_changed`` is True after an operation that may change keys (``map``, ``select_key``,
    ``flat_map``): grouping or joining then repartitions, so that equal keys meet in one task.
    """

    def __init__(
        self,
        builder: StreamsBuilder,
        node: str,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        *,
        key_changed: bool = False,
    ) -> None:
        self.builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.key_changed = key_changed

    def _then(
        self,
        operation: str,
        factory: Callable[[], Processor],
        *,
        name: str | None,
        key_changed: bool | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        stores: Iterable[str] = (),
        revalues: bool = False,
    ) -> Stream:
        """Add a step after this one. Steps that change keys (``key_changed``) or values
        (``revalues``) fall back to the builder's default serdes unless given one."""
        rekeys = bool(key_changed)
        node = self.builder.add_processor(
            operation, [self.node], factory, name=name, stores=list(stores)
        )
        return Stream(
            self.builder,
            node,
            key_serde or (self.builder.default_key_serde if rekeys else self.key_serde),
            value_serde or (self.builder.default_value_serde if revalues else self.value_serde),
            key_changed=self.key_changed if key_changed is None else key_changed,
        )

    # --- stateless ------------------------------------------------------------------------

    def filter(self, predicate: Callable[[Any, Any], bool], *, name: str | None = None) -> Stream:
        """Keep records for which ``predicate(key, value)`` is true."""
        return self._then("filter", lambda: sl.FilterProcessor(predicate), name=name)

    def filter_not(
        self, predicate: Callable[[Any, Any], bool], *, name: str | None = None
    ) -> Stream:
        """Drop records for which ``predicate(key, value)`` is true."""
        return self._then(
            "filter-not", lambda: sl.FilterProcessor(predicate, negate=True), name=name
        )

    def map(
        self,
        fn: Callable[[Any, Any], tuple[Any, Any]],
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream:
        """``fn(key, value) -> (new_key, new_value)``. Marks the key as changed."""
        return self._then(
            "map",
            lambda: sl.MapProcessor(fn),
            name=name,
            key_changed=True,
            revalues=True,
            key_serde=key_serde,
            value_serde=value_serde,
        )

    def map_values(
        self,
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream:
        """``fn(value) -> new_value``; the key is kept."""
        return self._then(
            "map-values",
            lambda: sl.MapValuesProcessor(fn),
            name=name,
            value_serde=value_serde,
            revalues=True,
        )

    def map_values_with_key(
        self,
        fn: Callable[[Any, Any], Any],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream:
        """``fn(key, value) -> new_value``; the key is kept."""
        return self._then(
            "map-values",
            lambda: sl.MapValuesProcessor(fn, with_key=True),
            name=name,
            value_serde=value_serde,
            revalues=True,
        )

    def flat_map(
        self,
        fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream:
        """``fn(key, value) -> iterable of (key, value)``. Marks the key as changed."""
        return self._then(
            "flat-map",
            lambda: sl.FlatMapProcessor(fn),
            name=name,
            key_changed=True,
            revalues=True,
            key_serde=key_serde,
            value_serde=value_serde,
        )

    def flat_map_values(
        self,
        fn: Callable[[Any], Iterable[Any]],
        *,
        name: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream:
        """``fn(value) -> iterable of values``, each with the record's key."""
        return self._then(
            "flat-map-values",
            lambda: sl.FlatMapValuesProcessor(fn),
            name=name,
            value_serde=value_serde,
            revalues=True,
        )

    def peek(self, fn: Callable[[Any, Any], None], *, name: str | None = None) -> Stream:
        """Call ``fn(key, value)`` for its side effect; the record passes unchanged."""
        return self._then("peek", lambda: sl.PeekProcessor(fn), name=name)

    def select_key(
        self,
        fn: Callable[[Any, Any], Any],
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
    ) -> Stream:
        """``fn(key, value) -> new_key``. Marks the key as changed."""
        return self._then(
            "select-key",
            lambda: sl.SelectKeyProcessor(fn),
            name=name,
            key_changed=True,
            key_serde=key_serde,
        )

    def branch(
        self,
        branches: Mapping[str, Callable[[Any, Any], bool]],
        *,
        default: str | None = None,
        name: str | None = None,
    ) -> dict[str, Stream]:
        """Split by predicates, tried in order; a record goes to the first that holds.

        Returns one stream per branch name (plus ``default``, which takes records no
        predicate matched). Branch step names are ``<name>-<branch>``.
        """
        if not branches:
            msg = "branch() needs at least one named predicate"
            raise TopologyError(msg)
        base = self.builder.generated_name("branch") if name is None else name
        child_names = {b: f"{base}-{b}" for b in branches}
        default_child = f"{base}-{default}" if default is not None else None
        if default is not None and default in branches:
            msg = f"default branch {default!r} has the same name as a predicate branch"
            raise TopologyError(msg)
        predicates = {child_names[b]: p for b, p in branches.items()}
        splitter = self.builder.add_processor(
            "branch",
            [self.node],
            lambda: sl.BranchProcessor(predicates, default_child),
            name=base,
        )
        result: dict[str, Stream] = {}
        outputs = dict(child_names)
        if default is not None and default_child is not None:
            outputs[default] = default_child
        for branch_name, child in outputs.items():
            node = self.builder.add_processor(
                "branch-output", [splitter], sl.PassThroughProcessor, name=child
            )
            result[branch_name] = Stream(
                self.builder, node, self.key_serde, self.value_serde, key_changed=self.key_changed
            )
        return result

    def merge(self, *others: Stream, name: str | None = None) -> Stream:
        """One stream with the records of this and the other streams, in arrival order."""
        node = self.builder.merge_nodes([self.node, *(o.node for o in others)], name)
        changed = self.key_changed or any(o.key_changed for o in others)
        return Stream(self.builder, node, self.key_serde, self.value_serde, key_changed=changed)

    def process(
        self,
        factory: Callable[[], Processor],
        *,
        name: str,
        stores: Iterable[str] = (),
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> Stream:
        """Run a user :class:`~streamer.processors.api.Processor` with access to ``stores``.

        ``factory()`` is called once per task. What the processor forwards flows on.
        """
        return self._then(
            "process",
            factory,
            name=name,
            stores=stores,
            key_serde=key_serde,
            value_serde=value_serde,
            key_changed=True,
            revalues=True,
        )

    def to(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        name: str | None = None,
    ) -> None:
        """Write every record to ``topic``."""
        self.builder.sink(
            self.node,
            TopicRef(topic),
            key_serde or self.key_serde,
            value_serde or self.value_serde,
            name=name,
        )

    # --- repartitioning and grouping --------------------------------------------------------

    def repartition(self, *, name: str) -> Stream:
        """Send records through ``<app_id>-<name>-repartition`` so that each key lands in the
        task that owns it."""
        self.builder.claim(name)
        source = self.builder.repartition(self.node, name, self.key_serde, self.value_serde)
        return Stream(self.builder, source, self.key_serde, self.value_serde)

    def group_by_key(
        self,
        *,
        name: str | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GroupedStream:
        """Group by the current key; repartitions (and needs ``name``) if the key changed."""
        from streamer.dsl.grouped import GroupedStream

        stream = self
        if key_serde or value_serde:
            stream = Stream(
                self.builder,
                self.node,
                key_serde or self.key_serde,
                value_serde or self.value_serde,
                key_changed=self.key_changed,
            )
        if stream.key_changed:
            if name is None:
                msg = (
                    f"group_by_key() after a key-changing step ({self.node!r}) repartitions; "
                    "give it a stable name=..."
                )
                raise TopologyError(msg)
            stream = stream.repartition(name=name)
        return GroupedStream(stream)

    def group_by(
        self,
        fn: Callable[[Any, Any], Any],
        *,
        name: str,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> GroupedStream:
        """Re-key with ``fn(key, value) -> new_key`` and repartition under ``name``."""
        keyed = self.select_key(fn, key_serde=key_serde)
        return keyed.group_by_key(name=name, value_serde=value_serde)

    # --- joins ----------------------------------------------------------------------------------

    def _require_copartitioned(self, what: str) -> None:
        if self.key_changed:
            msg = (
                f"{what} after a key-changing step ({self.node!r}): call .repartition(name=...) "
                "first so equal keys meet in one task"
            )
            raise TopologyError(msg)

    def join(
        self,
        other: Table | GlobalTable | Stream,
        joiner: Callable[[Any, Any], Any],
        *,
        name: str,
        windows: JoinWindows | None = None,
        key_selector: Callable[[Any, Any], Any] | None = None,
    ) -> Stream:
        """Inner join with a table, a global table (``key_selector`` picks its key), or a
        stream (``windows`` required). Joined values use the builder's default value serde."""
        return self._join(other, joiner, "inner", name, windows, key_selector)

    def left_join(
        self,
        other: Table | GlobalTable | Stream,
        joiner: Callable[[Any, Any], Any],
        *,
        name: str,
        windows: JoinWindows | None = None,
        key_selector: Callable[[Any, Any], Any] | None = None,
    ) -> Stream:
        """Like :meth:`join`, but records without a partner still flow, joined with None."""
        return self._join(other, joiner, "left", name, windows, key_selector)

    def outer_join(
        self,
        other: Stream,
        joiner: Callable[[Any, Any], Any],
        *,
        name: str,
        windows: JoinWindows,
    ) -> Stream:
        """Windowed stream-stream outer join: unmatched records of either side flow too."""
        return self._join(other, joiner, "outer", name, windows, None)

    def _join(
        self,
        other: Table | GlobalTable | Stream,
        joiner: Callable[[Any, Any], Any],
        kind: str,
        name: str,
        windows: JoinWindows | None,
        key_selector: Callable[[Any, Any], Any] | None,
    ) -> Stream:
        from streamer.dsl.table import GlobalTable, Table

        if isinstance(other, GlobalTable):
            if kind == "outer":
                msg = "a stream cannot be outer-joined with a global table"
                raise TopologyError(msg)
            view = other.view()
            return self._then(
                "join-global-table",
                lambda: StreamTableJoinProcessor(
                    view, joiner, left=kind == "left", key_selector=key_selector
                ),
                name=name,
                stores=view.stores(),
                revalues=True,
            )
        if isinstance(other, Table):
            self._require_copartitioned("a stream-table join")
            if kind == "outer" or key_selector is not None:
                msg = "stream-table joins are inner or left, on the stream's key"
                raise TopologyError(msg)
            table_view = other.view
            return self._then(
                "join-table",
                lambda: StreamTableJoinProcessor(table_view, joiner, left=kind == "left"),
                name=name,
                stores=table_view.stores(),
                revalues=True,
            )
        return self._join_stream(other, joiner, kind, name, windows)

    def _join_stream(
        self,
        other: Stream,
        joiner: Callable[[Any, Any], Any],
        kind: str,
        name: str,
        windows: JoinWindows | None,
    ) -> Stream:
        if windows is None:
            msg = "a stream-stream join needs windows=JoinWindows(...)"
            raise TopologyError(msg)
        self._require_copartitioned("a stream-stream join")
        other._require_copartitioned("a stream-stream join")
        self.builder.claim(name)
        left_store = self.builder.add_store(
            f"{name}-left", StoreKind.WINDOW, key_serde=self.key_serde
        )
        right_store = self.builder.add_store(
            f"{name}-right", StoreKind.WINDOW, key_serde=other.key_serde
        )
        sides = []
        for is_left, parent in ((True, self.node), (False, other.node)):
            this, that = (left_store, right_store) if is_left else (right_store, left_store)

            def factory(this: str = this, that: str = that, is_left: bool = is_left) -> Processor:
                return StreamStreamJoinSide(
                    this_store=this,
                    other_store=that,
                    is_left=is_left,
                    before=windows.before,
                    after=windows.after,
                    grace=windows.grace,
                    joiner=joiner,
                    kind=kind,
                )

            sides.append(
                self.builder.add_processor(
                    "join-stream",
                    [parent],
                    factory,
                    name=f"{name}-{'left' if is_left else 'right'}",
                    stores=[left_store, right_store],
                    detail=f"{kind} {windows.describe()}",
                )
            )
        node = self.builder.merge_nodes(sides, f"{name}-merge")
        return Stream(self.builder, node, self.key_serde, self.builder.default_value_serde)
