"""Every join kind through the driver: stream-table, stream-global-table, windowed
stream-stream (inner, left, outer) and table-table (inner, left, outer)."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import JoinWindows, StreamsBuilder
from streamer.errors import TopologyError
from streamer.serde import StringSerde
from streamer.testing import TopologyTestDriver


def pair(left: Any, right: Any) -> str:
    return f"{left}+{right}"


def outputs(d: TopologyTestDriver, topic: str = "out") -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in d.read_output(topic)]


# --- stream-table ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_stream_table_join_uses_the_table_value_at_the_time_of_each_record(kind: str) -> None:
    b = StreamsBuilder()
    prices = b.table("prices")
    orders = b.stream("orders")
    if kind == "inner":
        joined = orders.join(prices, pair, name="priced")
    else:
        joined = orders.left_join(prices, pair, name="priced")
    joined.to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("orders", "apple", "o1", timestamp=1)  # no price yet
        d.pipe("prices", "apple", 10, timestamp=2)
        d.pipe("orders", "apple", "o2", timestamp=3)
        d.pipe("prices", "apple", 12, timestamp=4)  # updated mid-stream
        d.pipe("orders", "apple", "o3", timestamp=5)
        d.pipe("prices", "apple", None, timestamp=6)  # deleted
        d.pipe("orders", "apple", "o4", timestamp=7)
        d.pipe("orders", "pear", "o5", timestamp=8)
        matched = [("apple", "o2+10", 3), ("apple", "o3+12", 5)]
        if kind == "inner":
            assert outputs(d) == matched
            assert d.counters()["join-unmatched-dropped"] == 3
        else:
            assert outputs(d) == [
                ("apple", "o1+None", 1),
                *matched,
                ("apple", "o4+None", 7),
                ("pear", "o5+None", 8),
            ]
            assert "join-unmatched-dropped" not in d.counters()


def test_table_updates_alone_produce_no_join_output() -> None:
    b = StreamsBuilder()
    b.stream("orders").join(b.table("prices"), pair, name="priced").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("prices", "apple", 10, timestamp=1)
        d.pipe("prices", "apple", 11, timestamp=2)
        assert outputs(d) == []


def test_stream_table_join_skips_null_keys_and_values() -> None:
    b = StreamsBuilder()
    b.stream("orders").left_join(b.table("prices"), pair, name="priced").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("orders", None, "o1", timestamp=1)
        d.pipe("orders", "apple", None, timestamp=1)
        assert outputs(d) == []
        assert d.counters()["join-null-key-or-value-skipped"] == 2


def test_stream_table_join_across_partitions_pairs_equal_keys() -> None:
    b = StreamsBuilder()
    b.stream("orders").join(b.table("prices"), pair, name="priced").to("out")
    keys = [f"item-{i}" for i in range(10)]
    with TopologyTestDriver(b.build(), partitions={"orders": 3, "prices": 3}) as d:
        for i, key in enumerate(keys):
            d.pipe("prices", key, i, timestamp=0)
        for key in keys:
            d.pipe("orders", key, "o", timestamp=1)
        assert d.read_key_values("out") == [(key, f"o+{i}") for i, key in enumerate(keys)]


def test_joined_values_use_the_default_value_serde() -> None:
    b = StreamsBuilder()
    b.stream("orders", value_serde=StringSerde()).join(
        b.table("prices", value_serde=StringSerde()),
        lambda order, price: {"order": order, "price": price},
        name="j",
    ).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("prices", "k", "10", timestamp=0)
        d.pipe("orders", "k", "o1", timestamp=0)
        assert d.read_key_values("out") == [("k", {"order": "o1", "price": "10"})]


def test_stream_table_join_after_a_key_change_needs_a_repartition() -> None:
    b = StreamsBuilder()
    prices = b.table("prices")
    rekeyed = b.stream("orders").select_key(lambda k, v: v["item"])
    with pytest.raises(TopologyError, match=r"repartition\(name=\.\.\.\)"):
        rekeyed.join(prices, pair, name="priced")
    rekeyed.repartition(name="by-item").join(prices, pair, name="priced").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("prices", "apple", 3, timestamp=0)
        d.pipe("orders", "order-1", {"item": "apple"}, timestamp=1)
        assert d.read_key_values("out") == [("apple", "{'item': 'apple'}+3")]


# --- stream-global-table ------------------------------------------------------------------


def test_stream_global_table_join_with_key_selector() -> None:
    b = StreamsBuilder()
    customers = b.global_table("customers")
    orders = b.stream("orders")
    orders.join(
        customers, lambda o, c: f"{o['id']}:{c}", key_selector=lambda k, v: v["customer"], name="i"
    ).to("inner")
    orders.left_join(
        customers, lambda o, c: f"{o['id']}:{c}", key_selector=lambda k, v: v["customer"], name="l"
    ).to("left")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("customers", "c1", "Ann", timestamp=0)
        d.pipe("orders", "o1", {"id": 1, "customer": "c1"}, timestamp=1)
        d.pipe("orders", "o2", {"id": 2, "customer": "c2"}, timestamp=2)
        d.pipe("customers", "c2", "Bob", timestamp=3)
        d.pipe("orders", "o3", {"id": 3, "customer": "c2"}, timestamp=4)
        assert outputs(d, "inner") == [("o1", "1:Ann", 1), ("o3", "3:Bob", 4)]
        assert outputs(d, "left") == [("o1", "1:Ann", 1), ("o2", "2:None", 2), ("o3", "3:Bob", 4)]


def test_stream_global_table_join_needs_no_repartition_after_a_key_change() -> None:
    b = StreamsBuilder()
    customers = b.global_table("customers")
    b.stream("orders").select_key(lambda k, v: v).join(customers, pair, name="j").to("out")
    topology = b.build()
    assert len(topology.subtopologies) == 1
    with TopologyTestDriver(topology) as d:
        d.pipe("customers", "c1", "Ann", timestamp=0)
        d.pipe("orders", "o1", "c1", timestamp=0)
        assert d.read_key_values("out") == [("c1", "c1+Ann")]


# --- stream-stream ------------------------------------------------------------------------------


def stream_join(kind: str, windows: JoinWindows) -> StreamsBuilder:
    b = StreamsBuilder()
    left = b.stream("left")
    right = b.stream("right")
    if kind == "inner":
        joined = left.join(right, pair, windows=windows, name="j")
    elif kind == "left":
        joined = left.left_join(right, pair, windows=windows, name="j")
    else:
        joined = left.outer_join(right, pair, windows=windows, name="j")
    joined.to("out")
    return b


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_stream_stream_join_matches_within_the_window_only(kind: str) -> None:
    with TopologyTestDriver(stream_join(kind, JoinWindows.of(100)).build()) as d:
        d.pipe("left", "k", "a", timestamp=1000)
        d.pipe("right", "k", "x", timestamp=1050)  # 50 after a: joins
        d.pipe("right", "k", "y", timestamp=1101)  # 101 after a: too far
        d.pipe("left", "k", "b", timestamp=1150)  # joins x (100 before) and y
        d.pipe("right", "other", "z", timestamp=1150)  # another key
        assert outputs(d) == [
            ("k", "a+x", 1050),
            ("k", "b+x", 1150),
            ("k", "b+y", 1150),
        ]


def test_asymmetric_join_window() -> None:
    # right.ts - left.ts must lie in [0, 100]
    windows = JoinWindows(before=0, after=100, grace=50)
    with TopologyTestDriver(stream_join("inner", windows).build()) as d:
        d.pipe("left", "k", "a", timestamp=1000)
        d.pipe("right", "k", "early", timestamp=990)
        d.pipe("right", "k", "same", timestamp=1000)
        d.pipe("right", "k", "edge", timestamp=1100)
        d.pipe("right", "k", "after", timestamp=1101)
        assert [v for _, v, _ in outputs(d)] == ["a+same", "a+edge"]
        assert "late-records" not in d.counters()


def test_left_join_emits_unmatched_left_records_when_their_window_closes() -> None:
    with TopologyTestDriver(stream_join("left", JoinWindows.of(100)).build()) as d:
        d.pipe("left", "k", "a", timestamp=1000)
        d.pipe("left", "j", "b", timestamp=1000)
        d.pipe("right", "k", "x", timestamp=1050)
        assert outputs(d) == [("k", "a+x", 1050)]
        d.pipe("right", "k", "y", timestamp=1100)  # stream time 1100: b may still match
        assert outputs(d) == [("k", "a+y", 1100)]
        d.pipe("right", "q", "z", timestamp=1101)  # now b's window is closed
        assert outputs(d) == [("j", "b+None", 1000)]
        d.pipe("left", "q", "c", timestamp=1500)  # right z expires, but left joins drop it
        assert outputs(d) == []


def test_outer_join_emits_unmatched_records_of_both_sides_once() -> None:
    with TopologyTestDriver(stream_join("outer", JoinWindows.of(100)).build()) as d:
        d.pipe("left", "k", "a", timestamp=1000)
        d.pipe("left", "j", "b", timestamp=1000)
        d.pipe("right", "k", "x", timestamp=1050)
        d.pipe("right", "q", "z", timestamp=1101)
        assert outputs(d) == [("k", "a+x", 1050), ("j", "b+None", 1000)]
        d.pipe("left", "q", "late-partner", timestamp=1300)  # z's window closed at 1201
        assert outputs(d) == [("q", "None+z", 1101)]
        d.pipe("right", "w", "flush", timestamp=2000)
        assert outputs(d) == [("q", "late-partner+None", 1300)]
        # nothing is emitted twice
        d.pipe("right", "w", "flush", timestamp=5000)
        assert outputs(d) == [("w", "None+flush", 2000)]


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_a_right_record_arriving_first_is_matched_later(kind: str) -> None:
    with TopologyTestDriver(stream_join(kind, JoinWindows.of(100)).build()) as d:
        d.pipe("right", "k", "x", timestamp=1000)
        d.pipe("left", "k", "a", timestamp=1060)
        d.pipe("left", "k", "b", timestamp=1100)
        d.pipe("left", "z", "flush", timestamp=2000)
        assert outputs(d) == [("k", "a+x", 1060), ("k", "b+x", 1100)]
        d.pipe("right", "z", "end", timestamp=5000)
        # a, b and x expired matched: only the unmatched flush record comes out
        assert outputs(d) == ([] if kind == "inner" else [("z", "flush+None", 2000)])


def test_stream_stream_join_across_partitions() -> None:
    b = stream_join("inner", JoinWindows.of(10))
    keys = [f"k{i}" for i in range(12)]
    with TopologyTestDriver(b.build(), partitions={"left": 3, "right": 3}) as d:
        for key in keys:
            d.pipe("left", key, "L", timestamp=100)
        for key in keys:
            d.pipe("right", key, "R", timestamp=105)
        assert d.read_key_values("out") == [(key, "L+R") for key in keys]


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_late_records_are_dropped_and_counted(kind: str) -> None:
    with TopologyTestDriver(stream_join(kind, JoinWindows.of(100, grace=20)).build()) as d:
        d.pipe("left", "k", "a", timestamp=1000)
        d.pipe("right", "k", "on-time", timestamp=980)  # 20 behind stream time: within grace
        d.pipe("right", "k", "late", timestamp=979)  # 21 behind: late
        d.pipe("left", "k", "late-too", timestamp=900)
        assert outputs(d) == [("k", "a+on-time", 1000)]
        assert d.counters()["late-records"] == 2
        d.pipe("right", "z", "flush", timestamp=10_000)
        flushed = [v for _, v, _ in outputs(d)]
        # late records never come back as unmatched results
        assert "late+None" not in flushed
        assert "None+late" not in flushed


def test_stream_stream_join_skips_null_keys_and_values() -> None:
    with TopologyTestDriver(stream_join("outer", JoinWindows.of(100)).build()) as d:
        d.pipe("left", None, "a", timestamp=1)
        d.pipe("right", "k", None, timestamp=1)
        d.pipe("right", "z", "flush", timestamp=10_000)
        assert outputs(d) == []
        assert d.counters()["join-null-key-or-value-skipped"] == 2


def test_stream_stream_join_buffers_are_emptied_once_windows_close() -> None:
    with TopologyTestDriver(stream_join("inner", JoinWindows.of(100)).build()) as d:
        d.pipe("left", "k", "a", timestamp=1000)
        d.pipe("right", "k", "x", timestamp=1000)
        assert len(list(d.store("j-left").all())) == 1
        d.pipe("left", "z", "flush", timestamp=2000)
        assert [(k, t) for k, t, _ in d.store("j-left").all()] == [("z", 2000)]
        assert list(d.store("j-right").all()) == []


def test_several_records_with_the_same_key_and_timestamp_all_join() -> None:
    with TopologyTestDriver(stream_join("inner", JoinWindows.of(0)).build()) as d:
        d.pipe("left", "k", "a1", timestamp=5)
        d.pipe("left", "k", "a2", timestamp=5)
        d.pipe("right", "k", "x", timestamp=5)
        assert [v for _, v, _ in outputs(d)] == ["a1+x", "a2+x"]


def test_stream_stream_join_needs_windows_and_copartitioned_inputs() -> None:
    b = StreamsBuilder()
    left, right = b.stream("left"), b.stream("right")
    with pytest.raises(TopologyError, match="needs windows"):
        left.join(right, pair, name="j")
    with pytest.raises(TopologyError, match="key-changing step"):
        left.join(right.select_key(lambda k, v: v), pair, name="j2", windows=JoinWindows.of(1))


def test_stream_stream_join_stores_and_topics() -> None:
    topology = stream_join("outer", JoinWindows.of(100)).build()
    assert {s.name for s in topology.stores} == {"j-left", "j-right"}
    assert topology.internal_topics("app") == {
        "app-j-left-changelog": "changelog",
        "app-j-right-changelog": "changelog",
    }
    assert len(topology.subtopologies) == 1
    assert "join(before=100ms, after=100ms, grace=0ms)" in topology.describe()


# --- table-table ----------------------------------------------------------------------------------


def table_join(kind: str) -> StreamsBuilder:
    b = StreamsBuilder()
    left, right = b.table("l"), b.table("r")
    if kind == "inner":
        joined = left.join(right, pair, name="j")
    elif kind == "left":
        joined = left.left_join(right, pair, name="j")
    else:
        joined = left.outer_join(right, pair, name="j")
    joined.to_stream().to("out")
    return b


def play_table_join(d: TopologyTestDriver) -> None:
    d.pipe("r", "k", "r1", timestamp=1)  # right only
    d.pipe("l", "k", "l1", timestamp=2)  # both
    d.pipe("r", "k", "r2", timestamp=3)  # right updated
    d.pipe("l", "k", "l2", timestamp=4)  # left updated
    d.pipe("r", "k", None, timestamp=5)  # right deleted
    d.pipe("l", "k", None, timestamp=6)  # left deleted: nothing left
    d.pipe("r", "x", "rx", timestamp=7)  # right only, another key
    d.pipe("r", "x", None, timestamp=8)  # and gone again


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "inner",
            [("k", "l1+r1"), ("k", "l1+r2"), ("k", "l2+r2"), ("k", None)],
        ),
        (
            "left",
            [("k", "l1+r1"), ("k", "l1+r2"), ("k", "l2+r2"), ("k", "l2+None"), ("k", None)],
        ),
        (
            "outer",
            [
                ("k", "None+r1"),
                ("k", "l1+r1"),
                ("k", "l1+r2"),
                ("k", "l2+r2"),
                ("k", "l2+None"),
                ("k", None),
                ("x", "None+rx"),
                ("x", None),
            ],
        ),
    ],
)
def test_table_table_join_updates_and_deletes_on_both_sides(
    kind: str, expected: list[tuple[str, Any]]
) -> None:
    with TopologyTestDriver(table_join(kind).build()) as d:
        play_table_join(d)
        assert d.read_key_values("out") == expected


def test_table_table_inner_join_deletes_the_row_when_the_left_side_goes() -> None:
    with TopologyTestDriver(table_join("inner").build()) as d:
        d.pipe("l", "k", "l1", timestamp=1)
        d.pipe("r", "k", "r1", timestamp=2)
        d.pipe("l", "k", None, timestamp=3)
        d.pipe("r", "k", "r2", timestamp=4)  # no left row: still no joined row
        assert d.read_key_values("out") == [("k", "l1+r1"), ("k", None)]


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_joined_table_view_answers_lookups(kind: str) -> None:
    b = StreamsBuilder()
    left, right = b.table("l"), b.table("r")
    joined = getattr(left, {"inner": "join", "left": "left_join", "outer": "outer_join"}[kind])(
        right, pair, name="j"
    )
    b.stream("probe").left_join(joined, lambda probe, row: row, name="lookup").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("l", "both", "L", timestamp=0)
        d.pipe("r", "both", "R", timestamp=0)
        d.pipe("l", "left-only", "L", timestamp=0)
        d.pipe("r", "right-only", "R", timestamp=0)
        for key in ("both", "left-only", "right-only", "none"):
            d.pipe("probe", key, "?", timestamp=0)
        expected = {
            "inner": ["L+R", None, None, None],
            "left": ["L+R", "L+None", None, None],
            "outer": ["L+R", "L+None", "None+R", None],
        }[kind]
        assert d.read_values("out") == expected


def test_table_table_join_of_derived_tables() -> None:
    b = StreamsBuilder()
    big = b.table("l").filter(lambda k, v: v >= 10)
    doubled = b.table("r").map_values(lambda v: v * 2)
    big.join(doubled, lambda a, c: a + c, name="j").to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("r", "k", 1, timestamp=0)
        d.pipe("l", "k", 5, timestamp=0)  # filtered out: no row
        d.pipe("l", "k", 20, timestamp=0)
        d.pipe("r", "k", 2, timestamp=0)
        d.pipe("l", "k", 6, timestamp=0)  # filtered out again: the row goes
        # Tables forward no old values, so a filtered-out row reaches the join as a deletion
        # even when it never passed: the first tombstone is for a row that never existed.
        assert d.read_key_values("out") == [("k", None), ("k", 22), ("k", 24), ("k", None)]


def test_table_table_join_names_and_copartitioning() -> None:
    b = table_join("outer")
    with pytest.raises(TopologyError, match="duplicate step name 'j'"):
        b.table("a").join(b.table("b"), pair, name="j")
    b2 = table_join("inner")
    with pytest.raises(TopologyError, match="not co-partitioned"):
        TopologyTestDriver(b2.build(), partitions={"l": 2, "r": 4})
