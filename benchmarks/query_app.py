"""The topology of the query latency benchmark: a count per key, topics from the environment.

A file (not a module of this package) so that ``streamer run`` of any version can load it.
"""

from __future__ import annotations

import os

from streamer import StreamsBuilder

builder = StreamsBuilder()
(
    builder.stream(os.environ["BENCH_SOURCE"])
    .group_by_key()
    .count(name="query-counts")
    .to_stream()
    .to(os.environ["BENCH_SINK"])
)
topology = builder.build()
