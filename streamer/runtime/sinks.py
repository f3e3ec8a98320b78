"""Sinks that choose where each record goes: a topic extractor, a custom partitioner, or both.

A plain sink (one topic, the producer's partitioner) is
:class:`~streamer.runtime.task_context.SinkProcessor`; :func:`make_sink` picks between them.

Per record, in order: the extractor picks the topic, which must be one of the sink's declared
topics; the key and value are encoded; the partitioner picks the partition among the topic's
partitions. A failure at any step raises :class:`ProcessingError` naming the sink, so the
record follows the task's error policy (fail, skip, or dead-letter) and nothing is sent.
Error messages quote neither the record nor a topic name the extractor made up from it,
unless ``log_payloads`` is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamer.errors import ProcessingError, SerializationError, StreamerError
from streamer.processors.api import Processor, Record, RecordContext
from streamer.runtime.task_context import SinkProcessor, describe_exception
from streamer.topology.nodes import SinkNode

if TYPE_CHECKING:
    from streamer.runtime.task import RecordSink

PartitionCount = Callable[[str], int]
"""``partition_count(resolved_topic) -> the topic's partition count``."""


def make_sink(
    node: SinkNode,
    app_id: str,
    sink: RecordSink,
    partition_count: PartitionCount | None,
    *,
    log_payloads: bool = False,
) -> Processor:
    """The processor of sink ``node``: a plain one unless it extracts topics or partitions."""
    if node.topic is not None and node.partitioner is None:
        return SinkProcessor(node, node.topic.resolve(app_id), sink)
    return RoutingSinkProcessor(node, app_id, sink, partition_count, log_payloads=log_payloads)


class RoutingSinkProcessor(Processor):
    """A sink with a topic extractor, a partitioner, or both; see the module docstring.

    Invariant: every record sent goes to one of the sink's topics and, with a partitioner,
    to a partition in ``[0, partition_count(topic))``.
    """

    def __init__(
        self,
        node: SinkNode,
        app_id: str,
        sink: RecordSink,
        partition_count: PartitionCount | None,
        *,
        log_payloads: bool = False,
    ) -> None:
        self.name = node.name
        self.sink = sink
        self.encode_key = node.key_serde.encode
        self.encode_value = node.value_serde.encode
        self.extractor = node.topic_extractor
        self.partitioner = node.partitioner
        self.log_payloads = log_payloads
        # The extractor names topics as the user declared them; sends use resolved names.
        self.topics = {ref.name: ref.resolve(app_id) for ref in node.topic_refs()}
        self.fixed_topic = None if node.topic is None else node.topic.resolve(app_id)
        self.counts: dict[str, int] = {}
        if self.partitioner is not None:
            if partition_count is None:
                msg = f"sink {self.name!r} has a partitioner but no partition counts are known"
                raise StreamerError(msg)
            self.counts = {t: partition_count(t) for t in self.topics.values()}

    def process(self, record: Record) -> None:
        topic = self.fixed_topic if self.fixed_topic is not None else self._extract(record)
        try:
            key = None if record.key is None else self.encode_key(record.key)
            value = None if record.value is None else self.encode_value(record.value)
        except Exception as exc:
            # Serdes outside this package may raise anything on a value they cannot encode.
            reason = str(exc) if isinstance(exc, SerializationError) else describe_exception(exc)
            msg = f"cannot encode a record for topic {topic!r}: {reason}"
            raise ProcessingError(msg, step=self.name) from exc
        partition = None if self.partitioner is None else self._partition(topic, record)
        self.sink.send(
            topic,
            key,
            value,
            timestamp=record.timestamp,
            headers=record.headers,
            partition=partition,
        )

    def _extract(self, record: Record) -> str:
        """The resolved topic the extractor picks for ``record``, one of the declared ones."""
        assert self.extractor is not None
        context = RecordContext(record.timestamp, record.headers, self.context.origin)
        try:
            picked = self.extractor(record.key, record.value, context)
        except Exception as exc:
            msg = f"the topic extractor of sink {self.name!r} raised {describe_exception(exc)}"
            raise ProcessingError(msg, step=self.name) from exc
        topic = self.topics.get(picked) if isinstance(picked, str) else None
        if topic is None:
            declared = ", ".join(self.topics)
            shown = repr(picked) if self.log_payloads else f"a {type(picked).__name__}"
            msg = (
                f"the topic extractor of sink {self.name!r} returned {shown} that is not one "
                f"of its declared topics ({declared}); declare every topic it may pick in "
                "to(..., topics=[...])"
            )
            raise ProcessingError(msg, step=self.name)
        return topic

    def _partition(self, topic: str, record: Record) -> int:
        """The partitioner's partition for ``record`` in ``topic``, checked to be in range."""
        assert self.partitioner is not None
        count = self.counts[topic]
        try:
            partition: Any = self.partitioner(record.key, record.value, count)
        except Exception as exc:
            msg = f"the partitioner of sink {self.name!r} raised {describe_exception(exc)}"
            raise ProcessingError(msg, step=self.name) from exc
        if isinstance(partition, bool) or not isinstance(partition, int):
            msg = (
                f"the partitioner of sink {self.name!r} returned a "
                f"{type(partition).__name__}, not a partition number"
            )
            raise ProcessingError(msg, step=self.name)
        if not 0 <= partition < count:
            msg = (
                f"the partitioner of sink {self.name!r} returned partition {partition} for "
                f"topic {topic!r}, which has partitions 0 to {count - 1}"
            )
            raise ProcessingError(msg, step=self.name)
        return partition


__all__ = ["PartitionCount", "RoutingSinkProcessor", "make_sink"]
