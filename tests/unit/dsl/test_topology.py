"""Build-time validation and describe()."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamer import (
    HoppingWindows,
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    TumblingWindows,
)
from streamer.errors import TopologyError
from streamer.testing import TopologyTestDriver


def test_empty_topology_is_rejected() -> None:
    with pytest.raises(TopologyError, match="the topology is empty"):
        StreamsBuilder().build()


def test_source_without_downstream_steps_is_rejected() -> None:
    b = StreamsBuilder()
    b.stream("in", name="lonely")
    with pytest.raises(TopologyError, match="source 'lonely' has no downstream step"):
        b.build()


def test_duplicate_step_names_are_rejected() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    s.filter(lambda k, v: True, name="step")
    with pytest.raises(TopologyError, match="duplicate step name 'step'"):
        s.map_values(lambda v: v, name="step")
    with pytest.raises(TopologyError, match="duplicate step name 'step'"):
        s.group_by_key().count(name="step")


def test_branch_names_collide_with_other_steps() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    s.filter(lambda k, v: True, name="split-a")
    with pytest.raises(TopologyError, match="duplicate step name 'split-a'"):
        s.branch({"a": lambda k, v: True}, name="split")


def test_branch_needs_predicates_and_a_distinct_default() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    with pytest.raises(TopologyError, match="at least one named predicate"):
        s.branch({})
    with pytest.raises(TopologyError, match="same name as a predicate branch"):
        s.branch({"a": lambda k, v: True}, default="a")


def test_group_by_and_aggregate_cannot_share_a_name() -> None:
    b = StreamsBuilder()
    grouped = b.stream("in").group_by(lambda k, v: v, name="by-value")
    with pytest.raises(TopologyError, match="duplicate step name 'by-value'"):
        grouped.count(name="by-value")


@pytest.mark.parametrize("name", ["", "has space", "slash/name", "ünïcode", "x" * 201])
def test_invalid_names_are_rejected(name: str) -> None:
    b = StreamsBuilder()
    with pytest.raises(TopologyError, match="invalid step name"):
        b.stream("in").filter(lambda k, v: True, name=name)


def test_valid_names_use_kafka_topic_characters() -> None:
    b = StreamsBuilder()
    b.stream("in").filter(lambda k, v: True, name="Ok_name.v2-x").to("out")
    assert "Ok_name.v2-x" in {n.name for n in b.build().nodes}


@pytest.mark.parametrize(
    "make",
    [
        lambda: TumblingWindows(size=10, grace=-1),
        lambda: HoppingWindows(size=10, advance=5, grace=-1),
        lambda: SlidingWindows(size=10, grace=-1),
        lambda: SessionWindows(gap=10, grace=-1),
        lambda: JoinWindows.of(10, grace=-1),
    ],
)
def test_negative_grace_is_rejected(make: Callable[[], object]) -> None:
    with pytest.raises(TopologyError, match="grace must be zero or positive, got -1 ms"):
        make()


def test_window_shapes_are_checked() -> None:
    with pytest.raises(TopologyError, match=r"advance \(20 ms\) cannot exceed its size"):
        HoppingWindows(size=10, advance=20)
    with pytest.raises(TopologyError, match="window size must be a positive"):
        TumblingWindows(size=0)
    with pytest.raises(TopologyError, match="session gap must be a positive"):
        SessionWindows(gap=-5)
    with pytest.raises(TopologyError, match="join window bounds must be >= 0"):
        JoinWindows(before=-1, after=10)


def test_windowed_aggregate_options_are_checked() -> None:
    windowed = StreamsBuilder().stream("in").group_by_key().windowed_by(TumblingWindows(10))
    with pytest.raises(TopologyError, match="emit must be 'update' or 'final'"):
        windowed.count(name="c", emit="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match="idle_close_ms must be positive"):
        windowed.count(name="c", idle_close_ms=0)


def test_session_aggregate_needs_a_merger() -> None:
    windowed = StreamsBuilder().stream("in").group_by_key().windowed_by(SessionWindows(gap=10))
    with pytest.raises(TopologyError, match="'sessions' needs merger="):
        windowed.aggregate(lambda: 0, lambda k, v, a: a + 1, name="sessions")


def test_group_by_key_after_a_key_change_needs_a_name() -> None:
    b = StreamsBuilder()
    mapped = b.stream("in").map(lambda k, v: (v, k))
    with pytest.raises(TopologyError, match="give it a stable name"):
        mapped.group_by_key()
    # merging a re-keyed stream taints the merge too
    merged = b.stream("other").merge(mapped)
    with pytest.raises(TopologyError, match="give it a stable name"):
        merged.group_by_key()


def test_joins_after_a_key_change_are_rejected() -> None:
    b = StreamsBuilder()
    table = b.table("t")
    rekeyed = b.stream("in").flat_map(lambda k, v: [(v, k)])
    with pytest.raises(TopologyError, match="a stream-table join after a key-changing step"):
        rekeyed.join(table, lambda a, c: a, name="j")
    with pytest.raises(TopologyError, match="a stream-stream join after a key-changing step"):
        b.stream("x").join(rekeyed, lambda a, c: a, name="j2", windows=JoinWindows.of(5))


def test_stream_table_join_rejects_outer_and_key_selector() -> None:
    b = StreamsBuilder()
    table = b.table("t")
    with pytest.raises(TopologyError, match="inner or left, on the stream's key"):
        b.stream("in").join(table, lambda a, c: a, name="j", key_selector=lambda k, v: v)


def test_stream_with_no_topics_is_rejected() -> None:
    with pytest.raises(TopologyError, match="at least one topic"):
        StreamsBuilder().stream([])


def test_a_topic_can_be_read_only_once() -> None:
    b = StreamsBuilder()
    b.stream("in").to("a")
    b.stream("in").to("b")
    with pytest.raises(TopologyError, match="topic 'in' is read by both"):
        b.build()
    b2 = StreamsBuilder()
    b2.table("in").to_stream().to("a")
    b2.stream("in").to("b")
    with pytest.raises(TopologyError, match="topic 'in' is read by both"):
        b2.build()


def test_one_stream_may_read_several_topics() -> None:
    b = StreamsBuilder()
    b.stream(["a", "b"]).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("a", "k", 1, timestamp=0)
        d.pipe("b", "k", 2, timestamp=0)
        assert d.read_values("out") == [1, 2]


# --- co-partitioning ------------------------------------------------------------------------


def test_non_copartitioned_stream_table_join_is_rejected() -> None:
    b = StreamsBuilder()
    b.stream("a").join(b.table("b"), lambda x, y: x, name="j").to("out")
    topology = b.build()
    with pytest.raises(TopologyError, match=r"not co-partitioned \(a=2, b=3\)"):
        TopologyTestDriver(topology, partitions={"a": 2, "b": 3})
    with pytest.raises(TopologyError, match="not co-partitioned"):
        topology.validate_partitions({"a": 2, "b": 3}, "app")
    topology.validate_partitions({"a": 3, "b": 3}, "app")


def test_repartition_topics_are_checked_for_copartitioning_too() -> None:
    b = StreamsBuilder()
    table = b.table("t")
    b.stream("in").select_key(lambda k, v: v).repartition(name="rk").join(
        table, lambda x, y: x, name="j"
    ).to("out")
    with pytest.raises(TopologyError, match="app-rk-repartition=2, t=4"):
        TopologyTestDriver(b.build(), app_id="app", partitions={"app-rk-repartition": 2, "t": 4})


# --- describe ------------------------------------------------------------------------------------


def test_describe_lists_subtopologies_stores_sinks_and_internal_topics() -> None:
    b = StreamsBuilder()
    b.global_table("customers", name="customer-store")
    tx = b.stream("tx", name="tx-source")
    tx.filter(lambda k, v: True, name="valid").group_by(
        lambda k, v: v["merchant"], name="by-merchant"
    ).count(name="per-merchant").to_stream(name="counts-stream").to("counts", name="counts-sink")
    text = b.build().describe("app")
    assert text == "\n".join(
        [
            "Topologies:",
            "  Sub-topology: 0",
            "    Source: tx-source (topics: [tx])",
            "      --> valid",
            "    Processor: valid [filter]",
            "      --> select-key-0001",
            "    Processor: select-key-0001 [select-key]",
            "      --> by-merchant-repartition-sink",
            "    Sink: by-merchant-repartition-sink (topic: by-merchant-repartition (internal))",
            "  Sub-topology: 1",
            "    Source: by-merchant-repartition-source (topics: [by-merchant-repartition "
            "(internal)])",
            "      --> per-merchant",
            "    Processor: per-merchant [count] (stores: [per-merchant])",
            "      --> counts-stream",
            "    Processor: counts-stream [to-stream]",
            "      --> counts-sink",
            "    Sink: counts-sink (topic: counts)",
            "  Global tables:",
            "    customer-store (topic: customers)",
            "  Stores:",
            "    per-merchant [key-value] changelog: app-per-merchant-changelog",
            "  Internal topics:",
            "    app-by-merchant-repartition (repartition)",
            "    app-per-merchant-changelog (changelog)",
        ]
    )


def test_describe_shows_windows_and_window_stores() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().windowed_by(HoppingWindows(100, 50, grace=10)).count(
        name="hop", emit="final", late_topic="late"
    ).to_stream().to("out")
    text = b.build().describe()
    assert (
        "Processor: hop-aggregate [windowed-aggregate] "
        "hopping(size=100ms, advance=50ms, grace=10ms) emit=final (stores: [hop])"
    ) in text
    assert "      --> hop-late, to-stream-0003" in text
    assert "hop [window] changelog: <app-id>-hop-changelog" in text


def test_topology_lookups() -> None:
    b = StreamsBuilder()
    b.stream("in", name="src").to("out", name="sink")
    topology = b.build()
    assert topology.children("src") == ["sink"]
    assert topology.sink_topics() == {topology.node("sink").topic}  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="no step named 'nope'"):
        topology.node("nope")
    with pytest.raises(KeyError, match="no store named 'nope'"):
        topology.store("nope")
