"""Topic extractors and custom partitioners on ``to()`` and ``repartition()``, through the
driver: where records land, what goes through the error policy, what ``build()`` refuses."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from streamer import (
    ConfigError,
    ProcessingError,
    RecordContext,
    StreamerError,
    StreamsBuilder,
    TopologyError,
)
from streamer.runtime.task import Task
from streamer.runtime.topics import TopicLayout
from streamer.serde import JsonSerde, StringSerde
from streamer.state import MemoryStore
from streamer.testing import TopologyTestDriver
from streamer.testing.driver import ManualClock
from streamer.topology.nodes import SinkNode, TopicRef


def by_region(_key: str, order: dict[str, Any], _context: RecordContext) -> str:
    return f"orders-{order['region']}"


def by_amount(_key: str, order: dict[str, Any], partitions: int) -> int:
    return int(order["amount"]) % partitions


def first_letter(key: str, _value: Any, partitions: int) -> int:
    return (ord(key[0]) - ord("a")) % partitions


def routed(**to_kwargs: Any) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream("orders").to(by_region, topics=["orders-eu", "orders-us"], **to_kwargs)
    return builder


def test_each_record_goes_to_the_topic_its_extractor_picks() -> None:
    with TopologyTestDriver(routed().build()) as driver:
        driver.pipe("orders", "o-1", {"region": "eu", "amount": 3}, timestamp=5)
        driver.pipe("orders", "o-2", {"region": "us", "amount": 4}, timestamp=6)
        driver.pipe("orders", "o-3", {"region": "eu", "amount": 5}, timestamp=7)
        assert [(r.key, r.timestamp) for r in driver.read_output("orders-eu")] == [
            ("o-1", 5),
            ("o-3", 7),
        ]
        assert driver.read_key_values("orders-us") == [("o-2", {"region": "us", "amount": 4})]
        assert driver.output_topics() == []


def test_the_extractor_sees_timestamp_headers_and_origin() -> None:
    seen: list[RecordContext] = []

    def extractor(_key: str, _value: Any, context: RecordContext) -> str:
        seen.append(context)
        return "out"

    builder = StreamsBuilder()
    builder.stream("in").to(extractor, topics=["out"])
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("in", "k", 1, timestamp=42, headers=[("h", b"x")])
        driver.pipe("in", "k", 2, timestamp=43)
    assert [(c.timestamp, tuple(c.headers)) for c in seen] == [(42, (("h", b"x"),)), (43, ())]
    assert [(c.origin.topic, c.origin.offset) for c in seen if c.origin] == [("in", 0), ("in", 1)]


def test_an_undeclared_topic_goes_to_the_dead_letter_topic_without_being_quoted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TopologyTestDriver(routed().build(), error_policy="dead-letter") as driver:
        caplog.set_level(logging.WARNING)
        driver.pipe("orders", "o-1", {"region": "secret-region", "amount": 1})
        driver.pipe("orders", "o-2", {"region": "us", "amount": 2})
        (dead,) = driver.read_output("test-app-dlq")
        assert driver.read_key_values("orders-us") == [("o-2", {"region": "us", "amount": 2})]
        assert driver.output_topics() == []
    headers = dict(dead.headers)
    assert dead.key == b"o-1"
    assert headers["streamer.error.step"] == b"sink-0002"
    error = (headers["streamer.error"] or b"").decode()
    assert "not one of its declared topics (orders-eu, orders-us)" in error
    assert "secret-region" not in error
    assert "secret-region" not in caplog.text


def test_an_undeclared_topic_is_named_with_log_payloads() -> None:
    builder = routed()
    with (
        TopologyTestDriver(builder.build(), log_payloads=True) as driver,
        pytest.raises(ProcessingError, match="returned 'orders-jp' that is not one of"),
    ):
        driver.pipe("orders", "o-1", {"region": "jp", "amount": 1})


@pytest.mark.parametrize(
    ("extractor", "error"),
    [
        (lambda _k, _v, _c: 7, "returned a int that is not one of its declared topics"),
        (lambda _k, v, _c: v["missing"], "the topic extractor of sink 'route' raised KeyError"),
    ],
)
def test_a_failing_or_non_string_extractor_fails_the_record(extractor: Any, error: str) -> None:
    builder = StreamsBuilder()
    builder.stream("in").to(extractor, topics=["out"], name="route")
    with TopologyTestDriver(builder.build()) as driver:
        with pytest.raises(ProcessingError, match=error):
            driver.pipe("in", "k", {"n": 1})
        assert driver.output_topics() == []


def test_skip_policy_counts_records_with_an_undeclared_topic() -> None:
    with TopologyTestDriver(routed().build(), error_policy="skip") as driver:
        driver.pipe("orders", "o-1", {"region": "jp", "amount": 1})
        assert driver.output_topics() == []
        assert driver.counters()["records-skipped"] == 1


def test_a_partitioner_picks_the_partition_of_each_record() -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("out", partitioner=by_amount)
    with TopologyTestDriver(builder.build(), partitions={"out": 4}) as driver:
        for amount in (1, 6, 8, 3):
            driver.pipe("in", f"k{amount}", {"amount": amount})
        assert [r.partition for r in driver.read_output("out")] == [1, 2, 0, 3]


def test_the_partitioner_sees_the_partition_count_of_the_picked_topic() -> None:
    builder = routed(partitioner=by_amount)
    counts = {"orders-eu": 3, "orders-us": 5}
    with TopologyTestDriver(builder.build(), partitions=counts) as driver:
        driver.pipe("orders", "o-1", {"region": "eu", "amount": 4})
        driver.pipe("orders", "o-2", {"region": "us", "amount": 4})
        assert [r.partition for r in driver.read_output("orders-eu")] == [1]
        assert [r.partition for r in driver.read_output("orders-us")] == [4]


@pytest.mark.parametrize(
    ("partitioner", "error"),
    [
        (lambda _k, _v, n: n, "returned partition 4 for topic 'out', which has partitions 0 to 3"),
        (lambda _k, _v, _n: -1, "returned partition -1"),
        (lambda _k, _v, _n: "0", "returned a str, not a partition number"),
        (lambda _k, _v, _n: True, "returned a bool, not a partition number"),
        (lambda _k, _v, _n: 1 // 0, "the partitioner of sink 'sink-0002' raised ZeroDivision"),
    ],
)
def test_a_bad_partition_goes_to_the_dead_letter_topic(partitioner: Any, error: str) -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("out", partitioner=partitioner)
    topology = builder.build()
    with TopologyTestDriver(topology, partitions={"out": 4}, error_policy="dead-letter") as d:
        d.pipe("in", "k", {"n": 1})
        (dead,) = d.read_output("test-app-dlq")
        assert error in (dict(dead.headers)["streamer.error"] or b"").decode()
        assert d.output_topics() == []


def test_a_repartition_partitioner_picks_the_downstream_task() -> None:
    builder = StreamsBuilder()
    (
        builder.stream("in")
        .select_key(lambda _k, v: v["user"])
        .repartition(name="by-user", partitioner=first_letter)
        .group_by_key()
        .count(name="per-user")
    )
    counts = {"in": 3, "test-app-by-user-repartition": 3}
    with TopologyTestDriver(builder.build(), partitions=counts) as driver:
        for user in ("alice", "bob", "carol", "dave", "bob"):
            driver.pipe("in", "x", {"user": user})
        on = {p: dict(driver.store("per-user", partition=p).items()) for p in range(3)}
    assert on == {0: {"alice": 1, "dave": 1}, 1: {"bob": 2}, 2: {"carol": 1}}


def test_describe_shows_declared_topics_and_partitioners() -> None:
    builder = routed(partitioner=by_amount, name="route")
    builder.stream("in").repartition(name="spread", partitioner=first_letter).to("out")
    description = builder.build().describe(app_id="shop")
    assert (
        "Sink: route (topics: [orders-eu, orders-us] picked by by_region; partitioner: by_amount)"
    ) in description
    assert (
        "Sink: spread-repartition-sink (topic: spread-repartition (internal); "
        "partitioner: first_letter)"
    ) in description
    assert "Sink: sink-0003 (topic: out)" in description


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.to(by_region), "needs topics=\\[...\\]"),
        (lambda s: s.to(by_region, topics="orders-eu"), "needs topics=\\[...\\]"),
        (lambda s: s.to(by_region, topics=[]), "at least one topic"),
        (lambda s: s.to(by_region, topics=["a", ""]), "'' is not a topic name"),
        (lambda s: s.to(by_region, topics=["a", "b", "a"]), "lists a more than once"),
        (lambda s: s.to("out", topics=["out"]), "topics=\\[...\\] goes with a topic extractor"),
        (lambda s: s.to(42), "not int"),
        (lambda s: s.to("out", partitioner=3), "partitioner must be a function"),
        (lambda s: s.repartition(name="r", partitioner="murmur2"), "must be a function"),
    ],
)
def test_bad_to_arguments_are_refused_when_building(call: Any, error: str) -> None:
    with pytest.raises(TopologyError, match=error):
        call(StreamsBuilder().stream("in"))


def test_a_sink_node_has_a_topic_or_an_extractor_with_topics() -> None:
    serdes = (StringSerde(), JsonSerde())
    with pytest.raises(TopologyError, match="needs either a topic"):
        SinkNode("s", None, ("p",), *serdes)
    with pytest.raises(TopologyError, match="needs either a topic"):
        SinkNode("s", TopicRef("t"), ("p",), *serdes, topic_extractor=by_region)
    with pytest.raises(TopologyError, match="needs either a topic"):
        SinkNode("s", None, ("p",), *serdes, topic_extractor=by_region)
    node = SinkNode("s", None, ("p",), *serdes, by_region, (TopicRef("a"), TopicRef("b")))
    assert node.topic_refs() == (TopicRef("a"), TopicRef("b"))


def test_inputs_joined_under_different_partitioners_are_refused() -> None:
    builder = StreamsBuilder()
    clicks = builder.stream("clicks").repartition(name="clicks-by-key", partitioner=by_amount)
    users = builder.table("users", name="users")
    clicks.join(users, lambda c, u: {**c, **u}, name="enrich").to("out")
    with pytest.raises(TopologyError) as refused:
        builder.build()
    message = str(refused.value)
    assert "partitioned by different partitioners" in message
    assert "clicks-by-key-repartition (by_amount)" in message
    assert "users (default (murmur2))" in message


def test_merged_and_aggregated_inputs_need_the_same_partitioner() -> None:
    def aggregated(left: Any, right: Any) -> StreamsBuilder:
        builder = StreamsBuilder()
        clicks = builder.stream("clicks").repartition(name="clicks-by-key", partitioner=left)
        views = builder.stream("views").repartition(name="views-by-key", partitioner=right)
        clicks.merge(views).group_by_key().count(name="activity")
        return builder

    with pytest.raises(TopologyError, match=r"first_letter.*by_amount"):
        aggregated(first_letter, by_amount).build()
    with pytest.raises(TopologyError, match=r"default \(murmur2\)"):
        aggregated(first_letter, None).build()
    aggregated(first_letter, first_letter).build()
    aggregated(None, None).build()


def test_a_topic_the_app_reads_must_be_written_with_one_partitioner() -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("loop", partitioner=first_letter, name="a")
    builder.stream("other").to("loop", name="b")
    builder.stream("loop").to("out")
    with pytest.raises(TopologyError, match="'loop' is written with different partitioners"):
        builder.build()


def test_a_partitioned_sink_needs_partition_counts_when_its_task_is_built() -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("out", partitioner=by_amount)
    topology = builder.build()
    with pytest.raises(StreamerError, match="has a partitioner but no partition counts"):
        Task(
            topology,
            topology.subtopologies[0],
            0,
            app_id="app",
            open_store=lambda name: MemoryStore(name),
            sink=_NoSink(),
            clock=ManualClock(),
        )


def test_the_layout_knows_the_counts_of_custom_partitioned_outputs_only() -> None:
    layout = TopicLayout(partitions={"in": 2}, changelogs={}, repartition={}, outputs={"out": 3})
    assert (layout.partition_count("in"), layout.partition_count("out")) == (2, 3)
    with pytest.raises(ConfigError, match="partition count of topic other was not read"):
        layout.partition_count("other")


class _NoSink:
    def send(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("nothing is sent")
