"""The processor API through the driver: user processors, stores, routing, punctuation."""

from __future__ import annotations

import pytest

from streamer import (
    Processor,
    ProcessorContext,
    PunctuationType,
    Record,
    RecordOrigin,
    StoreKind,
    StreamsBuilder,
)
from streamer.errors import ProcessingError, StreamerError, TopologyError
from streamer.serde import LongSerde, StringSerde
from streamer.testing import TopologyTestDriver


class Dedup(Processor):
    """Forwards the first record of each key; counts repeats in its store."""

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.seen = context.store("seen")

    def process(self, record: Record) -> None:
        count = self.seen.get(record.key)
        self.seen.put(record.key, (count or 0) + 1)
        if count is None:
            self.context.forward(record)


def dedup_topology() -> StreamsBuilder:
    b = StreamsBuilder()
    b.add_store("seen", key_serde=StringSerde(), value_serde=LongSerde())
    b.stream("in").process(Dedup, name="dedup", stores=["seen"]).to("out")
    return b


def test_user_processor_with_a_declared_store() -> None:
    with TopologyTestDriver(dedup_topology().build(), app_id="app") as d:
        for key in ["a", "b", "a", "a", "c"]:
            d.pipe("in", key, key.upper(), timestamp=0)
        assert d.read_key_values("out") == [("a", "A"), ("b", "B"), ("c", "C")]
        assert d.store("seen").get("a") == 3
        changelog = d.read_output(
            "app-seen-changelog", key_serde=StringSerde(), value_serde=LongSerde()
        )
        assert [(r.key, r.value) for r in changelog] == [
            ("a", 1),
            ("b", 1),
            ("a", 2),
            ("a", 3),
            ("c", 1),
        ]


def test_declared_store_without_changelog() -> None:
    b = StreamsBuilder()
    b.add_store("seen", key_serde=StringSerde(), value_serde=LongSerde(), changelog=False)
    b.stream("in").process(Dedup, name="dedup", stores=["seen"]).to("out")
    topology = b.build()
    assert topology.internal_topics("app") == {}
    with TopologyTestDriver(topology, app_id="app") as d:
        d.pipe("in", "a", 1, timestamp=0)
        assert d.output_topics() == ["out"]


class Router(Processor):
    """Sends even values to the ``evens`` child and the rest to ``odds``."""

    def process(self, record: Record) -> None:
        self.context.forward(record, to="evens" if record.value % 2 == 0 else "odds")


def test_forward_to_a_named_child() -> None:
    b = StreamsBuilder()
    routed = b.stream("in").process(Router, name="router")
    routed.to("even-topic", name="evens")
    routed.map_values(lambda v: -v, name="odds").to("odd-topic")
    with TopologyTestDriver(b.build()) as d:
        for value in range(5):
            d.pipe("in", "k", value, timestamp=value)
        assert d.read_values("even-topic") == [0, 2, 4]
        assert d.read_values("odd-topic") == [-1, -3]


def test_forward_to_an_unknown_child_fails_clearly() -> None:
    b = StreamsBuilder()
    b.stream("in").process(Router, name="router").to("out", name="evens")
    with TopologyTestDriver(b.build()) as d, pytest.raises(ProcessingError) as info:
        d.pipe("in", "k", 1, timestamp=0)
    assert "step 'router' has no child step 'odds'" in str(info.value)
    assert info.value.step == "router"


class ContextProbe(Processor):
    """Forwards what its context says about the record being processed."""

    def process(self, record: Record) -> None:
        origin = self.context.origin
        assert isinstance(origin, RecordOrigin)
        self.context.forward(
            record.with_value(
                {
                    "step": self.context.step_name,
                    "task": self.context.task_id,
                    "partition": self.context.partition,
                    "children": list(self.context.child_names),
                    "stream_time": self.context.stream_time,
                    "wall": self.context.wall_clock_time,
                    "origin": [origin.topic, origin.partition, origin.offset],
                }
            )
        )


def test_processor_context_describes_the_current_record() -> None:
    b = StreamsBuilder()
    b.stream("in").process(ContextProbe, name="probe").to("out", name="sink")
    with TopologyTestDriver(b.build(), partitions={"in": 2}, wall_clock_ms=77) as d:
        d.pipe("in", "k", 1, timestamp=10, partition=1)
        d.pipe("in", "k", 1, timestamp=5, partition=1)
        first, second = d.read_values("out")
        assert first == {
            "step": "probe",
            "task": "0_1",
            "partition": 1,
            "children": ["sink"],
            "stream_time": 10,
            "wall": 77,
            "origin": ["in", 1, 0],
        }
        assert second["stream_time"] == 10  # stream time never goes back
        assert second["origin"] == ["in", 1, 1]


# --- punctuation ---------------------------------------------------------------------------


class Ticker(Processor):
    """Forwards one record per punctuation, carrying the time it fired for."""

    def __init__(self, interval: int, kind: PunctuationType) -> None:
        self.interval = interval
        self.kind = kind

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        context.schedule(self.interval, self.kind, self.tick)

    def tick(self, now: int) -> None:
        assert self.context.origin is None
        self.context.forward(Record("tick", now, now))

    def process(self, record: Record) -> None:
        self.context.forward(record)


def ticker(interval: int, kind: PunctuationType) -> StreamsBuilder:
    b = StreamsBuilder()
    b.stream("in").process(lambda: Ticker(interval, kind), name="ticker").filter(
        lambda k, v: k == "tick"
    ).to("ticks")
    return b


def test_stream_time_punctuation_fires_as_stream_time_passes_each_interval() -> None:
    with TopologyTestDriver(ticker(1000, PunctuationType.STREAM_TIME).build()) as d:
        fired = []
        for ts in (5, 999, 1000, 1500, 400, 2100, 3050, 7000):
            d.pipe("in", "k", 0, timestamp=ts)
            fired.append(d.read_values("ticks"))
        # once per interval boundary crossed (missed ones are not replayed); never on an
        # out-of-order record; always aligned to multiples of the interval
        assert fired == [[], [], [1000], [], [], [2100], [3050], [7000]]
        d.advance_wall_clock(60_000)
        assert d.read_values("ticks") == []


def test_wall_clock_punctuation_fires_without_records() -> None:
    with TopologyTestDriver(ticker(500, PunctuationType.WALL_CLOCK).build()) as d:
        d.pipe("in", "k", 0, timestamp=0)  # creates the task at wall clock 0
        d.advance_wall_clock(499)
        assert d.read_values("ticks") == []
        d.advance_wall_clock(1)
        assert d.read_values("ticks") == [500]
        d.advance_wall_clock(1200)  # 1700: two intervals passed, one call
        assert d.read_values("ticks") == [1700]
        d.advance_wall_clock(300)  # 2000: the next multiple of the interval
        assert d.read_values("ticks") == [2000]
        d.pipe("in", "k", 0, timestamp=10**9)  # stream time does not move the wall clock
        assert d.read_values("ticks") == []


def test_punctuation_interval_must_be_positive() -> None:
    with (
        TopologyTestDriver(ticker(0, PunctuationType.WALL_CLOCK).build()) as d,
        pytest.raises(StreamerError, match="interval must be positive"),
    ):
        d.pipe("in", "k", 0, timestamp=0)


def test_wall_clock_cannot_go_back() -> None:
    with (
        TopologyTestDriver(dedup_topology().build()) as d,
        pytest.raises(StreamerError, match="cannot go back"),
    ):
        d.advance_wall_clock(-1)


class FlushEvery(Processor):
    """Buffers values in a window store and flushes them on a stream-time punctuation."""

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.buffer = context.store("buffer")
        context.schedule(100, PunctuationType.STREAM_TIME, self.flush)

    def process(self, record: Record) -> None:
        self.buffer.put(record.key, record.timestamp, record.value)

    def flush(self, now: int) -> None:
        for key, ts, value in list(self.buffer.windows_starting_before(now)):
            self.context.forward(Record(key, value, ts))
            self.buffer.delete(key, ts)


def test_punctuator_reads_and_writes_a_window_store() -> None:
    b = StreamsBuilder()
    b.add_store("buffer", StoreKind.WINDOW, key_serde=StringSerde())
    b.stream("in").process(FlushEvery, name="flusher", stores=["buffer"]).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "a", 1, timestamp=10)
        d.pipe("in", "b", 2, timestamp=50)
        assert d.read_key_values("out") == []
        d.pipe("in", "c", 3, timestamp=120)
        assert d.read_key_values("out") == [("a", 1), ("b", 2)]
        assert [k for k, _, _ in d.store("buffer").all()] == ["c"]


# --- store declaration errors ------------------------------------------------------------------


class Sneaky(Processor):
    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.other = context.store("secret")

    def process(self, record: Record) -> None:
        self.context.forward(record)


def test_using_an_undeclared_store_fails_clearly() -> None:
    b = StreamsBuilder()
    b.add_store("secret")
    b.add_store("mine")
    b.stream("in").process(Sneaky, name="sneaky", stores=["mine"]).to("out")
    with TopologyTestDriver(b.build()) as d, pytest.raises(ProcessingError) as info:
        d.pipe("in", "k", 1, timestamp=0)
    assert str(info.value) == "step 'sneaky' did not declare store 'secret'"


def test_naming_a_store_that_was_never_added_fails_at_build() -> None:
    b = StreamsBuilder()
    b.stream("in").process(Dedup, name="dedup", stores=["seen"]).to("out")
    with pytest.raises(TopologyError, match="'dedup' uses store 'seen', which is not declared"):
        b.build()


def test_store_names_are_unique_and_valid() -> None:
    b = StreamsBuilder()
    b.add_store("seen")
    with pytest.raises(TopologyError, match="duplicate store name 'seen'"):
        b.add_store("seen")
    with pytest.raises(TopologyError, match="invalid step name"):
        b.add_store("no spaces")


def test_processors_sharing_a_store_run_in_one_sub_topology() -> None:
    b = StreamsBuilder()
    b.add_store("seen", key_serde=StringSerde(), value_serde=LongSerde())
    b.stream("a").process(Dedup, name="dedup-a", stores=["seen"]).to("out")
    b.stream("b").process(Dedup, name="dedup-b", stores=["seen"]).to("out")
    topology = b.build()
    assert len(topology.subtopologies) == 1
    with TopologyTestDriver(topology) as d:
        d.pipe("a", "k", 1, timestamp=0)
        d.pipe("b", "k", 2, timestamp=0)
        d.pipe("b", "j", 3, timestamp=0)
        assert d.read_key_values("out") == [("k", 1), ("j", 3)]


class Closing(Processor):
    closed: list[str] = []

    def process(self, record: Record) -> None:
        self.context.forward(record)

    def close(self) -> None:
        Closing.closed.append(self.context.task_id)


def test_processors_are_closed_with_the_driver() -> None:
    Closing.closed = []
    b = StreamsBuilder()
    b.stream("in").process(Closing, name="closing").to("out")
    with TopologyTestDriver(b.build(), partitions={"in": 2}) as d:
        d.pipe("in", "k", 1, timestamp=0, partition=0)
        d.pipe("in", "k", 1, timestamp=0, partition=1)
    assert sorted(Closing.closed) == ["0_0", "0_1"]


def test_process_output_is_treated_as_rekeyed() -> None:
    b = StreamsBuilder()
    processed = b.stream("in").process(Dedup, name="dedup", stores=["seen"])
    b.add_store("seen", key_serde=StringSerde(), value_serde=LongSerde())
    with pytest.raises(TopologyError, match="give it a stable name"):
        processed.group_by_key()
    processed.group_by_key(name="after-process").count(name="cnt").to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", "v", timestamp=0)
        assert d.read_key_values("out") == [("k", 1)]


class FailingTicker(Processor):
    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        context.schedule(100, PunctuationType.WALL_CLOCK, self.tick)

    def tick(self, now: int) -> None:
        raise ValueError(f"boom at {now}")

    def process(self, record: Record) -> None:
        self.context.forward(record)


def test_a_raising_punctuator_names_its_step() -> None:
    b = StreamsBuilder()
    b.stream("in").process(FailingTicker, name="ticker").to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=0)
        with pytest.raises(ProcessingError) as info:
            d.advance_wall_clock(100)
        assert str(info.value) == "a punctuator of step 'ticker' raised ValueError: boom at 100"
        assert info.value.step == "ticker"
