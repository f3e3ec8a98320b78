"""The steps behind ``Stream.join``, ``left_join`` and ``outer_join``.

* stream-global table: a lookup per record, by the record's key or ``key_selector``'s; any
  task can look up any key, so the stream is not repartitioned;
* stream-table: a lookup per record in the table's view, on the stream's key; the stream
  must be co-partitioned with the table (no key change since its last repartition);
* stream-stream: both sides buffer records in window stores named ``<name>-left`` and
  ``<name>-right``, and each record joins the other side's records within the windows.
  Both sides must be co-partitioned.

Joined values use ``value_serde`` if given, else the builder's default value serde; the key
serde is the stream's. A stream-stream join's stores take their serdes from ``StreamJoined``:
without one, keys use each stream's key serde and buffered values are stored as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.joins import JoinBufferSerde, StreamStreamJoinSide
from streamer.processors.tables import StreamTableJoinProcessor
from streamer.processors.versioned import AsOfJoinProcessor, BufferedRecordsSerde
from streamer.serde import Serde
from streamer.topology.nodes import StoreKind
from streamer.topology.windows import JoinWindows

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import GlobalTable, Table

JoinKind = Literal["inner", "left", "outer"]
Joiner = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class StreamJoined:
    """Serdes of a stream-stream join's two window stores (Kafka Streams' ``StreamJoined``).

    ``key_serde`` encodes the keys of both stores (default: each stream's key serde);
    ``value_serde`` the values this stream buffers in ``<name>-left``, ``other_value_serde``
    those the other stream buffers in ``<name>-right`` (default: JSON). Give the value serdes
    when the values are not JSON (bytes, Avro records with bytes or decimals).
    """

    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    other_value_serde: Serde[Any] | None = None

    def buffer_serde(self, side_serde: Serde[Any] | None) -> Serde[Any] | None:
        return None if side_serde is None else JoinBufferSerde(side_serde)


def require_copartitioned(stream: Stream[Any, Any], what: str) -> None:
    """Refuse ``what`` on a stream whose keys changed since its last repartition."""
    if stream.key_changed:
        msg = (
            f"{what} after a key-changing step ({stream.node!r}): call .repartition(name=...) "
            "first so equal keys meet in one task"
        )
        raise TopologyError(msg)


def join(
    stream: Stream[Any, Any],
    other: Table[Any, Any] | GlobalTable[Any, Any] | Stream[Any, Any],
    joiner: Joiner,
    kind: JoinKind,
    name: str,
    windows: JoinWindows | None,
    key_selector: Callable[[Any, Any], Any] | None,
    grace: int | None = None,
    *,
    value_serde: Serde[Any] | None = None,
    stream_joined: StreamJoined | None = None,
) -> Stream[Any, Any]:
    """Join ``stream`` with ``other`` as ``kind``; the result is named after ``name`` and its
    values use ``value_serde`` (default: the builder's default value serde).

    ``grace`` is for a versioned table only (see :func:`_join_versioned_table`),
    ``stream_joined`` for a stream-stream join only.
    """
    from streamer.dsl.table import GlobalTable, Table

    if grace is not None and not (isinstance(other, Table) and other.history is not None):
        msg = f"join {name!r}: grace= needs a versioned table (table(..., versioned=...))"
        raise TopologyError(msg)
    if stream_joined is not None and isinstance(other, (GlobalTable, Table)):
        msg = (
            f"join {name!r}: stream_joined= sets the stores of a stream-stream join; a join "
            "with a table keeps no store of its own"
        )
        raise TopologyError(msg)
    if isinstance(other, GlobalTable):
        joined = _join_global_table(stream, other, joiner, kind, name, key_selector)
    elif isinstance(other, Table):
        joined = _join_table(stream, other, joiner, kind, name, key_selector, grace)
    else:
        joined = _join_stream(stream, other, joiner, kind, name, windows, stream_joined)
    return _with_value_serde(joined, value_serde)


def _with_value_serde(joined: Stream[Any, Any], value_serde: Serde[Any] | None) -> Stream[Any, Any]:
    """``joined`` with its values read and written by ``value_serde``, when given."""
    if value_serde is None:
        return joined
    from streamer.dsl.stream import Stream

    return Stream(joined._graph, joined.node, joined.key_serde, value_serde)


def _join_table(
    stream: Stream[Any, Any],
    table: Table[Any, Any],
    joiner: Joiner,
    kind: JoinKind,
    name: str,
    key_selector: Callable[[Any, Any], Any] | None,
    grace: int | None,
) -> Stream[Any, Any]:
    require_copartitioned(stream, "a stream-table join")
    if kind == "outer" or key_selector is not None:
        msg = "stream-table joins are inner or left, on the stream's key"
        raise TopologyError(msg)
    if table.history is not None:
        return _join_versioned_table(stream, table, joiner, kind, name, grace or 0)
    view = table.view
    return stream._then(
        "join-table",
        lambda: StreamTableJoinProcessor(view, joiner, left=kind == "left"),
        name=name,
        stores=view.stores(),
        revalues=True,
    )


def _join_versioned_table(
    stream: Stream[Any, Any],
    table: Table[Any, Any],
    joiner: Joiner,
    kind: JoinKind,
    name: str,
    grace: int,
) -> Stream[Any, Any]:
    """Each record joins the table's row as of its timestamp, after waiting ``grace`` ms of
    stream time in the store ``<name>-buffer`` (none when ``grace`` is 0)."""
    assert table.history is not None
    history_store, retention = table.history
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= retention.ms:
        msg = (
            f"join {name!r}: grace must be an int of ms between 0 and the table's history "
            f"retention ({retention.ms}), got {grace!r}"
        )
        raise TopologyError(msg)
    graph = stream._graph
    buffer = None
    if grace > 0:
        buffer = graph.add_store(
            f"{name}-buffer",
            StoreKind.WINDOW,
            key_serde=stream.key_serde,
            value_serde=BufferedRecordsSerde(stream.value_serde),
        )
    from streamer.dsl.stream import Stream

    view = table.view
    left = kind == "left"
    node = graph.add_processor(
        "join-table",
        [stream.node],
        lambda: AsOfJoinProcessor(
            view, history_store, joiner, left=left, grace=grace, buffer_store=buffer
        ),
        name=name,
        stores=view.stores() + (() if buffer is None else (buffer,)),
        detail=f"{kind}, as of the record's time in {history_store}, grace {grace} ms",
    )
    return Stream(graph, node, stream.key_serde, graph.default_value_serde)


def _join_global_table(
    stream: Stream[Any, Any],
    table: GlobalTable[Any, Any],
    joiner: Joiner,
    kind: JoinKind,
    name: str,
    key_selector: Callable[[Any, Any], Any] | None,
) -> Stream[Any, Any]:
    if kind == "outer":
        msg = "a stream cannot be outer-joined with a global table"
        raise TopologyError(msg)
    view = table.view()
    return stream._then(
        "join-global-table",
        lambda: StreamTableJoinProcessor(
            view, joiner, left=kind == "left", key_selector=key_selector
        ),
        name=name,
        stores=view.stores(),
        revalues=True,
    )


def _join_stream(
    stream: Stream[Any, Any],
    other: Stream[Any, Any],
    joiner: Joiner,
    kind: JoinKind,
    name: str,
    windows: JoinWindows | None,
    stream_joined: StreamJoined | None,
) -> Stream[Any, Any]:
    from streamer.dsl.stream import Stream

    if windows is None:
        msg = "a stream-stream join needs windows=JoinWindows(...)"
        raise TopologyError(msg)
    require_copartitioned(stream, "a stream-stream join")
    require_copartitioned(other, "a stream-stream join")
    graph = stream._graph
    graph.claim(name)
    serdes = stream_joined or StreamJoined()
    left_store = graph.add_store(
        f"{name}-left",
        StoreKind.WINDOW,
        key_serde=serdes.key_serde or stream.key_serde,
        value_serde=serdes.buffer_serde(serdes.value_serde),
    )
    right_store = graph.add_store(
        f"{name}-right",
        StoreKind.WINDOW,
        key_serde=serdes.key_serde or other.key_serde,
        value_serde=serdes.buffer_serde(serdes.other_value_serde),
    )
    sides = [
        graph.add_processor(
            "join-stream",
            [parent],
            _side_factory(this, that, is_left, windows, joiner, kind),
            name=f"{name}-{'left' if is_left else 'right'}",
            stores=[left_store, right_store],
            detail=f"{kind} {windows.describe()}",
        )
        for is_left, parent, this, that in (
            (True, stream.node, left_store, right_store),
            (False, other.node, right_store, left_store),
        )
    ]
    node = graph.merge_nodes(sides, f"{name}-merge")
    return Stream(graph, node, stream.key_serde, graph.default_value_serde)


def _side_factory(
    this: str, that: str, is_left: bool, windows: JoinWindows, joiner: Joiner, kind: JoinKind
) -> Callable[[], Processor]:
    """The processor factory of one side of a stream-stream join, buffering into ``this``."""

    def factory() -> Processor:
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

    return factory
