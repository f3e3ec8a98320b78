"""A task runs one sub-topology for one partition: the compiled pipeline plus its stores.

The Kafka worker and the :class:`~streamer.testing.TopologyTestDriver` both run tasks; they
differ only in what sits behind :class:`RecordSink` (a producer, or in-memory topics), where
the bytes stores live, and where the clock comes from.

Per record, in order:

1. decode the key and value with the source's serdes;
2. pick the event time (the timestamp extractor, else the record timestamp) and advance
   stream time (the maximum event time seen);
3. run the pipeline depth-first from the source; sinks encode and send;
4. fire stream-time punctuators that are due.

A record that fails in step 1 or 3 follows the task's :class:`ErrorPolicy`. Its error message,
warning and dead-letter ``streamer.error`` header name the topic, partition, offset, step and
error, never the key's or value's bytes or decoded contents (a user function's exception
message is its own), unless the task was built with ``log_payloads=True``: then they add a
bounded preview of the raw key and value. The dead-letter record itself always carries the
raw key and value.

Commit is driven from outside, in this order: :meth:`Task.flush_changelog` (each dirty store
key is sent once to its changelog), then the caller commits its output (a Kafka transaction,
or nothing in the test driver), then :meth:`Task.commit_stores` applies the writes locally.
On an aborted transaction, :meth:`Task.discard_uncommitted` drops them instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from streamer.errors import ProcessingError, SerializationError, StateError
from streamer.processors.api import (
    Headers,
    Processor,
    PunctuationType,
    Punctuator,
    RecordOrigin,
    TaskCounters,
)
from streamer.processors.stateless import PassThroughProcessor
from streamer.runtime.config import ErrorPolicy
from streamer.runtime.fusion import Entry, EntryProcessor, build_entries, is_fused
from streamer.runtime.punctuation import Punctuations
from streamer.runtime.sinks import PartitionCount, make_sink
from streamer.runtime.task_context import (
    NodeContext,
    decode_failure,
    describe_exception,
    payload_preview,
    typed_store,
    without_user_message,
)
from streamer.state import BytesStore, CachingStore
from streamer.topology.graph import Topology
from streamer.topology.nodes import ProcessorNode, SinkNode, SourceNode, SubTopology

log = logging.getLogger(__name__)


class RecordSink(Protocol):
    """Where a task's output goes: sink topics, repartition topics, changelogs, the DLQ."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None: ...


class Clock(Protocol):
    def now_ms(self) -> int: ...


StoreOpener = Callable[[str], BytesStore]
"""Opens the bytes store of the given store name for this task."""


@dataclass(frozen=True, slots=True)
class TaskId:
    subtopology: int
    partition: int

    def __str__(self) -> str:
        return f"{self.subtopology}_{self.partition}"


class _SourceEntry(NamedTuple):
    """A source node with its decoders and its children's entries, bound once for the hot
    path (see :mod:`streamer.runtime.fusion`)."""

    node: SourceNode
    decode_key: Callable[[bytes], Any]
    decode_value: Callable[[bytes], Any]
    extractor: Callable[[Any, Any, int], int] | None
    entry: Entry


class Task:
    """One sub-topology on one partition. Not thread-safe: one thread drives it."""

    def __init__(
        self,
        topology: Topology,
        subtopology: SubTopology,
        partition: int,
        *,
        app_id: str,
        open_store: StoreOpener,
        sink: RecordSink,
        clock: Clock,
        global_stores: Mapping[str, Any] | None = None,
        error_policy: ErrorPolicy = ErrorPolicy.FAIL,
        log_payloads: bool = False,
        partition_count: PartitionCount | None = None,
    ) -> None:
        """``partition_count(topic)``: a topic's partition count, for custom partitioners."""
        self.id = TaskId(subtopology.id, partition)
        self.app_id = app_id
        self.partition = partition
        self.sink = sink
        self.clock = clock
        self.error_policy = error_policy
        self.log_payloads = log_payloads
        self._partition_count = partition_count
        self.dlq_topic = f"{app_id}-dlq"
        self.stream_time = -1
        self.counters = TaskCounters()
        self._origin_topic: str | None = None
        self._origin_offset = -1
        self._punctuations = Punctuations()
        self._global_stores = dict(global_stores or {})
        self.caches: dict[str, CachingStore] = {}
        self.stores: dict[str, Any] = {}
        self.changelog_topics: dict[str, str] = {}
        try:
            for name in subtopology.stores:
                spec = topology.store(name)
                cache = CachingStore(open_store(name))
                self.caches[name] = cache
                self.stores[name] = typed_store(spec, cache, lambda: self.stream_time)
                if spec.changelog:
                    self.changelog_topics[name] = spec.changelog_topic(app_id)
            self._sources: dict[str, list[_SourceEntry]] = {}
            self._contexts: list[NodeContext] = []
            self._compile(topology, subtopology)
        except BaseException:
            self.close()
            raise

    # --- compile ------------------------------------------------------------------------------

    def _compile(self, topology: Topology, subtopology: SubTopology) -> None:
        processors: dict[str, Processor] = {}
        source_nodes: list[SourceNode] = []
        for name in subtopology.nodes:
            node = topology.node(name)
            if isinstance(node, SourceNode):
                processor: Processor = PassThroughProcessor()
                source_nodes.append(node)
            elif isinstance(node, SinkNode):
                processor = make_sink(
                    node,
                    self.app_id,
                    self.sink,
                    self._partition_count,
                    log_payloads=self.log_payloads,
                )
            else:
                processor = node.factory()
            processors[name] = processor
        children_of = {
            name: [c for c in topology.children(name) if c in processors]
            for name in subtopology.nodes
        }
        entries = build_entries(subtopology.nodes, processors, children_of)
        # Children before parents, so a parent's init may already forward safely. A parent
        # forwards to a fused child through its entry.
        for name in reversed(subtopology.nodes):
            node = topology.node(name)
            children = {
                c: EntryProcessor(entries[c]) if is_fused(processors[c]) else processors[c]
                for c in children_of[name]
            }
            allowed = frozenset(node.stores) if isinstance(node, ProcessorNode) else frozenset()
            context = NodeContext(self, name, children, allowed)
            self._contexts.append(context)
            processors[name].init(context)
        self._processors = processors
        # A source only passes records on: its entry calls its children's entries.
        for node in source_nodes:
            entry = _SourceEntry(
                node,
                node.key_serde.decode,
                node.value_serde.decode,
                node.timestamp_extractor,
                entries[node.name],
            )
            for ref in node.topics:
                self._sources.setdefault(ref.resolve(self.app_id), []).append(entry)

    # --- processing --------------------------------------------------------------------------

    @property
    def origin(self) -> RecordOrigin | None:
        """Where the record being processed came from; None between records."""
        if self._origin_topic is None:
            return None
        return RecordOrigin(self._origin_topic, self.partition, self._origin_offset)

    def process(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        offset: int = -1,
        headers: Headers = (),
    ) -> None:
        """Run one raw record through the pipeline; see the module docstring for the steps."""
        self._origin_topic = topic
        self._origin_offset = offset
        try:
            for source, decode_key, decode_value, extractor, entry in self._sources[topic]:
                try:
                    decoded_key = None if key is None else decode_key(key)
                    decoded_value = None if value is None else decode_value(value)
                except SerializationError as exc:
                    where = f"{topic}[{self.partition}]@{offset}"
                    raise decode_failure(exc, decode_key, key, where) from exc
                event_time = timestamp
                if extractor is not None:
                    try:
                        event_time = int(extractor(decoded_key, decoded_value, timestamp))
                    except Exception as exc:
                        reason = describe_exception(exc)
                        msg = f"timestamp extractor of {source.name!r} raised {reason}"
                        raise ProcessingError(msg, step=source.name) from exc
                if event_time < 0:
                    msg = f"record has a negative timestamp ({event_time})"
                    raise ProcessingError(msg, step=source.name)
                if event_time > self.stream_time:
                    self.stream_time = event_time
                entry(decoded_key, decoded_value, event_time, headers)
        except (SerializationError, ProcessingError) as exc:
            self._handle_error(exc, topic, key, value, offset, headers)
        finally:
            self._origin_topic = None
        if self._punctuations.on_stream_time:
            self._punctuations.fire(PunctuationType.STREAM_TIME, self.stream_time)

    def _handle_error(
        self,
        exc: SerializationError | ProcessingError,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        offset: int,
        headers: Headers,
    ) -> None:
        """Apply the error policy to a failed record. Messages, warnings and the DLQ's
        ``streamer.error`` header quote the record only with ``log_payloads``."""
        where = f"{topic}[{self.partition}]@{offset}"
        step = exc.step if isinstance(exc, ProcessingError) else "deserialize"
        reason = str(exc)
        if self.log_payloads:
            reason = f"{reason}; {payload_preview(key, value)}"
        if self.error_policy is ErrorPolicy.FAIL:
            if isinstance(exc, ProcessingError) and where not in reason:
                reason = f"{reason} (record at {where})"
            exc.args = (reason,)
            raise exc
        # Per-record warnings may repeat for many records: a user function's own message
        # (which may quote the record, as int('4111...') does) stays out of them by default.
        logged = reason if self.log_payloads else without_user_message(exc, reason)
        if self.error_policy is ErrorPolicy.SKIP:
            self.counters.add("records-skipped")
            log.warning(
                "task %s skipped the record at %s (step %s): %s", self.id, where, step, logged
            )
            return
        self.counters.add("records-dead-lettered")
        sent = "task %s sent the record at %s (step %s) to %s: %s"
        log.warning(sent, self.id, where, step, self.dlq_topic, logged)
        dlq_headers = [
            *headers,
            ("streamer.error", reason.encode()),
            ("streamer.error.type", type(exc).__name__.encode()),
            ("streamer.error.step", step.encode()),
            ("streamer.source.topic", topic.encode()),
            ("streamer.source.partition", str(self.partition).encode()),
            ("streamer.source.offset", str(offset).encode()),
        ]
        self.sink.send(
            self.dlq_topic, key, value, timestamp=self.clock.now_ms(), headers=dlq_headers
        )

    # --- punctuation --------------------------------------------------------------------------

    def schedule(self, interval: int, kind: PunctuationType, callback: Punctuator) -> None:
        """Call ``callback(now)`` each time the clock reaches the next due time (see
        :mod:`streamer.runtime.punctuation` for the grid of due times)."""
        self._punctuations.schedule(
            interval, kind, callback, stream_time=self.stream_time, wall_time=self.clock.now_ms()
        )

    def punctuate_wall_clock(self) -> None:
        """Fire the wall-clock punctuators that are due. The runtime calls this every loop."""
        self._punctuations.fire(PunctuationType.WALL_CLOCK, self.clock.now_ms())

    # --- commit -------------------------------------------------------------------------------

    def flush_changelog(self) -> int:
        """Send each dirty store key once to its changelog; returns the number sent."""
        sent = 0
        now = self.clock.now_ms()
        for name, cache in self.caches.items():
            topic = self.changelog_topics.get(name)
            if topic is None:
                continue
            for key, value in cache.dirty_entries():
                self.sink.send(topic, key, value, timestamp=now, partition=self.partition)
                sent += 1
        return sent

    def commit_stores(self, positions: Mapping[str, int] | None = None) -> None:
        """Apply this interval's writes to the local stores (after output is committed).

        ``positions`` (per store name) are recorded in each store's same write batch: the
        changelog offset up to which the store's contents then reflect its changelog.
        """
        for name, cache in self.caches.items():
            cache.commit(position=None if positions is None else positions.get(name))

    def discard_uncommitted(self) -> int:
        """Drop this interval's store writes (the output was aborted)."""
        return sum(cache.discard() for cache in self.caches.values())

    def find_store(self, name: str) -> Any | None:
        """The task's own store ``name``, else the global table ``name``, else None."""
        store = self.stores.get(name)
        return self._global_stores.get(name) if store is None else store

    def dirty_count(self) -> int:
        """Keys written since the last commit, over all of this task's stores."""
        return sum(cache.dirty_count for cache in self.caches.values())

    def restore_targets(self) -> dict[str, BytesStore]:
        """Per store name, the bytes store a changelog restore writes into. Restored rows
        bypass the write cache: they are committed already, and the task processes nothing
        until its restore is done, so the cache is empty meanwhile."""
        for cache in self.caches.values():
            cache.forget_reads()
        return {name: cache.inner for name, cache in self.caches.items()}

    def flush_stores(self) -> None:
        """Make what the stores hold durable on disk (before a checkpoint claims it)."""
        for cache in self.caches.values():
            cache.flush()

    def store_sizes(self) -> dict[str, int]:
        """Estimated bytes per store; a store that cannot say (closing) is left out."""
        sizes: dict[str, int] = {}
        for name, cache in self.caches.items():
            try:
                sizes[name] = cache.approximate_size()
            except StateError:
                continue
        return sizes

    def close(self) -> None:
        """Close processors and stores; uncommitted writes are dropped. Idempotent."""
        for context in getattr(self, "_contexts", []):
            try:
                self._processors[context.step_name].close()
            except Exception:
                log.exception("closing step %s of task %s failed", context.step_name, self.id)
        self._contexts = []
        for cache in self.caches.values():
            try:
                cache.close()
            except StateError:
                log.exception("closing a store of task %s failed", self.id)
