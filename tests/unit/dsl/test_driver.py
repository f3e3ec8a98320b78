"""The TopologyTestDriver itself: error policies, timestamps, input and output handling."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import ErrorPolicy, Processor, Record, StreamsBuilder, TumblingWindows
from streamer.errors import ProcessingError, SerializationError, StreamerError
from streamer.partitioner import partition_for_key
from streamer.serde import StringSerde
from streamer.testing import TopologyTestDriver
from streamer.testing.driver import default_partition


def inverse_topology() -> StreamsBuilder:
    """1 / value["x"]: a zero raises in the user function, bad JSON fails to decode."""
    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: 1 / v["x"], name="invert").to("out")
    return b


def pipe_good_and_bad(d: TopologyTestDriver) -> None:
    d.pipe("in", "a", {"x": 2}, timestamp=1)
    d.pipe_raw("in", b"b", b"{not json", timestamp=2, headers=[("trace", b"t1")])
    d.pipe("in", "c", {"x": 0}, timestamp=3)
    d.pipe("in", "d", {"x": 4}, timestamp=4)


# --- error policies -----------------------------------------------------------------------------


def test_fail_policy_raises_on_undecodable_input_naming_its_position() -> None:
    with TopologyTestDriver(inverse_topology().build(), error_policy="fail") as d:
        d.pipe("in", "a", {"x": 2}, timestamp=1)
        with pytest.raises(SerializationError) as info:
            d.pipe_raw("in", b"b", b"{not json", timestamp=2)
        message = str(info.value)
        assert message.startswith("cannot decode record at in[0]@1: invalid JSON")
        assert message.endswith("; 9 bytes (in its value)")
        assert "not json" not in message, "record contents stay out of messages by default"


def test_fail_policy_raises_on_a_failing_user_function_naming_the_step() -> None:
    with TopologyTestDriver(inverse_topology().build()) as d:
        with pytest.raises(ProcessingError) as info:
            d.pipe("in", "c", {"x": 0}, timestamp=3)
        assert str(info.value) == (
            "step 'invert' raised ZeroDivisionError: division by zero (record at in[0]@0)"
        )
        assert info.value.step == "invert"
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        assert d.read_values("out") == []


def test_skip_policy_counts_and_continues() -> None:
    with TopologyTestDriver(inverse_topology().build(), error_policy="skip") as d:
        pipe_good_and_bad(d)
        assert d.read_key_values("out") == [("a", 0.5), ("d", 0.25)]
        assert d.counters() == {"records-skipped": 2}
        assert "test-app-dlq" not in d.output_topics()


def test_dead_letter_policy_sends_the_raw_record_with_error_headers() -> None:
    policy = ErrorPolicy.DEAD_LETTER
    with TopologyTestDriver(inverse_topology().build(), error_policy=policy, app_id="app") as d:
        d.advance_wall_clock(1234)
        pipe_good_and_bad(d)
        assert d.read_key_values("out") == [("a", 0.5), ("d", 0.25)]
        assert d.counters() == {"records-dead-lettered": 2}
        bad_json, bad_value = d.read_output("app-dlq")
        assert (bad_json.key, bad_json.value, bad_json.timestamp) == (b"b", b"{not json", 1234)
        assert (bad_value.key, bad_value.value) == (b"c", b'{"x":0}')

        json_headers = dict(bad_json.headers)
        assert json_headers["trace"] == b"t1"  # the record's own headers are kept
        assert (json_headers["streamer.error"] or b"").startswith(
            b"cannot decode record at in[0]@1"
        )
        assert json_headers["streamer.error.type"] == b"SerializationError"
        assert json_headers["streamer.error.step"] == b"deserialize"
        assert json_headers["streamer.source.topic"] == b"in"
        assert json_headers["streamer.source.partition"] == b"0"
        assert json_headers["streamer.source.offset"] == b"1"

        value_headers = dict(bad_value.headers)
        assert value_headers["streamer.error"] == (
            b"step 'invert' raised ZeroDivisionError: division by zero"
        )
        assert value_headers["streamer.error.type"] == b"ProcessingError"
        assert value_headers["streamer.error.step"] == b"invert"
        assert value_headers["streamer.source.offset"] == b"2"


def test_dead_letter_names_the_partition_of_the_failing_record() -> None:
    with TopologyTestDriver(
        inverse_topology().build(), error_policy="dead-letter", partitions={"in": 3}
    ) as d:
        d.pipe("in", "z", {"x": 0}, timestamp=0, partition=2)
        d.pipe("in", "z", {"x": 0}, timestamp=0, partition=2)
        headers = [dict(r.headers) for r in d.read_output("test-app-dlq")]
        assert [(h["streamer.source.partition"], h["streamer.source.offset"]) for h in headers] == [
            (b"2", b"0"),
            (b"2", b"1"),
        ]


def test_unknown_error_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="'ignore' is not a valid ErrorPolicy"):
        TopologyTestDriver(inverse_topology().build(), error_policy="ignore")


def test_errors_in_stateful_steps_follow_the_policy() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().reduce(lambda a, v: a + v, name="sum").to_stream().to("out")
    with TopologyTestDriver(b.build(), error_policy="skip") as d:
        d.pipe("in", "k", 1, timestamp=0)
        d.pipe("in", "k", "oops", timestamp=1)  # 1 + "oops" raises inside the reducer
        d.pipe("in", "k", 2, timestamp=2)
        assert d.read_values("out") == [1, 3]
        assert d.counters()["records-skipped"] == 1
        assert d.store("sum").get("k") == 3


def test_unencodable_output_names_the_sink_topic() -> None:
    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: {"v": v}).to("out", value_serde=StringSerde())
    with TopologyTestDriver(b.build()) as d, pytest.raises(ProcessingError) as info:
        d.pipe("in", "k", 1, timestamp=0)
    assert str(info.value).startswith("cannot encode a record for topic 'out': ")
    b2 = StreamsBuilder()
    b2.stream("in").map_values(lambda v: {1, 2}).to("out")
    with TopologyTestDriver(b2.build()) as d, pytest.raises(ProcessingError) as info:
        d.pipe("in", "k", 1, timestamp=0)
    assert str(info.value).startswith("cannot encode a record for topic 'out': cannot encode set")


# --- timestamps -----------------------------------------------------------------------------------


def event_time(key: Any, value: Any, record_timestamp: int) -> int:
    return int(value["ts"])


def test_timestamp_extractor_sets_event_time_for_windows_and_outputs() -> None:
    b = StreamsBuilder()
    s = b.stream("in", timestamp_extractor=event_time)
    s.to("copy")
    s.group_by_key().windowed_by(TumblingWindows(size=100)).count(name="w").to_stream().map(
        lambda k, v: (k.key, [k.start, v])
    ).to("counts")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", {"ts": 150}, timestamp=999_999)
        d.pipe("in", "k", {"ts": 120}, timestamp=1)
        d.pipe("in", "k", {"ts": 210}, timestamp=5)
        assert [r.timestamp for r in d.read_output("copy")] == [150, 120, 210]
        assert d.read_values("counts") == [[100, 1], [100, 2], [200, 1]]


def test_a_raising_timestamp_extractor_is_a_processing_error() -> None:
    b = StreamsBuilder()
    b.stream("in", timestamp_extractor=event_time, name="src").to("out")
    with (
        TopologyTestDriver(b.build()) as d,
        pytest.raises(ProcessingError, match=r"timestamp extractor of 'src' raised KeyError"),
    ):
        d.pipe("in", "k", {"no-ts": 1}, timestamp=0)
    with TopologyTestDriver(b.build(), error_policy="skip") as d:
        d.pipe("in", "k", {"no-ts": 1}, timestamp=0)
        d.pipe("in", "k", {"ts": 7}, timestamp=0)
        assert d.read_values("out") == [{"ts": 7}]
        assert d.counters()["records-skipped"] == 1


def test_negative_timestamps_are_rejected() -> None:
    b = StreamsBuilder()
    b.stream("in", name="src").to("out")
    with TopologyTestDriver(b.build()) as d:
        with pytest.raises(ProcessingError, match=r"negative timestamp \(-5\)") as info:
            d.pipe("in", "k", 1, timestamp=-5)
        assert info.value.step == "src"
    with TopologyTestDriver(b.build(), error_policy="dead-letter") as d:
        d.pipe("in", "k", 1, timestamp=-5)
        d.pipe("in", "k", 2, timestamp=5)
        assert d.read_values("out") == [2]
        (dead,) = d.read_output("test-app-dlq")
        assert dict(dead.headers)["streamer.error.step"] == b"src"


def test_an_extractor_returning_a_negative_time_is_rejected() -> None:
    b = StreamsBuilder()
    b.stream("in", timestamp_extractor=event_time).to("out")
    with TopologyTestDriver(b.build(), error_policy="skip") as d:
        d.pipe("in", "k", {"ts": -1}, timestamp=100)
        assert d.read_values("out") == []
        assert d.counters()["records-skipped"] == 1


def test_pipe_defaults_the_timestamp_to_the_wall_clock() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out")
    with TopologyTestDriver(b.build(), wall_clock_ms=500) as d:
        d.pipe("in", "k", 1)
        d.advance_wall_clock(25)
        d.pipe("in", "k", 2)
        assert [r.timestamp for r in d.read_output("out")] == [500, 525]


# --- input and output handling ------------------------------------------------------------------


def test_pipe_to_a_topic_nobody_reads_fails() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out")
    with (
        TopologyTestDriver(b.build()) as d,
        pytest.raises(StreamerError, match="no step reads topic 'nowhere'"),
    ):
        d.pipe("nowhere", "k", 1)


def test_read_output_takes_records_once_and_lists_topics() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_many("in", [("a", 1, 10), ("b", 2, 20)])
        assert d.output_topics() == ["out"]
        first = d.read_output("out")
        assert [(r.topic, r.key, r.value, r.timestamp) for r in first] == [
            ("out", "a", 1, 10),
            ("out", "b", 2, 20),
        ]
        assert d.read_output("out") == []
        assert d.read_output("never-written") == []


def test_read_output_of_an_unknown_topic_gives_bytes() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().count(name="cnt")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=0)
        (record,) = d.read_output("test-app-cnt-changelog")
        assert (record.key, record.value) == (b"k", (1).to_bytes(8, "big"))


def test_default_partitioning_is_stable_by_key_bytes() -> None:
    assert default_partition(None, 4) == 0
    assert default_partition(b"anything", 1) == 0
    assert default_partition(b"key", 4) == partition_for_key(b"key", 4)
    b = StreamsBuilder()
    b.stream("in").process(_TaskTag, name="tag").to("out")
    with TopologyTestDriver(b.build(), partitions={"in": 4}) as d:
        for key in ["a", "b", "c", "d", "e"]:
            d.pipe("in", key, 0, timestamp=0)
        tags = d.read_key_values("out")
        assert tags == [(k, f"0_{partition_for_key(k.encode(), 4)}") for k in "abcde"]


def test_store_lookup_errors() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out")
    with (
        TopologyTestDriver(b.build()) as d,
        pytest.raises(StreamerError, match="no store named 'nope'"),
    ):
        d.store("nope")


def test_counters_sum_over_tasks() -> None:
    b = StreamsBuilder()
    b.stream("in").branch({"never": lambda k, v: False})["never"].to("out")
    with TopologyTestDriver(b.build(), partitions={"in": 3}) as d:
        for p in range(3):
            d.pipe("in", "k", 1, timestamp=0, partition=p)
        assert d.counters() == {"branch-unmatched": 3}


class _TaskTag(Processor):
    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(self.context.task_id))
