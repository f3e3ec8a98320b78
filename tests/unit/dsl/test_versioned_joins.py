"""Versioned tables and as-of stream-table joins, through the test driver; and a reference
model: random out-of-order table updates, deletes and stream records."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import HistoryRetention, StreamsBuilder, TopologyError
from streamer.processors.versioned import BufferedRecordsSerde
from streamer.serde import JsonSerde, LongSerde
from streamer.testing import TopologyTestDriver


def priced(retention: int = 1_000, grace: int | None = None) -> StreamsBuilder:
    builder = StreamsBuilder()
    prices = builder.table("prices", versioned=HistoryRetention(retention))
    orders = builder.stream("orders")
    orders.join(prices, lambda o, p: [o, p], name="inner", grace=grace).to("inner")
    orders.left_join(prices, lambda o, p: [o, p], name="left", grace=grace).to("left")
    prices.to_stream().to("latest-prices")
    return builder


def rows(driver: TopologyTestDriver, topic: str) -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_output(topic)]


def test_describe_shows_the_versioned_store_and_the_as_of_join() -> None:
    text = priced(grace=50).build().describe(app_id="app")
    assert "prices [versioned, history 1000 ms] changelog: app-prices-changelog" in text
    assert "Processor: prices [table] versioned, history 1000 ms" in text
    assert "[join-table] left, as of the record's time in prices, grace 50 ms" in text
    assert "left-buffer [window] changelog: app-left-buffer-changelog" in text


def test_describe_json_gives_the_history_retention() -> None:
    from streamer.cli.describe import topology_json

    stores = {s["name"]: s for s in topology_json(priced().build(), "app")["stores"]}
    assert stores["prices"]["kind"] == "versioned"
    assert stores["prices"]["history_retention_ms"] == 1_000


@pytest.mark.parametrize("state", ["memory", "rocksdb"])
def test_a_record_joins_the_value_valid_at_its_timestamp(state: str, tmp_path: Path) -> None:
    topology = priced().build()
    with TopologyTestDriver(topology, state=state, state_dir=tmp_path) as driver:  # type: ignore[arg-type]
        driver.pipe("prices", "p", 10, timestamp=100)
        driver.pipe("prices", "p", 20, timestamp=200)
        driver.pipe("orders", "p", "o1", timestamp=150)
        driver.pipe("orders", "p", "o0", timestamp=50)
        driver.pipe("orders", "p", "o2", timestamp=250)
        assert rows(driver, "inner") == [("p", ["o1", 10], 150), ("p", ["o2", 20], 250)]
        assert rows(driver, "left") == [
            ("p", ["o1", 10], 150),
            ("p", ["o0", None], 50),
            ("p", ["o2", 20], 250),
        ]
        assert driver.counters() == {"join-unmatched-dropped": 1}


def test_out_of_order_table_updates_go_into_history_and_are_not_forwarded() -> None:
    with TopologyTestDriver(priced().build()) as driver:
        driver.pipe("prices", "p", 10, timestamp=100)
        driver.pipe("prices", "p", 30, timestamp=300)
        driver.pipe("prices", "p", 20, timestamp=200)  # out of order
        driver.pipe("prices", "p", None, timestamp=400)  # a tombstone is a version
        assert rows(driver, "latest-prices") == [
            ("p", 10, 100),
            ("p", 30, 300),
            ("p", None, 400),
        ]
        driver.pipe("orders", "p", "o", timestamp=250)
        driver.pipe("orders", "p", "late", timestamp=450)
        assert driver.read_values("inner") == [["o", 20]]
        assert driver.read_values("left") == [["o", 20], ["late", None]]
        assert driver.counters() == {"table-update-out-of-order": 1, "join-unmatched-dropped": 1}


def test_updates_and_records_older_than_the_history_are_dropped_and_counted() -> None:
    with TopologyTestDriver(priced(retention=100).build()) as driver:
        driver.pipe("prices", "p", 10, timestamp=100)
        driver.pipe("prices", "p", 20, timestamp=500)
        driver.pipe("prices", "p", 15, timestamp=399)  # older than 500 - 100: refused
        driver.pipe("orders", "p", "old", timestamp=399)
        driver.pipe("orders", "p", "edge", timestamp=400)
        assert driver.read_values("inner") == [["edge", 10]]
        assert driver.read_values("left") == [["edge", 10]]  # no guessed None for "old"
        assert driver.counters() == {
            "table-update-expired-dropped": 1,
            "join-outside-history-dropped": 2,
        }


def test_with_a_grace_period_late_table_updates_are_taken_into_account() -> None:
    with TopologyTestDriver(priced(grace=100).build()) as driver:
        driver.pipe("prices", "p", 10, timestamp=100)
        driver.pipe("orders", "p", "o", timestamp=200, headers=[("trace", b"t-1"), ("n", None)])
        driver.pipe("prices", "p", 15, timestamp=150)  # late, but within the grace
        assert driver.read_output("inner") == []  # waiting until stream time reaches 300
        driver.pipe("prices", "q", 1, timestamp=299)
        assert driver.read_output("inner") == []
        driver.pipe("prices", "q", 2, timestamp=300)  # table records move stream time too
        [joined] = driver.read_output("inner")
        assert (joined.key, joined.value, joined.timestamp) == ("p", ["o", 15], 200)
        assert joined.headers == (("trace", b"t-1"), ("n", None))
        assert driver.store("left-buffer").all() is not None
        assert list(driver.store("left-buffer").all()) == []
        driver.pipe("orders", "p", "behind", timestamp=180)  # 120 behind: joins at once
        assert driver.read_values("inner") == [["behind", 15]]


def test_map_values_and_filter_of_a_versioned_table_keep_the_history() -> None:
    builder = StreamsBuilder()
    prices = builder.table("prices", versioned=HistoryRetention(1_000))
    cents = prices.map_values(lambda p: p * 100).filter(lambda _k, c: c < 5_000)
    builder.stream("orders").left_join(cents, lambda o, c: [o, c], name="j").to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("prices", "p", 10, timestamp=100)
        driver.pipe("prices", "p", 90, timestamp=200)
        driver.pipe("orders", "p", "a", timestamp=150)
        driver.pipe("orders", "p", "b", timestamp=250)
        assert driver.read_values("out") == [["a", 1_000], ["b", None]]


def test_a_table_without_versioned_keeps_joining_the_current_row() -> None:
    builder = StreamsBuilder()
    prices = builder.table("prices")
    builder.stream("orders").join(prices, lambda o, p: [o, p], name="j").to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("prices", "p", 10, timestamp=100)
        driver.pipe("prices", "p", 20, timestamp=200)
        driver.pipe("orders", "p", "o", timestamp=150)
        assert driver.read_values("out") == [["o", 20]]


def test_a_table_table_join_reads_the_latest_row_of_a_versioned_table() -> None:
    builder = StreamsBuilder()
    prices = builder.table("prices", versioned=HistoryRetention(1_000))
    names = builder.table("names")
    names.join(prices, lambda n, p: [n, p], name="named-prices").to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("prices", "p", 10, timestamp=200)
        driver.pipe("prices", "p", 5, timestamp=100)  # history only: no update downstream
        driver.pipe("names", "p", "pen", timestamp=50)
        assert driver.read_values("out") == [["pen", 10]]


@pytest.mark.parametrize(
    ("versioned", "grace", "error"),
    [
        (None, 10, "grace= needs a versioned table"),
        (HistoryRetention(100), 101, "between 0 and the table's history retention"),
        (HistoryRetention(100), -1, "between 0 and"),
    ],
)
def test_a_grace_period_needs_a_versioned_table_and_fits_its_history(
    versioned: HistoryRetention | None, grace: int, error: str
) -> None:
    builder = StreamsBuilder()
    prices = builder.table("prices", versioned=versioned)
    with pytest.raises(TopologyError, match=error):
        builder.stream("orders").join(prices, lambda o, p: p, name="j", grace=grace)


def test_a_processor_can_declare_a_versioned_store() -> None:
    from streamer import Processor, Record, StoreKind

    class Remember(Processor):
        def process(self, record: Record) -> None:
            store = self.context.store("seen")
            store.put(record.key, record.value, record.timestamp)
            self.context.forward(record.with_value(store.get(record.key, as_of=15)))

    builder = StreamsBuilder()
    builder.add_store("seen", StoreKind.VERSIONED, history=HistoryRetention(100))
    builder.stream("in").process(Remember, stores=["seen"], name="remember").to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("in", "k", 1, timestamp=10)
        driver.pipe("in", "k", 2, timestamp=20)
        assert driver.read_values("out") == [1, 1]
    with pytest.raises(TopologyError, match="history retention goes with a versioned store"):
        StreamsBuilder().add_store("kv", history=HistoryRetention(100))
    with pytest.raises(TopologyError, match="history retention goes with a versioned store"):
        StreamsBuilder().add_store("v", StoreKind.VERSIONED)


def test_history_retention_is_checked() -> None:
    with pytest.raises(TopologyError, match="must be in"):
        HistoryRetention(0)
    with pytest.raises(TopologyError, match="int of milliseconds"):
        HistoryRetention(1.5)  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match="takes a HistoryRetention"):
        StreamsBuilder().table("t", versioned=3_600_000)  # type: ignore[arg-type]


def test_the_buffer_serde_round_trips_values_and_headers() -> None:
    serde = BufferedRecordsSerde(LongSerde())
    entries = [(1, ()), (-5, (("a", b"x"), ("b", None), ("é", b"")))]
    assert serde.decode(serde.encode(entries)) == entries
    with pytest.raises(Exception, match="truncated"):
        serde.decode(serde.encode(entries)[:-1])
    assert BufferedRecordsSerde(JsonSerde()).decode(b"\x00\x00\x00\x00") == []


# --- the reference model -------------------------------------------------------------------

Event = tuple[str, str, int | None, int]  # topic, key, value, timestamp


class JoinModel:
    """The join as documented: the task's stream time, the table's accepted history, and a
    buffer released in (timestamp, encoded key length, key, arrival) order."""

    def __init__(self, retention: int, grace: int) -> None:
        self.retention, self.grace = retention, grace
        self.stream_time = -1
        self.table_time = -1
        self.history: dict[str, dict[int, int | None]] = {}
        self.waiting: list[tuple[int, int, str, int, int]] = []  # ts, len, key, seq, value
        self.inner: list[tuple[str, list[Any], int]] = []
        self.left: list[tuple[str, list[Any], int]] = []
        self.outside = 0

    def table(self, key: str, value: int | None, ts: int) -> None:
        self.stream_time = max(self.stream_time, ts)
        if ts >= self.table_time - self.retention:
            self.history.setdefault(key, {})[ts] = value
            self.table_time = max(self.table_time, ts)
        self.release()

    def stream(self, seq: int, key: str, value: int, ts: int) -> None:
        self.stream_time = max(self.stream_time, ts)
        self.release()
        if self.grace == 0 or ts <= self.stream_time - self.grace:
            self.join(key, value, ts)
        else:
            self.waiting.append((ts, len(key.encode()), key, seq, value))

    def release(self) -> None:
        due = sorted(w for w in self.waiting if w[0] <= self.stream_time - self.grace)
        self.waiting = [w for w in self.waiting if w not in due]
        for ts, _, key, _, value in due:
            self.join(key, value, ts)

    def join(self, key: str, value: int, ts: int) -> None:
        if ts < self.table_time - self.retention:
            self.outside += 2  # once per join
            return
        versions = self.history.get(key, {})
        times = [t for t in versions if t <= ts]
        row = versions[max(times)] if times else None
        if row is not None:
            self.inner.append((key, [value, row], ts))
        self.left.append((key, [value, row], ts))


events = st.lists(
    st.tuples(
        st.sampled_from(["prices", "orders"]),
        st.sampled_from(["a", "b", "cc"]),
        st.one_of(st.none(), st.integers(0, 99)),
        st.integers(0, 400),
    ),
    max_size=50,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=events,
    retention=st.integers(1, 150),
    grace_share=st.floats(0, 1),
    state=st.sampled_from(["memory", "rocksdb"]),
)
def test_join_results_equal_the_model(
    events: list[Event], retention: int, grace_share: float, state: str
) -> None:
    grace = int(retention * grace_share)
    model = JoinModel(retention, grace)
    with (
        tempfile.TemporaryDirectory() as tmp,
        TopologyTestDriver(
            priced(retention, grace).build(),
            state=state,  # type: ignore[arg-type]
            state_dir=Path(tmp),
        ) as driver,
    ):
        for seq, (topic, key, value, ts) in enumerate(events):
            if topic == "prices":
                model.table(key, value, ts)
                driver.pipe("prices", key, value, timestamp=ts)
            elif value is not None:
                model.stream(seq, key, value, ts)
                driver.pipe("orders", key, value, timestamp=ts)
        assert rows(driver, "inner") == model.inner
        assert rows(driver, "left") == model.left
        assert driver.counters().get("join-outside-history-dropped", 0) == model.outside
