"""Plain types shared by the Kafka edge and the code that talks to it.

Importing this module does not load confluent-kafka, so pure code (the runtime's parts,
metrics, operations) can name partitions and messages without pulling in the client.
"""

from __future__ import annotations

from typing import Any, Protocol

TP = tuple[str, int]
"""A topic partition: ``(topic, partition)``."""


class Message(Protocol):
    """What the runtime reads from a consumed record without an error.

    ``confluent_kafka.Message`` fits; its topic, partition and offset are only None on error
    events, which the consumers of :mod:`streamer.kafka.runtime_clients` never hand over.
    """

    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(self) -> Any: ...
    def error(self) -> Any: ...


__all__ = ["TP", "Message"]
