"""Table.suppress: per-key rate limiting by stream time, bounded buffers, in the driver."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import StreamsBuilder, TumblingWindows
from streamer.errors import TopologyError
from streamer.processors.suppress import BufferFullError
from streamer.testing import TopologyTestDriver


def _suppressed(**options: Any) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.table("prices").suppress(name="calm-prices", **options).to_stream().to("out")
    return builder


def test_a_key_is_emitted_once_its_first_update_is_a_limit_old_with_its_latest_value() -> None:
    with TopologyTestDriver(_suppressed(until_time_limit=100).build()) as driver:
        driver.pipe("prices", "pen", 1, timestamp=0)
        driver.pipe("prices", "pen", 2, timestamp=50)
        driver.pipe("prices", "ink", 7, timestamp=60)
        assert driver.read_output("out") == []
        driver.pipe("prices", "pen", 3, timestamp=100)  # pen was first buffered at 0
        driver.pipe("prices", "ink", 8, timestamp=120)
        driver.pipe("prices", "pad", 1, timestamp=160)  # ink's limit: 60 + 100
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("out")] == [
            ("pen", 3, 100),
            ("ink", 8, 120),
        ]


def test_deletions_are_buffered_like_values() -> None:
    with TopologyTestDriver(_suppressed(until_time_limit=10).build()) as driver:
        driver.pipe("prices", "pen", 1, timestamp=0)
        driver.pipe("prices", "pen", None, timestamp=5)
        driver.pipe("prices", "ink", 1, timestamp=10)
        assert driver.read_key_values("out") == [("pen", None)]


def test_a_zero_limit_emits_every_update() -> None:
    with TopologyTestDriver(_suppressed(until_time_limit=0).build()) as driver:
        for n in range(3):
            driver.pipe("prices", "pen", n, timestamp=n)
        assert driver.read_key_values("out") == [("pen", 0), ("pen", 1), ("pen", 2)]


def test_a_full_buffer_emits_its_oldest_keys_early() -> None:
    topology = _suppressed(until_time_limit=1_000, max_records=2, when_full="emit-early").build()
    with TopologyTestDriver(topology) as driver:
        driver.pipe("prices", "pen", 1, timestamp=0)
        driver.pipe("prices", "ink", 1, timestamp=1)
        driver.pipe("prices", "pen", 2, timestamp=2)  # replaces: still two keys
        assert driver.read_key_values("out") == []
        driver.pipe("prices", "pad", 1, timestamp=3)  # three keys: the oldest, pen, goes
        driver.pipe("prices", "cap", 1, timestamp=4)  # then ink
        assert driver.read_key_values("out") == [("pen", 2), ("ink", 1)]


def test_a_byte_bound_counts_encoded_keys_and_values() -> None:
    # Keys are strings and values JSON: "pen" is 3 bytes and 10 is 2, so 5 bytes a key.
    topology = _suppressed(until_time_limit=1_000, max_bytes=10, when_full="emit-early").build()
    with TopologyTestDriver(topology) as driver:
        driver.pipe("prices", "pen", 10, timestamp=0)
        driver.pipe("prices", "ink", 10, timestamp=1)
        assert driver.read_key_values("out") == []
        driver.pipe("prices", "ink", 100, timestamp=2)  # 11 bytes: pen goes
        assert driver.read_key_values("out") == [("pen", 10)]


def test_a_full_buffer_with_shutdown_stops_with_a_clear_error() -> None:
    topology = _suppressed(until_time_limit=1_000, max_records=1, when_full="shutdown").build()
    with TopologyTestDriver(topology) as driver:
        driver.pipe("prices", "pen", 1, timestamp=0)
        with pytest.raises(BufferFullError, match=r"calm-prices.*when_full='shutdown'"):
            driver.pipe("prices", "ink", 1, timestamp=1)


def test_the_buffer_is_a_changelogged_store() -> None:
    with TopologyTestDriver(_suppressed(until_time_limit=10).build(), app_id="app") as driver:
        driver.pipe("prices", "pen", 1, timestamp=0)
        assert driver.read_output("app-calm-prices-changelog")  # buffered entries
        driver.pipe("prices", "ink", 1, timestamp=10)  # emits pen
        keys = [key for key, _ in driver.store("calm-prices").items()]
        assert not any(b"pen" in key for key in keys)
        assert any(b"ink" in key for key in keys)


def test_bad_options_are_refused_when_building() -> None:
    table = StreamsBuilder().table("prices")
    with pytest.raises(TopologyError, match="needs when_full"):
        table.suppress(until_time_limit=1, max_records=5, name="a")
    with pytest.raises(TopologyError, match="when_full must be"):
        table.suppress(until_time_limit=1, max_records=5, when_full="drop", name="b")  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match="max_bytes must be at least 1"):
        table.suppress(until_time_limit=1, max_bytes=0, when_full="shutdown", name="c")
    with pytest.raises(TopologyError, match="until_time_limit must be 0 or more"):
        table.suppress(until_time_limit=-1, name="d")
    windowed = (
        StreamsBuilder()
        .stream("s")
        .group_by_key()
        .windowed_by(TumblingWindows(size=10))
        .count(name="per-window")
    )
    with pytest.raises(TopologyError, match="emit='final'"):
        windowed.suppress(until_time_limit=1, name="e")


def test_describe_shows_the_limit_and_the_policy() -> None:
    builder = _suppressed(until_time_limit=500, max_records=10, when_full="shutdown")
    assert (
        "Processor: calm-prices [suppress] until_time_limit=500ms max_records=10 "
        "when_full=shutdown (stores: [calm-prices])"
    ) in builder.build().describe()


def test_lookups_read_the_table_before_suppression() -> None:
    builder = StreamsBuilder()
    calm = builder.table("prices").suppress(until_time_limit=1_000, name="calm-prices")
    builder.stream("orders").join(calm, lambda order, price: order * price, name="priced").to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("prices", "pen", 3, timestamp=0)
        driver.pipe("orders", "pen", 2, timestamp=1)
        assert driver.read_key_values("out") == [("pen", 6)]
