"""streamer: stream processing for Apache Kafka in Python."""

from __future__ import annotations

from streamer.dsl import GlobalTable, GroupedStream, Stream, StreamsBuilder, Table, WindowedStream
from streamer.processors.api import (
    Processor,
    ProcessorContext,
    PunctuationType,
    Record,
    RecordOrigin,
)
from streamer.runtime.config import ErrorPolicy
from streamer.topology.graph import Topology
from streamer.topology.nodes import StoreKind
from streamer.topology.windows import (
    HoppingWindows,
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    TumblingWindows,
    Windowed,
    WindowedSerde,
)

__version__ = "0.1.0"

__all__ = [
    "ErrorPolicy",
    "GlobalTable",
    "GroupedStream",
    "HoppingWindows",
    "JoinWindows",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Record",
    "RecordOrigin",
    "SessionWindows",
    "SlidingWindows",
    "StoreKind",
    "Stream",
    "StreamsBuilder",
    "Table",
    "Topology",
    "TumblingWindows",
    "Windowed",
    "WindowedSerde",
    "WindowedStream",
]
