"""Foreign-key table-table joins in the TopologyTestDriver: results, foreign-key changes,
deletes on both sides, None foreign keys, out-of-order responses, and the topology they add.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.errors import ProcessingError, SerializationError, TopologyError
from streamer.processors.api import RecordOrigin
from streamer.processors.fk_join import STALE_DROPPED
from streamer.processors.fk_wire import (
    CombinedKeySerde,
    Instruction,
    LeftState,
    LeftStateSerde,
    Response,
    ResponseSerde,
    Subscribed,
    SubscribedSerde,
    Subscription,
    SubscriptionSerde,
    next_hash,
)
from streamer.serde import BytesSerde, JsonSerde, StringSerde
from streamer.testing import TopologyTestDriver
from streamer.testing.driver import default_partition

APP = "test-app"
RESPONSES = f"{APP}-oc-response-repartition"
SUBSCRIPTIONS = f"{APP}-oc-subscription-repartition"


def customer_of(order: dict[str, Any]) -> str | None:
    customer: str | None = order["customer"]
    return customer


def joined(order: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    return {"order": order["item"], "name": customer and customer["name"]}


def orders_with_customers(kind: str = "inner") -> StreamsBuilder:
    """``orders`` (keyed by order id, naming a customer) joined with ``customers``."""
    builder = StreamsBuilder()
    orders = builder.table("orders")
    customers = builder.table("customers")
    join = orders.join if kind == "inner" else orders.left_join
    join(customers, joined, foreign_key=customer_of, name="oc").to_stream().to("out")
    return builder


def order(item: str, customer: str | None) -> dict[str, Any]:
    return {"item": item, "customer": customer}


def subscribers(driver: TopologyTestDriver, partitions: int = 1) -> set[tuple[str, str]]:
    """Every ``(customer, order)`` subscription over the right side's tasks."""
    return {
        key
        for p in range(partitions)
        for key, _ in driver.store("oc-subscriptions", partition=p).items()
    }


# --- results ------------------------------------------------------------------------------------


@pytest.mark.parametrize("partitions", [{}, {"orders": 3, "customers": 2}])
def test_inner_join_follows_both_tables(partitions: dict[str, int]) -> None:
    with TopologyTestDriver(orders_with_customers().build(), partitions=partitions) as d:
        d.pipe("orders", "o-1", order("pen", "ada"))  # no customer yet: nothing
        assert d.read_key_values("out") == []
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-2", order("ink", "ada"))
        d.pipe("customers", "ada", {"name": "Ada L."})  # updates both orders
        assert d.read_key_values("out") == [
            ("o-1", {"order": "pen", "name": "Ada"}),
            ("o-2", {"order": "ink", "name": "Ada"}),
            ("o-1", {"order": "pen", "name": "Ada L."}),
            ("o-2", {"order": "ink", "name": "Ada L."}),
        ]
        p = default_partition(b"o-1", partitions.get("orders", 1))
        assert d.store("oc", partition=p).get("o-1") == {"order": "pen", "name": "Ada L."}
        assert d.counters() == {}


def test_left_join_answers_every_left_row() -> None:
    with TopologyTestDriver(orders_with_customers("left").build()) as d:
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("customers", "bob", {"name": "Bob"})  # nobody subscribes to bob
        assert d.read_key_values("out") == [
            ("o-1", {"order": "pen", "name": None}),
            ("o-1", {"order": "pen", "name": "Ada"}),
        ]


def test_the_result_is_a_table_that_can_be_looked_up() -> None:
    builder = StreamsBuilder()
    orders = builder.table("orders")
    customers = builder.table("customers")
    named = orders.join(customers, joined, foreign_key=customer_of, name="oc")
    builder.stream("shipments").join(named, lambda s, o: [s, o["name"]], name="ship").to("labels")
    with TopologyTestDriver(builder.build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("shipments", "o-1", "box-7")
        assert d.read_values("labels") == [["box-7", "Ada"]]


# --- foreign-key changes -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_a_changed_foreign_key_unsubscribes_from_the_old_one(kind: str) -> None:
    partitions = {"orders": 2, "customers": 3}
    with TopologyTestDriver(orders_with_customers(kind).build(), partitions=partitions) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("customers", "bob", {"name": "Bob"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("orders", "o-1", order("pen", "bob"))
        assert d.read_key_values("out") == [
            ("o-1", {"order": "pen", "name": "Ada"}),
            ("o-1", {"order": "pen", "name": "Bob"}),
        ]
        assert subscribers(d, 3) == {("bob", "o-1")}
        d.pipe("customers", "ada", {"name": "Ada L."})  # no longer o-1's customer
        assert d.read_key_values("out") == []
        # Moving to a customer that does not exist retracts the row (inner) or keeps it
        # with None (left).
        d.pipe("orders", "o-1", order("pen", "cyd"))
        expected = None if kind == "inner" else {"order": "pen", "name": None}
        assert d.read_key_values("out") == [("o-1", expected)]
        assert subscribers(d, 3) == {("cyd", "o-1")}


def test_a_value_change_under_the_same_foreign_key_rejoins() -> None:
    with TopologyTestDriver(orders_with_customers().build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("orders", "o-1", order("ink", "ada"))
        assert d.read_values("out") == [
            {"order": "pen", "name": "Ada"},
            {"order": "ink", "name": "Ada"},
        ]
        assert subscribers(d) == {("ada", "o-1")}


# --- deletes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_a_left_delete_retracts_the_row_and_unsubscribes(kind: str) -> None:
    with TopologyTestDriver(orders_with_customers(kind).build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("orders", "o-1", None)
        assert d.read_key_values("out") == [("o-1", {"order": "pen", "name": "Ada"}), ("o-1", None)]
        assert subscribers(d) == set()
        assert d.store("oc-foreign-keys").get("o-1") is None
        d.pipe("customers", "ada", {"name": "Ada L."})
        d.pipe("orders", "o-1", None)  # deleting again: no row, nothing to retract
        assert d.read_key_values("out") == []


def test_an_inner_left_row_that_never_joined_is_not_retracted() -> None:
    with TopologyTestDriver(orders_with_customers().build()) as d:
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("orders", "o-1", order("pen", "bob"))
        d.pipe("orders", "o-1", None)
        assert d.read_key_values("out") == []


def test_a_right_delete_retracts_inner_rows_and_empties_left_rows() -> None:
    builder = StreamsBuilder()
    orders = builder.table("orders")
    customers = builder.table("customers")
    orders.join(customers, joined, foreign_key=customer_of, name="inner").to_stream().to("inner")
    orders.left_join(customers, joined, foreign_key=customer_of, name="left").to_stream().to("left")
    with TopologyTestDriver(builder.build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("orders", "o-2", order("ink", "ada"))
        d.read_output("inner")
        d.read_output("left")
        d.pipe("customers", "ada", None)
        assert d.read_key_values("inner") == [("o-1", None), ("o-2", None)]
        assert d.read_key_values("left") == [
            ("o-1", {"order": "pen", "name": None}),
            ("o-2", {"order": "ink", "name": None}),
        ]
        d.pipe("customers", "ada", {"name": "Ada"})  # back: both rows rejoin
        assert len(d.read_output("inner")) == 2
        assert len(d.read_output("left")) == 2


# --- None foreign keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_a_none_foreign_key_joins_nothing(kind: str) -> None:
    with TopologyTestDriver(orders_with_customers(kind).build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-1", order("pen", None))
        d.pipe("orders", "o-2", order("ink", "ada"))
        d.pipe("orders", "o-2", order("ink", None))  # unsubscribes from ada
        d.pipe("customers", "ada", {"name": "Ada L."})
        with_none = {"order": "pen", "name": None}
        expected = {
            "inner": [("o-2", {"order": "ink", "name": "Ada"}), ("o-2", None)],
            "left": [
                ("o-1", with_none),
                ("o-2", {"order": "ink", "name": "Ada"}),
                ("o-2", {"order": "ink", "name": None}),
            ],
        }
        assert d.read_key_values("out") == expected[kind]
        assert subscribers(d) == set()


# --- out-of-order responses -----------------------------------------------------------------------


def held_response(driver: TopologyTestDriver) -> tuple[bytes | None, bytes | None]:
    """The raw key and value of the last response the join sent."""
    *_, last = driver.read_output(RESPONSES, key_serde=BytesSerde(), value_serde=BytesSerde())
    return last.key, last.value


def test_a_response_overtaken_by_a_foreign_key_change_is_dropped() -> None:
    with TopologyTestDriver(orders_with_customers().build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("customers", "bob", {"name": "Bob"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        ada_answer = held_response(d)
        d.pipe("orders", "o-1", order("pen", "bob"))
        d.read_output("out")
        # Ada's answer arrives late, after the order moved to Bob: it answers an old value.
        d.pipe_raw(RESPONSES, *ada_answer)
        assert d.read_key_values("out") == []
        assert d.counters() == {STALE_DROPPED: 1}
        assert d.store("oc").get("o-1") == {"order": "pen", "name": "Bob"}


def test_a_response_to_an_earlier_equal_value_is_dropped() -> None:
    """A to B and back to A: the late answer to the first A is not an answer to the last."""
    with TopologyTestDriver(orders_with_customers().build()) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        d.pipe("orders", "o-1", order("pen", "ada"))
        first = held_response(d)
        d.pipe("orders", "o-1", order("pen", "bob"))
        d.pipe("customers", "ada", {"name": "Ada L."})
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.pipe("orders", "o-9", None)
        d.read_output("out")
        d.pipe_raw(RESPONSES, *first)
        assert d.read_key_values("out") == []
        assert d.store("oc").get("o-1") == {"order": "pen", "name": "Ada L."}
        # The same holds across a delete and the same insert.
        d.pipe("orders", "o-1", None)
        d.pipe("orders", "o-1", order("pen", "ada"))
        d.read_output("out")
        d.pipe_raw(RESPONSES, *first)
        assert d.read_key_values("out") == []
        assert d.counters() == {STALE_DROPPED: 2}


def test_a_response_on_the_wrong_partition_fails_clearly() -> None:
    topology = orders_with_customers().build()
    with TopologyTestDriver(topology, partitions={"orders": 2, "customers": 1}) as d:
        d.pipe("customers", "ada", {"name": "Ada"})
        wrong = 1 - default_partition(b"o-1", 2)
        with pytest.raises(ProcessingError, match="default partitioner"):
            d.pipe("orders", "o-1", order("pen", "ada"), partition=wrong)


# --- self joins, serdes and state backends -------------------------------------------------------


def test_a_table_can_join_itself() -> None:
    builder = StreamsBuilder()
    people = builder.table("people")
    people.left_join(
        people,
        lambda person, boss: {"name": person["name"], "boss": boss and boss["name"]},
        foreign_key=lambda person: person["boss"],
        name="with-boss",
    ).to_stream().to("out")
    with TopologyTestDriver(builder.build(), partitions={"people": 3}) as d:
        d.pipe("people", "1", {"name": "Ada", "boss": None})
        d.pipe("people", "2", {"name": "Bob", "boss": "1"})
        d.pipe("people", "1", {"name": "Ada L.", "boss": None})
        assert d.read_key_values("out") == [
            ("1", {"name": "Ada", "boss": None}),
            ("2", {"name": "Bob", "boss": "Ada"}),
            ("1", {"name": "Ada L.", "boss": None}),
            ("2", {"name": "Bob", "boss": "Ada L."}),
        ]


def test_rocksdb_stores_give_the_same_results(tmp_path: Path) -> None:
    topology = orders_with_customers().build()
    outputs = []
    for state, state_dir in (("memory", None), ("rocksdb", tmp_path)):
        with TopologyTestDriver(topology, state=state, state_dir=state_dir) as d:  # type: ignore[arg-type]
            for customer in ("ada", "adam", "ad"):  # keys that prefix one another
                d.pipe("customers", customer, {"name": customer})
            for i, customer in enumerate(["ada", "adam", "ad", "ada", "adam"]):
                d.pipe("orders", f"o-{i}", order("pen", customer))
            d.pipe("customers", "ada", {"name": "ADA"})
            d.pipe("orders", "o-0", order("pen", "ad"))
            d.pipe("customers", "ada", None)
            outputs.append(d.read_key_values("out"))
    assert outputs[0] == outputs[1]
    assert ("o-3", {"order": "pen", "name": "ADA"}) in outputs[0]
    assert ("o-0", {"order": "pen", "name": "ADA"}) in outputs[0]
    assert ("o-1", {"order": "pen", "name": "ADA"}) not in outputs[0]


# --- topology -------------------------------------------------------------------------------------


def test_describe_lists_the_steps_topics_and_stores() -> None:
    text = orders_with_customers().build().describe("app")
    for line in (
        "Processor: oc-send [fk-join-send] inner (stores: [oc-foreign-keys])",
        "Sink: oc-subscription-sink (topic: oc-subscription-repartition (internal))",
        "Processor: oc-subscribe [fk-join-subscribe] (stores: [oc-subscriptions, customers])",
        "Processor: oc-foreign-update [fk-join-foreign-update] (stores: [oc-subscriptions])",
        "Sink: oc-response-sink (topic: oc-response-repartition (internal))",
        "Processor: oc-resolve [fk-join-resolve] inner (stores: [oc-foreign-keys, orders])",
        "Processor: oc [fk-join-result] (stores: [oc])",
        "oc-foreign-keys [key-value] changelog: app-oc-foreign-keys-changelog",
        "oc-subscriptions [key-value] changelog: app-oc-subscriptions-changelog",
        "app-oc-subscription-repartition (repartition)",
        "app-oc-response-repartition (repartition)",
    ):
        assert line in text


def test_subscriptions_are_partitioned_like_the_right_table_responses_like_the_left() -> None:
    topology = orders_with_customers().build()
    counts = topology.internal_partition_counts({"orders": 6, "customers": 4}, "app")
    assert counts == {"app-oc-subscription-repartition": 4, "app-oc-response-repartition": 6}
    topology.validate_partitions({"orders": 6, "customers": 4, **counts}, "app")
    with pytest.raises(TopologyError, match="not co-partitioned"):
        topology.validate_partitions(
            {"orders": 6, "customers": 4, "app-oc-subscription-repartition": 6}, "app"
        )
    with TopologyTestDriver(topology, partitions={"orders": 6, "customers": 4}) as d:
        assert d.partition_count(SUBSCRIPTIONS) == 4
        assert d.partition_count(RESPONSES) == 6


def test_a_repartition_read_with_a_table_takes_the_tables_count() -> None:
    builder = StreamsBuilder()
    table = builder.table("t")
    builder.stream("big").select_key(lambda k, v: v).repartition(name="rk").join(
        table, lambda a, b: a, name="j"
    ).to("out")
    counts = builder.build().internal_partition_counts({"big": 8, "t": 2}, "app")
    assert counts == {"app-rk-repartition": 2}


def test_names_must_be_free() -> None:
    builder = StreamsBuilder()
    orders = builder.table("orders")
    customers = builder.table("customers")
    orders.join(customers, joined, foreign_key=customer_of, name="oc")
    with pytest.raises(TopologyError, match="duplicate"):
        orders.left_join(customers, joined, foreign_key=customer_of, name="oc")


def test_windowed_tables_cannot_be_joined_by_foreign_key() -> None:
    from streamer import TumblingWindows

    builder = StreamsBuilder()
    windowed = builder.stream("in").group_by_key().windowed_by(TumblingWindows(10)).count(name="w")
    with pytest.raises(TopologyError, match="cannot be looked up or joined"):
        windowed.join(builder.table("t"), joined, foreign_key=customer_of, name="x")


# --- wire formats ---------------------------------------------------------------------------------


def test_wire_formats_round_trip() -> None:
    digest = bytes(range(16))
    string, json = StringSerde(), JsonSerde()
    cases: list[tuple[Any, Any]] = [
        (SubscriptionSerde(json), Subscription(Instruction.RESPOND_ALWAYS, {"id": 1}, digest, 7)),
        (SubscriptionSerde(string), Subscription(Instruction.UNSUBSCRIBE, "", digest, 0)),
        (ResponseSerde(json), Response(digest, 3, {"name": "Ada"})),
        (ResponseSerde(json), Response(digest, 3, None)),
        (SubscribedSerde(), Subscribed(digest, 2**31 - 1)),
        (LeftStateSerde(), LeftState(b"ada", digest)),
        (LeftStateSerde(), LeftState(None, digest)),
        (LeftStateSerde(), LeftState(b"", digest)),
        (CombinedKeySerde(string, json), ("ada", [1, 2])),
    ]
    for serde, value in cases:
        assert serde.decode(serde.encode(value)) == value


def test_combined_keys_of_one_foreign_key_share_a_prefix_no_other_has() -> None:
    serde = CombinedKeySerde(StringSerde(), StringSerde())
    assert serde.encode(("ada", "o-1")).startswith(serde.prefix("ada"))
    assert not serde.encode(("adam", "o-1")).startswith(serde.prefix("ada"))
    assert not serde.encode(("ad", "ao-1")).startswith(serde.prefix("ada"))


def test_wire_format_errors_name_the_problem() -> None:
    with pytest.raises(SerializationError, match="needs at least 22 bytes, got 3"):
        ResponseSerde(JsonSerde()).decode(b"abc")
    future = bytes([9]) + bytes(21)
    with pytest.raises(SerializationError, match="format version 9"):
        SubscribedSerde().decode(future)
    bad_instruction = bytes([1, 7]) + bytes(20) + b"k"
    with pytest.raises(SerializationError, match="unknown foreign-key join instruction 7"):
        SubscriptionSerde(StringSerde()).decode(bad_instruction)
    with pytest.raises(SerializationError, match="claims 99"):
        CombinedKeySerde(StringSerde(), StringSerde()).decode(b"\x00\x00\x00\x63ab")


def test_hashes_differ_for_each_update_and_repeat_for_a_replay() -> None:
    origin = RecordOrigin("orders", 0, 5)
    first = next_hash(None, b"v", origin)
    assert next_hash(None, b"v", origin) == first  # the same record again
    assert next_hash(None, b"v", RecordOrigin("orders", 0, 6)) != first
    assert next_hash(first, b"v", origin) != first
    assert next_hash(None, b"w", origin) != first
    assert len(next_hash(None, b"v", None)) == 16
