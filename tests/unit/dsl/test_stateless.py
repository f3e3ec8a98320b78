"""Stateless stream operators, branching, merging, sinks and repartitioning, through the driver."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.serde import IntegerSerde, JsonSerde, LongSerde, StringSerde
from streamer.testing import TopologyTestDriver


def run(builder: StreamsBuilder, topic: str, records: list[tuple[Any, Any]]) -> TopologyTestDriver:
    driver = TopologyTestDriver(builder.build())
    for ts, (key, value) in enumerate(records):
        driver.pipe(topic, key, value, timestamp=ts)
    return driver


def test_filter_keeps_matching_records_in_order() -> None:
    b = StreamsBuilder()
    b.stream("in").filter(lambda k, v: v["n"] % 2 == 0).to("out")
    with run(b, "in", [("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 4})]) as d:
        assert d.read_key_values("out") == [("b", {"n": 2}), ("c", {"n": 4})]


def test_filter_not_drops_matching_records() -> None:
    b = StreamsBuilder()
    b.stream("in").filter_not(lambda k, v: k == "b").to("out")
    with run(b, "in", [("a", 1), ("b", 2), ("c", 3)]) as d:
        assert d.read_key_values("out") == [("a", 1), ("c", 3)]


def test_map_changes_key_and_value_and_keeps_timestamp_and_headers() -> None:
    b = StreamsBuilder()
    b.stream("in").map(lambda k, v: (v["user"], {"from": k})).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k1", {"user": "u1"}, timestamp=42, headers=[("h", b"x")])
        (record,) = d.read_output("out")
        assert (record.key, record.value, record.timestamp) == ("u1", {"from": "k1"}, 42)
        assert record.headers == (("h", b"x"),)


def test_map_values_and_map_values_with_key() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    s.map_values(lambda v: v * 10).to("plain")
    s.map_values_with_key(lambda k, v: f"{k}={v}").to("keyed")
    with run(b, "in", [("a", 1), ("b", 2)]) as d:
        assert d.read_key_values("plain") == [("a", 10), ("b", 20)]
        assert d.read_key_values("keyed") == [("a", "a=1"), ("b", "b=2")]


def test_flat_map_emits_every_pair_in_order() -> None:
    b = StreamsBuilder()
    b.stream("in").flat_map(lambda k, v: [(w, len(w)) for w in v.split()]).to("out")
    with run(b, "in", [("line", "to be or"), ("empty", "")]) as d:
        assert d.read_key_values("out") == [("to", 2), ("be", 2), ("or", 2)]


def test_flat_map_values_keeps_the_key() -> None:
    b = StreamsBuilder()
    b.stream("in").flat_map_values(lambda v: list(range(v))).to("out")
    with run(b, "in", [("a", 2), ("b", 0), ("c", 1)]) as d:
        assert d.read_key_values("out") == [("a", 0), ("a", 1), ("c", 0)]


def test_peek_sees_every_record_and_passes_it_unchanged() -> None:
    seen: list[tuple[Any, Any]] = []
    b = StreamsBuilder()
    b.stream("in").peek(lambda k, v: seen.append((k, v))).to("out")
    with run(b, "in", [("a", 1), ("b", None)]) as d:
        assert d.read_key_values("out") == [("a", 1), ("b", None)]
    assert seen == [("a", 1), ("b", None)]


def test_select_key_replaces_only_the_key() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: v["id"]).to("out")
    with run(b, "in", [("x", {"id": "1"}), (None, {"id": "2"})]) as d:
        assert d.read_key_values("out") == [("1", {"id": "1"}), ("2", {"id": "2"})]


def test_chained_operators_run_in_order() -> None:
    b = StreamsBuilder()
    (
        b.stream("in")
        .filter(lambda k, v: v > 0)
        .map_values(lambda v: v + 1)
        .filter_not(lambda k, v: v == 3)
        .map(lambda k, v: (k.upper(), v * 2))
        .to("out")
    )
    with run(b, "in", [("a", -1), ("b", 1), ("c", 2), ("d", 5)]) as d:
        assert d.read_key_values("out") == [("B", 4), ("D", 12)]


# --- branch and merge ---------------------------------------------------------------------


def test_branch_sends_each_record_to_the_first_matching_branch_or_the_default() -> None:
    b = StreamsBuilder()
    branches = b.stream("in").branch(
        {"big": lambda k, v: v >= 100, "medium": lambda k, v: v >= 10},
        default="small",
        name="size",
    )
    assert sorted(branches) == ["big", "medium", "small"]
    for label, stream in branches.items():
        stream.to(f"out-{label}")
    with run(b, "in", [("a", 500), ("b", 50), ("c", 5), ("d", 100)]) as d:
        assert d.read_key_values("out-big") == [("a", 500), ("d", 100)]
        assert d.read_key_values("out-medium") == [("b", 50)]
        assert d.read_key_values("out-small") == [("c", 5)]
        assert "branch-unmatched" not in d.counters()
    topology = b.build()
    assert {"size", "size-big", "size-medium", "size-small"} <= {n.name for n in topology.nodes}


def test_branch_without_default_counts_unmatched_records() -> None:
    b = StreamsBuilder()
    branches = b.stream("in").branch({"even": lambda k, v: v % 2 == 0})
    branches["even"].to("even")
    with run(b, "in", [("a", 1), ("b", 2), ("c", 3)]) as d:
        assert d.read_key_values("even") == [("b", 2)]
        assert d.counters()["branch-unmatched"] == 2


def test_merge_interleaves_streams_in_arrival_order() -> None:
    b = StreamsBuilder()
    left = b.stream("left").map_values(lambda v: f"L{v}")
    right = b.stream("right").map_values(lambda v: f"R{v}")
    left.merge(right).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("left", "k", 1, timestamp=1)
        d.pipe("right", "k", 2, timestamp=2)
        d.pipe("left", "k", 3, timestamp=3)
        assert d.read_values("out") == ["L1", "R2", "L3"]


def test_merged_branches_come_back_together() -> None:
    b = StreamsBuilder()
    parts = b.stream("in").branch({"neg": lambda k, v: v < 0}, default="rest", name="sign")
    parts["neg"].map_values(lambda v: -v).merge(parts["rest"], name="abs").to("out")
    with run(b, "in", [("a", -3), ("b", 4)]) as d:
        assert d.read_key_values("out") == [("a", 3), ("b", 4)]


# --- sinks and serdes -----------------------------------------------------------------------


def test_to_uses_the_given_serdes_on_the_wire() -> None:
    b = StreamsBuilder()
    s = b.stream("in", value_serde=JsonSerde())
    s.map_values(lambda v: v["n"]).to("longs", value_serde=LongSerde())
    s.to("ints", key_serde=StringSerde(), value_serde=JsonSerde())
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", {"n": 7}, timestamp=0)
        (raw,) = d.read_output("longs", value_serde=_Raw())
        assert raw.key == "k"
        assert raw.value == (7).to_bytes(8, "big")
        assert d.read_key_values("ints") == [("k", {"n": 7})]


def test_source_serdes_decode_the_input() -> None:
    b = StreamsBuilder()
    b.stream("in", key_serde=IntegerSerde(), value_serde=StringSerde()).map_values(
        lambda v: v.upper()
    ).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_raw("in", (5).to_bytes(4, "big"), b"hello", timestamp=0)
        (record,) = d.read_output("out")
        assert (record.key, record.value) == (5, "HELLO")


def test_a_stream_keeps_its_value_serde_until_the_value_changes() -> None:
    b = StreamsBuilder()
    s = b.stream("in", value_serde=StringSerde())
    s.filter(lambda k, v: True).to("same")
    s.map_values(lambda v: {"v": v}).to("changed")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", "text", timestamp=0)
        assert d.read_output("same", value_serde=_Raw())[0].value == b"text"
        assert d.read_output("changed", value_serde=_Raw())[0].value == b'{"v":"text"}'


def test_an_intermediate_topic_feeds_the_next_sub_topology() -> None:
    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: v + 1).to("middle")
    b.stream("middle").map_values(lambda v: v * 2).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=0)
        assert d.read_key_values("middle") == [("k", 2)]
        assert d.read_key_values("out") == [("k", 4)]


class _Raw:
    """Leaves bytes as they are, to check what went over the wire."""

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data


# --- repartitioning ---------------------------------------------------------------------------


def test_group_by_writes_to_the_repartition_topic_and_aggregates_by_the_new_key() -> None:
    b = StreamsBuilder()
    (
        b.stream("tx")
        .group_by(lambda k, v: v["merchant"], name="by-merchant")
        .count(name="merchant-count")
        .to_stream()
        .to("counts", value_serde=LongSerde())
    )
    with TopologyTestDriver(b.build(), app_id="shop") as d:
        d.pipe("tx", "c1", {"merchant": "m1"}, timestamp=1)
        d.pipe("tx", "c2", {"merchant": "m2"}, timestamp=2)
        d.pipe("tx", "c3", {"merchant": "m1"}, timestamp=3)
        repartitioned = d.read_output("shop-by-merchant-repartition")
        assert [(r.key, r.value, r.timestamp) for r in repartitioned] == [
            ("m1", {"merchant": "m1"}, 1),
            ("m2", {"merchant": "m2"}, 2),
            ("m1", {"merchant": "m1"}, 3),
        ]
        assert d.read_key_values("counts") == [("m1", 1), ("m2", 1), ("m1", 2)]
        assert d.store("merchant-count").get("m1") == 2


def test_repartition_spreads_keys_over_tasks_and_each_key_is_counted_in_one() -> None:
    b = StreamsBuilder()
    (
        b.stream("tx")
        .select_key(lambda k, v: v["merchant"])
        .group_by_key(name="rekey")
        .count(name="cnt")
        .to_stream()
        .to("counts")
    )
    partitions = {"tx": 4, "test-app-rekey-repartition": 4}
    merchants = [f"m{i}" for i in range(8)]
    with TopologyTestDriver(b.build(), partitions=partitions) as d:
        for i, merchant in enumerate(merchants * 2):
            d.pipe("tx", f"card-{i}", {"merchant": merchant}, timestamp=i)
        counts = d.read_key_values("counts")
        assert counts == [(m, 1) for m in merchants] + [(m, 2) for m in merchants]
        tasks = set(d._tasks)
        assert {sub for sub, _ in tasks} == {0, 1}
        assert len({p for sub, p in tasks if sub == 1}) > 1, "keys should reach several tasks"
        found = {m: [d.store("cnt", partition=p).get(m) for p in range(4)] for m in merchants}
        for merchant, per_partition in found.items():
            assert sorted(per_partition, key=lambda c: c is None) == [2, None, None, None], merchant


def test_explicit_repartition_routes_through_the_internal_topic() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: v).repartition(name="by-value").to("out")
    with TopologyTestDriver(b.build(), app_id="app") as d:
        d.pipe("in", "k", "v", timestamp=5)
        assert d.read_key_values("app-by-value-repartition") == [("v", "v")]
        assert d.read_key_values("out") == [("v", "v")]


def test_group_by_key_without_key_change_does_not_repartition() -> None:
    b = StreamsBuilder()
    b.stream("in").filter(lambda k, v: True).group_by_key().count(name="cnt")
    topology = b.build()
    assert len(topology.subtopologies) == 1
    assert topology.internal_topics("app") == {"app-cnt-changelog": "changelog"}


@pytest.mark.parametrize(
    ("op", "expected"),
    [("map", ("v", "k")), ("select_key", ("v", "v")), ("flat_map", ("v", "k"))],
)
def test_key_changing_steps_force_a_named_repartition(op: str, expected: tuple[str, str]) -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    if op == "map":
        s = s.map(lambda k, v: (v, k))
    elif op == "select_key":
        s = s.select_key(lambda k, v: v)
    else:
        s = s.flat_map(lambda k, v: [(v, k)])
    s.group_by_key(name="rp").count(name="cnt").to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", "v", timestamp=0)
        assert d.read_key_values("test-app-rp-repartition") == [expected]
        assert d.read_key_values("out") == [("v", 1)]
