"""Topologies with a topic extractor and custom partitioners, run by the real-broker tests of
``test_dynamic_topics_on_kafka.py`` in worker processes (topics come from the environment)."""

from __future__ import annotations

import os
from typing import Any

from streamer import Processor, Record, RecordContext, StreamsBuilder, Topology

INPUT = "STREAMER_TEST_INPUT"
OUTPUT_A = "STREAMER_TEST_OUTPUT_A"
OUTPUT_B = "STREAMER_TEST_OUTPUT_B"


def key_number(key: str, _value: Any, partitions: int) -> int:
    """Key ``k<i>`` goes to partition ``i % partitions``."""
    return int(key[1:]) % partitions


def by_sequence(_key: str, value: dict[str, Any], partitions: int) -> int:
    """Output record ``n`` goes to partition ``n % partitions``."""
    return int(value["n"]) % partitions


def output_topic(route: str) -> str:
    """Route ``a`` and ``b`` are the declared topics; any other names an undeclared one."""
    if route == "a":
        return os.environ[OUTPUT_A]
    if route == "b":
        return os.environ[OUTPUT_B]
    return f"{os.environ[OUTPUT_A]}-{route}-undeclared"


class TagWithTask(Processor):
    """Adds the partition of the task that processes the record, as ``task``."""

    def process(self, record: Record) -> None:
        self.context.forward(record.with_value({**record.value, "task": self.context.partition}))


def routed_running_count() -> Topology:
    """Input ``{"n": seq, "to": route}`` keyed ``k<i>``: repartitioned by ``key_number``, a
    running count per key, then written to the topic of ``to`` at partition ``n % count``.

    Each output is ``{"n", "to", "task", "count"}``; ``count`` counts every record of the
    key so far, those that went to the dead-letter topic included.
    """
    builder = StreamsBuilder()

    def add(_key: Any, value: dict[str, Any], aggregate: dict[str, Any]) -> dict[str, Any]:
        return {**value, "count": aggregate["count"] + 1}

    def extractor(_key: str, value: dict[str, Any], _context: RecordContext) -> str:
        return output_topic(str(value["to"]))

    (
        builder.stream(os.environ[INPUT])
        .repartition(name="by-key-number", partitioner=key_number)
        .process(TagWithTask, name="tag-task", keeps_key=True)
        .group_by_key()
        .aggregate(lambda: {"count": 0}, add, name="routed-count")
        .to_stream()
        .to(
            extractor,
            topics=[os.environ[OUTPUT_A], os.environ[OUTPUT_B]],
            partitioner=by_sequence,
            name="route",
        )
    )
    return builder.build()
