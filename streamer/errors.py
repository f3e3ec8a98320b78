"""Every exception streamer raises on purpose derives from :class:`StreamerError`.

Hierarchy (classes defined outside this module name their module)::

    StreamerError
    ├── ConfigError              a bad option or configuration value, found at start
    ├── TopologyError            an invalid topology, found at build time
    ├── SerializationError       bytes that cannot be decoded, or a value that cannot be encoded
    │   └── SchemaRegistryError  (streamer.serde.registry) a schema registry request failed
    ├── ProcessingError          a user function raised while processing a record
    ├── StateError               a state store cannot be opened, read or written
    │   └── BufferFullError      (streamer.processors.suppress) a suppress buffer is full
    ├── KafkaHarnessError        the local Kafka harness cannot resolve, start or stop a broker
    │   └── MissingToolError     java or mvn is not installed
    ├── KafkaClientError         (streamer.kafka.clients) a helper client's produce/consume failed
    ├── KafkaAdminError          (streamer.kafka.admin) an admin request failed or timed out
    ├── KafkaRuntimeError        (streamer.kafka.runtime_clients) a worker's client call failed
    ├── OperationRefused         (streamer.ops.apps) an operation would be unsafe now
    ├── QueryError               (streamer.query) a query the server refused or could not answer
    ├── BadKey                   (streamer.query.reads) a query's key cannot be encoded
    ├── UnknownStore             (streamer.query.routing) a query names no store of the app
    ├── UnroutableKey            (streamer.query.routing) a custom partitioner cannot place a key
    └── StoreUnavailable         (streamer.query.stores) a task's store is not open here

Every exception class defined anywhere under ``streamer`` is drawn here, and derives from
:class:`StreamerError`; ``tests/unit/test_errors_tree.py`` keeps it that way.

Messages say what went wrong and what to do about it; they never need a stack trace to be
understood.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base class of all errors raised by streamer."""


class ConfigError(StreamerError):
    """A configuration value is missing, malformed or inconsistent."""


class TopologyError(StreamerError):
    """The topology is invalid: a duplicate name, a bad window, non-co-partitioned inputs."""


class SerializationError(StreamerError):
    """A record's key or value cannot be (de)serialised."""


class ProcessingError(StreamerError):
    """A user function raised while processing a record.

    ``step`` names the topology step whose function raised.
    """

    def __init__(self, message: str, *, step: str) -> None:
        super().__init__(message)
        self.step = step


class StateError(StreamerError):
    """A state store cannot be opened, read or written."""


class KafkaHarnessError(StreamerError):
    """The local Kafka harness cannot resolve, start or stop a broker."""


class MissingToolError(KafkaHarnessError):
    """A command-line tool the harness needs (java, mvn) is not on PATH."""
