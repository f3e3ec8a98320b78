"""Tables: materialised topics, tombstones, derived tables and global tables."""

from __future__ import annotations

import pytest

from streamer import JoinWindows, StreamsBuilder
from streamer.errors import TopologyError
from streamer.serde import LongSerde, StringSerde
from streamer.testing import TopologyTestDriver


def test_table_keeps_the_latest_value_and_tombstones_delete() -> None:
    b = StreamsBuilder()
    b.table("users").to_stream().to("changes")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("users", "u1", {"name": "Ann"}, timestamp=1)
        d.pipe("users", "u2", {"name": "Bob"}, timestamp=2)
        d.pipe("users", "u1", {"name": "Anna"}, timestamp=3)
        d.pipe("users", "u2", None, timestamp=4)
        store = d.store("users")
        assert store.get("u1") == {"name": "Anna"}
        assert store.get("u2") is None
        assert list(store.items()) == [("u1", {"name": "Anna"})]
        assert d.read_key_values("changes") == [
            ("u1", {"name": "Ann"}),
            ("u2", {"name": "Bob"}),
            ("u1", {"name": "Anna"}),
            ("u2", None),
        ]


def test_table_store_name_and_changelog() -> None:
    b = StreamsBuilder()
    b.table("users-topic", name="users").to_stream().to("out")
    with TopologyTestDriver(b.build(), app_id="app") as d:
        d.pipe("users-topic", "u1", 1, timestamp=0)
        d.pipe("users-topic", "u1", None, timestamp=0)
        assert d.store("users").get("u1") is None
        changelog = d.read_output("app-users-changelog", key_serde=StringSerde())
        assert [(r.key, r.value) for r in changelog] == [("u1", b"1"), ("u1", None)]


def test_table_drops_null_keys() -> None:
    b = StreamsBuilder()
    b.table("t").to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("t", None, 1, timestamp=0)
        assert d.read_key_values("out") == []
        assert d.counters()["null-key-dropped"] == 1


def test_table_map_values_maps_rows_and_keeps_deletions() -> None:
    b = StreamsBuilder()
    b.table("t").map_values(lambda v: v["price"] * 2).to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("t", "a", {"price": 2}, timestamp=0)
        d.pipe("t", "a", None, timestamp=1)
        assert d.read_key_values("out") == [("a", 4), ("a", None)]


def test_table_filter_turns_failing_rows_into_deletions() -> None:
    b = StreamsBuilder()
    b.table("t").filter(lambda k, v: v >= 10).to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("t", "a", 20, timestamp=0)
        d.pipe("t", "a", 5, timestamp=1)  # stops passing: downstream must forget "a"
        d.pipe("t", "b", 30, timestamp=2)
        d.pipe("t", "b", None, timestamp=3)
        assert d.read_key_values("out") == [("a", 20), ("a", None), ("b", 30), ("b", None)]


def test_table_map_values_falls_back_to_the_default_value_serde() -> None:
    b = StreamsBuilder()
    counts = b.stream("in").group_by_key().count(name="cnt")
    counts.map_values(lambda n: f"{n} seen").to_stream().to("out")
    counts.map_values(lambda n: n * 100, value_serde=LongSerde()).to_stream().to("hundreds")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", "x", timestamp=0)
        assert d.read_key_values("out") == [("k", "1 seen")]
        assert d.read_key_values("hundreds") == [("k", 100)]


def test_derived_table_views_are_used_by_joins() -> None:
    b = StreamsBuilder()
    prices = b.table("prices").filter(lambda k, v: v > 0).map_values(lambda v: v * 100)
    b.stream("orders").join(prices, lambda order, cents: order * cents, name="priced").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("prices", "apple", 2, timestamp=0)
        d.pipe("prices", "pear", -1, timestamp=0)
        d.pipe("orders", "apple", 3, timestamp=1)
        d.pipe("orders", "pear", 3, timestamp=1)
        assert d.read_key_values("out") == [("apple", 600)]
        assert d.counters()["join-unmatched-dropped"] == 1


def test_windowed_tables_cannot_be_joined() -> None:
    from streamer import TumblingWindows

    b = StreamsBuilder()
    windowed = b.stream("in").group_by_key().windowed_by(TumblingWindows(10)).count(name="w")
    with pytest.raises(TopologyError, match="cannot be looked up or joined"):
        b.stream("other").join(windowed, lambda a, c: a, name="j")


# --- global tables --------------------------------------------------------------------------


def test_global_table_is_readable_from_every_partition() -> None:
    b = StreamsBuilder()
    products = b.global_table("products")
    b.stream("orders").join(
        products,
        lambda order, product: {"qty": order["qty"], "name": product["name"]},
        key_selector=lambda k, v: v["product"],
        name="enrich",
    ).to("out")
    with TopologyTestDriver(b.build(), partitions={"orders": 3}) as d:
        d.pipe("products", "p1", {"name": "pen"}, timestamp=0)
        d.pipe("products", "p2", {"name": "ink"}, timestamp=0)
        for partition in range(3):
            d.pipe(
                "orders", f"o{partition}", {"product": "p1", "qty": partition}, partition=partition
            )
        d.pipe("orders", "o9", {"product": "p2", "qty": 9}, partition=1)
        d.pipe("orders", "o8", {"product": "nope", "qty": 1}, partition=2)
        assert d.read_key_values("out") == [
            ("o0", {"qty": 0, "name": "pen"}),
            ("o1", {"qty": 1, "name": "pen"}),
            ("o2", {"qty": 2, "name": "pen"}),
            ("o9", {"qty": 9, "name": "ink"}),
        ]
        assert d.store("products").get("p2") == {"name": "ink"}


def test_global_table_updates_and_deletes_apply_immediately() -> None:
    b = StreamsBuilder()
    rates = b.global_table("rates", value_serde=LongSerde())
    b.stream("amounts").left_join(
        rates,
        lambda amount, rate: None if rate is None else amount * rate,
        key_selector=lambda k, v: "eur",
        name="convert",
    ).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("amounts", "a", 1, timestamp=0)
        d.pipe("rates", "eur", 2, timestamp=0)
        d.pipe("amounts", "a", 1, timestamp=0)
        d.pipe("rates", "eur", 3, timestamp=0)
        d.pipe("amounts", "a", 1, timestamp=0)
        d.pipe("rates", "eur", None, timestamp=0)
        d.pipe("amounts", "a", 1, timestamp=0)
        assert d.read_values("out") == [None, 2, 3, None]


def test_global_table_store_name_must_be_unique() -> None:
    b = StreamsBuilder()
    b.global_table("products")
    with pytest.raises(TopologyError, match="duplicate store name 'products'"):
        b.global_table("products")
    with pytest.raises(TopologyError, match="duplicate store name 'products'"):
        b.table("other", name="products")


def test_outer_join_with_a_global_table_is_rejected() -> None:
    b = StreamsBuilder()
    products = b.global_table("products")
    with pytest.raises(TopologyError, match="outer-joined with a global table"):
        b.stream("orders").outer_join(
            products,  # type: ignore[arg-type]
            lambda a, c: a,
            name="j",
            windows=JoinWindows.of(10),
        )
