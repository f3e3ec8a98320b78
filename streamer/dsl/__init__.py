"""The streams DSL."""

from streamer.dsl.builder import StreamsBuilder
from streamer.dsl.cogrouped import CogroupedStream, CogroupedWindowedStream
from streamer.dsl.grouped import GroupedStream, WindowedStream
from streamer.dsl.grouped_table import GroupedTable
from streamer.dsl.stream import Stream
from streamer.dsl.table import GlobalTable, Table

__all__ = [
    "CogroupedStream",
    "CogroupedWindowedStream",
    "GlobalTable",
    "GroupedStream",
    "GroupedTable",
    "Stream",
    "StreamsBuilder",
    "Table",
    "WindowedStream",
]
