"""Topologies the query tests run in worker processes: counts to query by key, by range
and by window."""

from __future__ import annotations

from streamer import StreamsBuilder, Topology, TumblingWindows
from tests.integration.apps import _topics

WINDOW_MS = 10_000


def counts() -> Topology:
    """Per key: a running count in the key-value store ``counts`` (sent to the output topic
    as ``{"key": k, "count": c}``) and counts per 10 s window in the store
    ``window-counts`` (kept for a minute of stream time: the test data spans 18 s)."""
    source, sink = _topics()
    builder = StreamsBuilder()
    stream = builder.stream(source)
    (
        stream.group_by_key()
        .count(name="counts")
        .to_stream()
        .map(lambda k, v: (k, {"key": k, "count": v}))
        .to(sink)
    )
    stream.group_by_key().windowed_by(TumblingWindows(size=WINDOW_MS, grace=60_000)).count(
        name="window-counts"
    )
    return builder.build()
