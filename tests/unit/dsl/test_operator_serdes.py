"""Serdes per join and per store: StreamJoined, joined-value serdes, aggregation store serdes,
and the error when a store's serde cannot encode a value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer import (
    BytesSerde,
    ErrorPolicy,
    IntegerSerde,
    JoinWindows,
    LongSerde,
    ProcessingError,
    StreamJoined,
    StreamsBuilder,
    StringSerde,
    TopologyError,
    TumblingWindows,
)
from streamer.processors.joins import JoinBufferSerde
from streamer.testing import TopologyTestDriver

RAW = BytesSerde()


def bytes_join(stream_joined: StreamJoined | None) -> StreamsBuilder:
    """Two streams of raw bytes joined within 10 ms; the result is bytes too."""
    b = StreamsBuilder()
    left = b.stream("left", value_serde=RAW)
    right = b.stream("right", value_serde=RAW)
    left.join(
        right,
        lambda x, y: x + b"|" + y,
        windows=JoinWindows.of(10),
        name="pair",
        value_serde=RAW,
        stream_joined=stream_joined,
    ).to("pairs")
    return b


def test_stream_joined_serdes_buffer_values_that_json_cannot_hold() -> None:
    serdes = StreamJoined(value_serde=RAW, other_value_serde=RAW)
    topology = bytes_join(serdes).build()
    assert isinstance(topology.store("pair-left").value_serde, JoinBufferSerde)
    with TopologyTestDriver(topology) as d:
        d.pipe("left", "k", b"\x00\xff", timestamp=1)
        d.pipe("right", "k", b"r", timestamp=5)
        d.pipe("left", "k", b"\x01", timestamp=6)
        # value_serde=RAW: the joined values are written as they are, no JSON around them.
        assert d.read_key_values("pairs") == [("k", b"\x00\xff|r"), ("k", b"\x01|r")]
        assert [v for _, _, v in d.store("pair-right").all()] == [[[b"r", True]]]


def test_stream_joined_key_serde_encodes_both_stores() -> None:
    b = StreamsBuilder(key_serde=LongSerde())
    a, c = b.stream("a"), b.stream("c")
    serdes = StreamJoined(key_serde=IntegerSerde())
    a.join(c, lambda x, y: [x, y], windows=JoinWindows.of(5), name="j", stream_joined=serdes)
    topology = b.build()
    assert isinstance(topology.store("j-left").key_serde, IntegerSerde)
    assert isinstance(topology.store("j-right").key_serde, IntegerSerde)


def test_a_value_the_store_serde_cannot_encode_names_the_store_and_the_step() -> None:
    with (
        TopologyTestDriver(bytes_join(None).build()) as d,
        pytest.raises(ProcessingError) as caught,
    ):
        d.pipe("left", "k", b"\x00", timestamp=1)
    message = str(caught.value)
    assert "state store 'pair-left' cannot encode a value of type list with JsonSerde" in message
    assert "stream_joined=StreamJoined" in message
    assert caught.value.step == "pair-left"
    assert "\\x00" not in message  # never the value itself


def test_a_store_encoding_failure_is_dead_lettered_under_its_step() -> None:
    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: bytes([v])).group_by_key().reduce(
        lambda _a, v: v, name="latest"
    )
    with TopologyTestDriver(b.build(), error_policy=ErrorPolicy.DEAD_LETTER, app_id="app") as d:
        d.pipe("in", "k", 7)
        (dead,) = d.read_output("app-dlq")
        headers = dict(dead.headers)
        assert headers["streamer.error.step"] == b"latest"
        assert headers["streamer.error.type"] == b"ProcessingError"
        assert b"state store 'latest' cannot encode a value of type bytes" in (
            headers["streamer.error"] or b""
        )


def test_reduce_with_a_store_value_serde_keeps_bytes() -> None:
    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: bytes([v])).group_by_key().reduce(
        lambda a, v: a + v, name="latest", value_serde=RAW
    ).to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1)
        d.pipe("in", "k", 2)
        assert d.store("latest").get("k") == b"\x01\x02"
        assert d.read_values("out") == [b"\x01", b"\x01\x02"]


def test_join_value_serde_sets_the_joined_values_serde() -> None:
    b = StreamsBuilder()
    orders = b.stream("orders")
    prices = b.table("prices")
    totals = orders.join(prices, lambda o, p: o["n"] * p, name="priced", value_serde=LongSerde())
    totals.to("totals")
    stock = b.table("stock")
    prices.join(stock, lambda p, s: p * s, name="worth", value_serde=LongSerde()).to_stream().to(
        "worth"
    )
    with TopologyTestDriver(b.build()) as d:
        d.pipe("prices", "pen", 3)
        d.pipe("stock", "pen", 10)
        d.pipe("orders", "pen", {"n": 2})
        assert [r.value for r in d.read_output("totals", value_serde=RAW)] == [
            (6).to_bytes(8, "big")
        ]
        assert [r.value for r in d.read_output("worth", value_serde=RAW)] == [
            (30).to_bytes(8, "big")
        ]


def test_stream_joined_is_refused_for_joins_with_tables() -> None:
    b = StreamsBuilder()
    with pytest.raises(TopologyError, match="keeps no store of its own"):
        b.stream("s").join(
            b.table("t"), lambda x, y: x, name="j", stream_joined=StreamJoined(value_serde=RAW)
        )


def test_aggregation_store_serdes() -> None:
    b = StreamsBuilder()
    grouped = b.stream("in").group_by_key()
    grouped.count(name="n", value_serde=IntegerSerde())
    grouped.aggregate(
        lambda: 0,
        lambda _k, _v, a: a + 1,
        name="agg",
        key_serde=StringSerde(),
        value_serde=LongSerde(),
    )
    grouped.windowed_by(TumblingWindows(size=10)).count(name="wn", value_serde=IntegerSerde())
    topology = b.build()
    assert isinstance(topology.store("n").value_serde, IntegerSerde)
    assert isinstance(topology.store("agg").value_serde, LongSerde)
    assert isinstance(topology.store("wn").value_serde, IntegerSerde)
    with TopologyTestDriver(topology, app_id="app") as d:
        d.pipe("in", "k", {}, timestamp=1)
        changelog = d.read_output("app-n-changelog")
        assert [(r.key, r.value) for r in changelog] == [(b"k", b"\x00\x00\x00\x01")]
        assert d.store("agg").get("k") == 1


entries = st.lists(st.tuples(st.binary(max_size=20), st.booleans()), max_size=8)


@given(entries=entries)
def test_join_buffer_serde_round_trips(entries: list[tuple[bytes, bool]]) -> None:
    serde = JoinBufferSerde(RAW)
    buffer: list[list[Any]] = [[value, matched] for value, matched in entries]
    assert serde.decode(serde.encode(buffer)) == buffer


def test_a_truncated_join_buffer_is_a_clear_error() -> None:
    serde = JoinBufferSerde(RAW)
    data = serde.encode([[b"abc", False]])
    with pytest.raises(Exception, match="truncated"):
        serde.decode(data[:-1])
