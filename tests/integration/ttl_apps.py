"""The topology of the TTL integration test: a count whose keys expire."""

from __future__ import annotations

import os

from streamer import StreamsBuilder, Topology

INPUT = "STREAMER_TEST_INPUT"
OUTPUT = "STREAMER_TEST_OUTPUT"
TTL_MS = 10_000


def expiring_count() -> Topology:
    """Per key, the number of records since it was last idle for :data:`TTL_MS` of stream
    time; an expired key is forwarded as a tombstone. Counts are 8-byte longs."""
    builder = StreamsBuilder()
    (
        builder.stream(os.environ[INPUT])
        .group_by_key()
        .count(name="expiring-count", ttl=TTL_MS)
        .to_stream()
        .to(os.environ[OUTPUT])
    )
    return builder.build()
