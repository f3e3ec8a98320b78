"""streamer: stream processing for Apache Kafka in Python.

The public API is what this module exports (``streamer.__all__``): the DSL, the processor
API, windows, serdes, errors, the application configuration and :func:`run`. Other modules
are internal and may change between releases; import from ``streamer`` where a name is here.

``import streamer`` stays light: it loads no Kafka client, RocksDB, Prometheus or
OpenTelemetry module. Names whose modules would (or may one day) pull those in are resolved
on first use, by the module ``__getattr__`` below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamer._version import __version__ as __version__
from streamer.dsl import (
    GlobalTable,
    GroupedStream,
    GroupedTable,
    Stream,
    StreamsBuilder,
    Table,
    WindowedStream,
)
from streamer.dsl.cogrouped import CogroupedStream, CogroupedWindowedStream
from streamer.dsl.stream_joins import StreamJoined
from streamer.errors import (
    ConfigError,
    KafkaHarnessError,
    MissingToolError,
    ProcessingError,
    SerializationError,
    StateError,
    StreamerError,
    TopologyError,
)
from streamer.processors.api import (
    Processor,
    ProcessorContext,
    PunctuationType,
    Record,
    RecordContext,
    RecordOrigin,
)
from streamer.runtime.config import AppConfig, ErrorPolicy, Guarantee
from streamer.serde import (
    AvroSerde,
    BytesSerde,
    IntegerSerde,
    JsonSerde,
    LongSerde,
    RawAvroSerde,
    RegistryAvroSerde,
    SchemaRegistryClient,
    SchemaRegistryError,
    Serde,
    StdlibJsonSerde,
    StringSerde,
)
from streamer.topology.graph import Topology
from streamer.topology.history import HistoryRetention
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

if TYPE_CHECKING:
    from streamer.runtime.app import run


# Resolved on first access: running a topology needs the worker and its Kafka clients.
_LAZY = {"run": "streamer.runtime.app"}


def __getattr__(name: str) -> Any:
    """Import a lazily exported name on first use (PEP 562) and keep it in this module."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AppConfig",
    "AvroSerde",
    "BytesSerde",
    "CogroupedStream",
    "CogroupedWindowedStream",
    "ConfigError",
    "ErrorPolicy",
    "GlobalTable",
    "GroupedStream",
    "GroupedTable",
    "Guarantee",
    "HistoryRetention",
    "HoppingWindows",
    "IntegerSerde",
    "JoinWindows",
    "JsonSerde",
    "KafkaHarnessError",
    "LongSerde",
    "MissingToolError",
    "ProcessingError",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "RawAvroSerde",
    "Record",
    "RecordContext",
    "RecordOrigin",
    "RegistryAvroSerde",
    "SchemaRegistryClient",
    "SchemaRegistryError",
    "Serde",
    "SerializationError",
    "SessionWindows",
    "SlidingWindows",
    "StateError",
    "StdlibJsonSerde",
    "StoreKind",
    "Stream",
    "StreamJoined",
    "StreamerError",
    "StreamsBuilder",
    "StringSerde",
    "Table",
    "Topology",
    "TopologyError",
    "TumblingWindows",
    "Windowed",
    "WindowedSerde",
    "WindowedStream",
    "run",
]
