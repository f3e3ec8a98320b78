"""Table.suppress against a reference model of its buffer, across a restart.

Random updates and deletions of a few keys, with timestamps that may go back, a random
time limit and random bounds: the emitted sequence must be exactly the model's. The
driver is closed and reopened on the same RocksDB state once, mid-sequence, so the buffer
must live in its store, not in the processor.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import StreamsBuilder
from streamer.testing import TopologyTestDriver
from tests.unit.dsl.suppress_model import BufferModel

KEYS = ["a", "b", "c", "d", "e"]
Update = tuple[str, int | None, int]


updates = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.one_of(st.none(), st.integers(0, 10_000)),
        st.integers(0, 400),
    ),
    max_size=40,
)


def _driver(topology: Any, state_dir: Path) -> TopologyTestDriver:
    return TopologyTestDriver(topology, state="rocksdb", state_dir=state_dir)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    updates=updates,
    limit=st.integers(0, 150),
    max_records=st.one_of(st.none(), st.integers(1, 4)),
    max_bytes=st.one_of(st.none(), st.integers(1, 20)),
    restart_after=st.integers(0, 40),
)
def test_emitted_updates_match_the_buffer_model(
    updates: list[Update],
    limit: int,
    max_records: int | None,
    max_bytes: int | None,
    restart_after: int,
) -> None:
    builder = StreamsBuilder()
    bounded = max_records is not None or max_bytes is not None
    builder.table("t").suppress(
        until_time_limit=limit,
        max_records=max_records,
        max_bytes=max_bytes,
        when_full="emit-early" if bounded else None,
        name="calm",
    ).to_stream().to("out")
    topology = builder.build()
    model = BufferModel(limit, max_records, max_bytes)
    emitted: list[tuple[str, Any, int]] = []
    with tempfile.TemporaryDirectory() as state_dir:
        driver = _driver(topology, Path(state_dir))
        try:
            for index, (key, value, timestamp) in enumerate(updates):
                if index == restart_after:
                    emitted += [(r.key, r.value, r.timestamp) for r in driver.read_output("out")]
                    driver.close()
                    driver = _driver(topology, Path(state_dir))
                driver.pipe("t", key, value, timestamp=timestamp)
                model.update(key, value, timestamp)
            emitted += [(r.key, r.value, r.timestamp) for r in driver.read_output("out")]
        finally:
            driver.close()
    assert emitted == model.emitted
