"""Writing a stream out: ``Stream.to`` with a fixed topic or a topic extractor, and an
optional custom partitioner.

A topic extractor picks each record's topic among the topics declared with it
(``topics=[...]``): the worker checks at start that every declared topic exists, as it does
for every output topic (streamer never creates user topics), and a record whose extractor
picks an undeclared topic fails through the app's error policy. So no record goes to a topic
nobody declared, and no topic is created by surprise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from streamer.errors import TopologyError
from streamer.processors.api import RecordContext
from streamer.serde import Serde
from streamer.topology.nodes import TopicRef

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream


def to(
    stream: Stream[Any, Any],
    target: str | Callable[[Any, Any, RecordContext], str],
    topics: Iterable[str] | None,
    key_serde: Serde[Any] | None,
    value_serde: Serde[Any] | None,
    partitioner: Callable[[Any, Any, int], int] | None,
    name: str | None,
) -> None:
    """Add the sink of ``stream.to(...)``; see :meth:`streamer.dsl.stream.Stream.to`."""
    check_partitioner(partitioner)
    keys = key_serde or stream.key_serde
    values = value_serde or stream.value_serde
    graph = stream._graph
    if isinstance(target, str):
        if topics is not None:
            msg = f"to({target!r}) writes one topic: topics=[...] goes with a topic extractor"
            raise TopologyError(msg)
        graph.sink(stream.node, TopicRef(target), keys, values, name, partitioner=partitioner)
        return
    extractor: object = target  # untyped callers may pass anything
    if not callable(extractor):
        msg = f"to() takes a topic name or a topic extractor function, not {type(target).__name__}"
        raise TopologyError(msg)
    declared = _declared_topics(topics)
    graph.sink(
        stream.node,
        None,
        keys,
        values,
        name,
        partitioner=partitioner,
        topic_extractor=target,
        declared_topics=[TopicRef(t) for t in declared],
    )


def check_partitioner(partitioner: object) -> None:
    """Raise :class:`TopologyError` unless ``partitioner`` is None or a function."""
    if partitioner is not None and not callable(partitioner):
        msg = (
            "partitioner must be a function (key, value, partition_count) -> int, "
            f"not {type(partitioner).__name__}"
        )
        raise TopologyError(msg)


def _declared_topics(topics: Iterable[str] | None) -> list[str]:
    """The topics a topic extractor may pick: at least one, each a non-empty name, once."""
    if topics is None or isinstance(topics, str):
        msg = (
            "to(topic_extractor) needs topics=[...]: every topic the extractor may pick, "
            "checked to exist when the app starts"
        )
        raise TopologyError(msg)
    declared = list(topics)
    if not declared:
        msg = "to(topic_extractor, topics=[...]) needs at least one topic"
        raise TopologyError(msg)
    for topic in declared:
        if not isinstance(topic, str) or not topic:
            msg = f"to(topic_extractor, topics=[...]): {topic!r} is not a topic name"
            raise TopologyError(msg)
    duplicates = sorted({t for t in declared if declared.count(t) > 1})
    if duplicates:
        msg = f"to(topic_extractor, topics=[...]) lists {', '.join(duplicates)} more than once"
        raise TopologyError(msg)
    return declared


__all__ = ["check_partitioner", "to"]
