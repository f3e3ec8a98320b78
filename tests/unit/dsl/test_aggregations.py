"""Key-value aggregations (count, reduce, aggregate): results, store contents, changelogs."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer import StreamsBuilder
from streamer.serde import JsonSerde, LongSerde, StringSerde
from streamer.testing import TopologyTestDriver


def amounts() -> StreamsBuilder:
    b = StreamsBuilder()
    grouped = b.stream("tx").map_values(lambda v: v["amount"]).group_by_key()
    grouped.count(name="count").to_stream().to("counts")
    grouped.reduce(lambda agg, v: agg + v, name="total").to_stream().to("totals")
    grouped.aggregate(
        lambda: {"n": 0, "max": None},
        lambda k, v, agg: {
            "n": agg["n"] + 1,
            "max": v if agg["max"] is None else max(v, agg["max"]),
        },
        name="stats",
    ).to_stream().to("stats")
    return b


def test_count_reduce_and_aggregate_forward_every_update() -> None:
    with TopologyTestDriver(amounts().build()) as d:
        d.pipe("tx", "a", {"amount": 5}, timestamp=1)
        d.pipe("tx", "b", {"amount": 7}, timestamp=2)
        d.pipe("tx", "a", {"amount": 3}, timestamp=3)
        assert d.read_key_values("counts") == [("a", 1), ("b", 1), ("a", 2)]
        assert d.read_key_values("totals") == [("a", 5), ("b", 7), ("a", 8)]
        assert d.read_key_values("stats") == [
            ("a", {"n": 1, "max": 5}),
            ("b", {"n": 1, "max": 7}),
            ("a", {"n": 2, "max": 5}),
        ]


def test_aggregation_results_keep_the_input_timestamp() -> None:
    with TopologyTestDriver(amounts().build()) as d:
        d.pipe("tx", "a", {"amount": 5}, timestamp=10)
        d.pipe("tx", "a", {"amount": 5}, timestamp=4)
        assert [(r.value, r.timestamp) for r in d.read_output("totals")] == [(5, 10), (10, 4)]


def test_aggregates_are_readable_from_their_stores() -> None:
    with TopologyTestDriver(amounts().build()) as d:
        for key, amount in [("a", 1), ("a", 2), ("b", 10)]:
            d.pipe("tx", key, {"amount": amount}, timestamp=0)
        assert d.store("count").get("a") == 2
        assert d.store("total").get("b") == 10
        assert d.store("stats").get("a") == {"n": 2, "max": 2}
        assert sorted(d.store("count").items()) == [("a", 2), ("b", 1)]
        assert d.store("count").get("missing") is None


def test_count_is_a_long_on_the_wire() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().count(name="cnt").to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", "x", timestamp=0)
        (record,) = d.read_output("out", value_serde=_Raw())
        assert record.value == (1).to_bytes(8, "big")


def test_null_keys_and_values_are_skipped_and_counted() -> None:
    with TopologyTestDriver(amounts().build()) as d:
        d.pipe("tx", None, {"amount": 1}, timestamp=0)
        d.pipe("tx", "a", {"amount": None}, timestamp=0)
        assert d.read_key_values("counts") == []
        assert d.read_key_values("totals") == []
        # three aggregations, two bad records each
        assert d.counters()["null-key-or-value-skipped"] == 6


def test_changelog_gets_one_record_per_key_per_commit() -> None:
    b = StreamsBuilder()
    # one input record becomes several updates of the same keys within one commit
    b.stream("in").flat_map_values(lambda v: v).group_by_key().count(name="cnt")
    with TopologyTestDriver(b.build(), app_id="app") as d:
        d.pipe("in", "a", [1, 2, 3], timestamp=0)
        d.pipe("in", "b", [1], timestamp=1)
        d.pipe("in", "a", [1, 1], timestamp=2)
        changelog = d.read_output(
            "app-cnt-changelog", key_serde=StringSerde(), value_serde=LongSerde()
        )
        assert [(r.key, r.value) for r in changelog] == [("a", 3), ("b", 1), ("a", 5)]
        assert {r.partition for r in changelog} == {0}


def test_reduce_keeps_the_stream_value_serde() -> None:
    b = StreamsBuilder()
    b.stream("in", value_serde=StringSerde()).group_by_key().reduce(
        lambda agg, v: agg + v, name="concat"
    ).to_stream().to("out")
    with TopologyTestDriver(b.build(), app_id="app") as d:
        d.pipe("in", "k", "ab", timestamp=0)
        d.pipe("in", "k", "cd", timestamp=0)
        assert [r.value for r in d.read_output("out", value_serde=_Raw())] == [b"ab", b"abcd"]
        changelog = d.read_output("app-concat-changelog", value_serde=_Raw())
        assert [r.value for r in changelog] == [b"ab", b"abcd"]


def test_aggregate_with_a_custom_value_serde() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().aggregate(
        lambda: 0, lambda k, v, agg: agg + v, name="sum", value_serde=LongSerde()
    ).to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 40, timestamp=0)
        d.pipe("in", "k", 2, timestamp=0)
        assert d.read_values("out") == [40, 42]


@pytest.mark.parametrize("state", ["memory", "rocksdb"])
def test_state_backends_give_the_same_results(state: str, tmp_path: Path) -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().aggregate(
        list, lambda k, v, agg: [*agg, v], name="history", value_serde=JsonSerde()
    ).to_stream().to("out")
    with TopologyTestDriver(b.build(), state=state, state_dir=tmp_path) as d:  # type: ignore[arg-type]
        for i, key in enumerate("abab"):
            d.pipe("in", key, i, timestamp=i)
        assert d.read_key_values("out") == [("a", [0]), ("b", [1]), ("a", [0, 2]), ("b", [1, 3])]
        assert d.store("history").get("a") == [0, 2]
    if state == "rocksdb":
        assert (tmp_path / "test-app" / "0_0" / "history").is_dir()


def test_rocksdb_state_survives_a_new_driver_on_the_same_directory(tmp_path: Path) -> None:
    def build() -> StreamsBuilder:
        b = StreamsBuilder()
        b.stream("in").group_by_key().count(name="cnt").to_stream().to("out")
        return b

    with TopologyTestDriver(build().build(), state="rocksdb", state_dir=tmp_path) as d:
        d.pipe("in", "k", 1, timestamp=0)
        d.pipe("in", "k", 1, timestamp=1)
    with TopologyTestDriver(build().build(), state="rocksdb", state_dir=tmp_path) as d:
        d.pipe("in", "k", 1, timestamp=2)
        assert d.read_key_values("out") == [("k", 3)]


class _Raw:
    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data
