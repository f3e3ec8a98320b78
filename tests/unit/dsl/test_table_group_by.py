"""Table.group_by: re-grouping a table, with adder/subtractor aggregations, in the driver."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.errors import ProcessingError, SerializationError
from streamer.processors.grouped_tables import Change, ChangeSerde, PairSerde
from streamer.serde import LongSerde, StringSerde
from streamer.testing import TopologyTestDriver
from streamer.testing.driver import default_partition


def _by_region(_user: Any, row: Any) -> tuple[Any, Any]:
    return row["region"], row["balance"]


def _sum_topology() -> StreamsBuilder:
    builder = StreamsBuilder()
    grouped = builder.table("users").group_by(_by_region, name="by-region")
    grouped.count(name="users-per-region").to_stream().to("counts")
    grouped.aggregate(
        lambda: 0,
        lambda _region, balance, total: total + balance,
        lambda _region, balance, total: total - balance,
        name="balance-per-region",
    ).to_stream().to("totals")
    return builder


def test_a_row_that_moves_leaves_its_old_group_and_joins_the_new_one() -> None:
    with TopologyTestDriver(_sum_topology().build()) as driver:
        driver.pipe("users", "ann", {"region": "eu", "balance": 5})
        driver.pipe("users", "bob", {"region": "eu", "balance": 7})
        driver.pipe("users", "ann", {"region": "us", "balance": 6})
        assert driver.read_key_values("counts") == [("eu", 1), ("eu", 2), ("eu", 1), ("us", 1)]
        assert driver.read_key_values("totals") == [("eu", 5), ("eu", 12), ("eu", 7), ("us", 6)]
        assert driver.store("balance-per-region").get("eu") == 7
        assert driver.store("balance-per-region").get("us") == 6


def test_an_update_within_a_group_is_one_change() -> None:
    with TopologyTestDriver(_sum_topology().build()) as driver:
        driver.pipe("users", "ann", {"region": "eu", "balance": 5})
        driver.pipe("users", "ann", {"region": "eu", "balance": 9})
        # One output per update: no intermediate aggregate without the row.
        assert driver.read_key_values("totals") == [("eu", 5), ("eu", 9)]
        assert driver.read_key_values("counts") == [("eu", 1), ("eu", 1)]


def test_a_deletion_subtracts_and_an_empty_count_stays_at_zero() -> None:
    with TopologyTestDriver(_sum_topology().build()) as driver:
        driver.pipe("users", "ann", {"region": "eu", "balance": 5})
        driver.pipe("users", "ann", None)
        driver.pipe("users", "ann", None)  # a second deletion finds nothing to subtract
        assert driver.read_key_values("counts") == [("eu", 1), ("eu", 0)]
        assert driver.read_key_values("totals") == [("eu", 5), ("eu", 0)]
        assert driver.store("by-region-prior").get("ann") is None


def test_the_repartition_topic_carries_changes() -> None:
    with TopologyTestDriver(_sum_topology().build(), app_id="app") as driver:
        driver.pipe("users", "ann", {"region": "eu", "balance": 5})
        driver.pipe("users", "ann", {"region": "us", "balance": 5})
        # Decoded with the repartition sink's serdes: the value serde is a ChangeSerde.
        records = driver.read_output("app-by-region-repartition")
        assert [(r.key, r.value) for r in records] == [
            ("eu", Change(None, 5)),
            ("eu", Change(5, None)),
            ("us", Change(None, 5)),
        ]


def test_reduce_with_a_subtractor_and_a_none_result_deletes_the_group() -> None:
    builder = StreamsBuilder()
    (
        builder.table("users")
        .group_by(lambda _u, row: (row["region"], [row["name"]]), name="names")
        .reduce(
            lambda names, new: sorted(names + new),
            lambda names, old: [n for n in names if n not in old] or None,
            name="names-per-region",
        )
        .to_stream()
        .to("names")
    )
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("users", "u1", {"region": "eu", "name": "ann"})
        driver.pipe("users", "u2", {"region": "eu", "name": "bob"})
        driver.pipe("users", "u1", {"region": "us", "name": "ann"})
        driver.pipe("users", "u2", None)
        assert driver.read_key_values("names") == [
            ("eu", ["ann"]),
            ("eu", ["ann", "bob"]),
            ("eu", ["bob"]),
            ("us", ["ann"]),
            ("eu", None),
        ]
        assert driver.store("names-per-region").get("eu") is None


def test_a_none_group_or_value_belongs_to_no_group() -> None:
    builder = StreamsBuilder()
    (
        builder.table("users")
        .group_by(lambda _u, row: (row.get("region"), row.get("balance")), name="by-region")
        .count(name="per-region")
        .to_stream()
        .to("counts")
    )
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("users", "ann", {"region": "eu", "balance": 1})
        driver.pipe("users", "ann", {"balance": 1})  # no region: leaves eu, joins nothing
        driver.pipe("users", "bob", {"region": "eu"})  # no value: in no group
        assert driver.read_key_values("counts") == [("eu", 1), ("eu", 0)]
        assert driver.counters()["records-dropped-null-key"] == 1


def test_groups_live_in_the_task_that_owns_them() -> None:
    builder = StreamsBuilder()
    builder.table("users").group_by(_by_region, name="by-region").count(name="per-region")
    regions = [f"r{n}" for n in range(8)]
    with TopologyTestDriver(builder.build(), partitions={"users": 4}) as driver:
        for n in range(40):
            driver.pipe("users", f"u{n}", {"region": regions[n % 8], "balance": n})
        for n in range(0, 40, 2):
            driver.pipe("users", f"u{n}", {"region": regions[(n + 1) % 8], "balance": n})
        # The repartition topic has the input's 4 partitions: each group lives in one task.
        assert driver.partition_count("test-app-by-region-repartition") == 4
        counts = {
            region: driver.store("per-region", partition=default_partition(region.encode(), 4)).get(
                region
            )
            for region in regions
        }
        assert counts == {f"r{n}": 0 if n % 2 == 0 else 10 for n in range(8)}


def test_a_selector_that_returns_no_pair_fails_with_a_clear_error() -> None:
    builder = StreamsBuilder()
    builder.table("users").group_by(lambda _u, row: row, name="bad").count(name="n")  # type: ignore[arg-type, return-value]
    with TopologyTestDriver(builder.build()) as driver, pytest.raises(ProcessingError) as info:
        driver.pipe("users", "ann", "eu")
    assert "(group, value) pair" in str(info.value)


def test_describe_shows_the_select_step_the_repartition_and_the_aggregate() -> None:
    text = _sum_topology().build().describe()
    assert "Processor: by-region-select [table-group-by] (stores: [by-region-prior])" in text
    assert "Sink: by-region-repartition-sink (topic: by-region-repartition (internal))" in text
    assert "Processor: balance-per-region [table-aggregate] (stores: [balance-per-region])" in text
    assert "Processor: users-per-region [table-count] (stores: [users-per-region])" in text


def test_change_and_pair_serdes_round_trip_and_reject_garbage() -> None:
    changes = ChangeSerde(LongSerde())
    for change in (Change(1, 2), Change(None, 2), Change(1, None), Change(None, None)):
        assert changes.decode(changes.encode(change)) == change
    pairs = PairSerde(StringSerde(), LongSerde())
    assert pairs.decode(pairs.encode(("eu", 3))) == ("eu", 3)
    for garbage in (b"", b"\x07\x00\x00\x00\x00", b"\x01\x00\x00\x00\x09abc"):
        with pytest.raises(SerializationError):
            changes.decode(garbage)
    with pytest.raises(SerializationError):
        pairs.decode(b"\x00\x00\x00\x09ab")
