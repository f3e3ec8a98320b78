"""The streams DSL."""

from streamer.dsl.builder import StreamsBuilder
from streamer.dsl.grouped import GroupedStream, WindowedStream
from streamer.dsl.stream import Stream
from streamer.dsl.table import GlobalTable, Table

__all__ = ["GlobalTable", "GroupedStream", "Stream", "StreamsBuilder", "Table", "WindowedStream"]
