"""Checks source topics and creates internal topics before a worker starts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from streamer.errors import ConfigError
from streamer.kafka.admin import KafkaAdminError, TopicSpec
from streamer.runtime.clients import AdminClient
from streamer.runtime.config import AppConfig
from streamer.topology.graph import Topology
from streamer.topology.nodes import SinkNode

log = logging.getLogger(__name__)

# Repartition records carry the input's event time, so time retention could delete them
# before they are read (see streamer.runtime.purge); the workers delete them once committed.
REPARTITION_TOPIC_CONFIG = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "segment.bytes": str(64 << 20),
}


@dataclass(frozen=True)
class TopicLayout:
    """Partition counts of every topic the app reads or owns, resolved for one app, and of
    the output topics written with a custom partitioner (``outputs``)."""

    partitions: dict[str, int]
    changelogs: dict[str, int]
    repartition: dict[str, int]
    outputs: dict[str, int] = field(default_factory=dict)

    def source_topics(self, topology: Topology, prefix: str) -> list[str]:
        return sorted({ref.resolve(prefix) for ref in topology.source_topics()})

    def partition_count(self, topic: str) -> int:
        """The partition count of a topic the app reads, owns, or custom-partitions."""
        count = self.partitions.get(topic, self.outputs.get(topic))
        if count is None:
            msg = f"the partition count of topic {topic} was not read when the app started"
            raise ConfigError(msg)
        return count


def prepare_topics(topology: Topology, config: AppConfig, admin: AdminClient) -> TopicLayout:
    """Check that user topics exist, then create repartition, changelog and DLQ topics.

    Repartition topics get the partition count of the user topics they are read with, else
    the largest of the user stream sources (:meth:`Topology.internal_partition_counts`); each
    changelog gets the partition count of its sub-topology's input, so changelog partition
    ``p`` belongs to task ``p``. Raises :class:`ConfigError` naming missing input topics.
    """
    prefix = config.prefix
    user_sources = _check_user_topics_exist(topology, config, admin)
    counts = {t: len(admin.partitions(t)) for t in user_sources}
    repartition = topology.internal_partition_counts(counts, prefix)
    counts.update(repartition)
    topology.validate_partitions(counts, prefix)
    changelogs = _changelog_counts(topology, prefix, counts)
    outputs = _partitioned_output_counts(topology, admin)
    admin.create_topics(_internal_topic_specs(config, repartition, changelogs))
    _check_internal_topics(admin, repartition, changelogs)
    log.info(
        "topics ready: %d input, %d repartition, %d changelog",
        len(user_sources),
        len(repartition),
        len(changelogs),
    )
    return TopicLayout(
        partitions=counts, changelogs=changelogs, repartition=repartition, outputs=outputs
    )


def _check_user_topics_exist(
    topology: Topology, config: AppConfig, admin: AdminClient
) -> list[str]:
    """The user topics the app reads (streams and global tables), sorted.

    Raises :class:`ConfigError` if one of them, or a user topic it writes, does not exist:
    streamer never creates user topics. A topic the principal may not even DESCRIBE is
    hidden from the topic list like a missing one; asking for it by name tells them apart,
    and raises the authorization error instead.
    """
    existing = admin.list_topics()
    user_sources = sorted(
        {ref.name for ref in topology.source_topics() if not ref.internal}
        | {table.topic for table in topology.global_tables}
    )
    user_sinks = sorted({ref.name for ref in topology.sink_topics() if not ref.internal})
    for kind, topics in (("input", user_sources), ("output", user_sinks)):
        missing = [t for t in topics if t not in existing]
        for topic in missing:
            try:
                admin.partitions(topic)
            except KafkaAdminError as exc:
                if exc.denied:
                    raise
        if missing:
            msg = (
                f"{kind} topics {', '.join(missing)} do not exist on "
                f"{config.bootstrap_servers}; create them first (streamer never creates "
                "user topics)"
            )
            raise ConfigError(msg)
    return user_sources


def _partitioned_output_counts(topology: Topology, admin: AdminClient) -> dict[str, int]:
    """The partition count of each user topic a sink with a custom partitioner writes (a
    topic extractor's declared topics included): the partitioner picks among them."""
    topics = {
        ref.name
        for node in topology.nodes
        if isinstance(node, SinkNode) and node.partitioner is not None
        for ref in node.topic_refs()
        if not ref.internal
    }
    return {topic: len(admin.partitions(topic)) for topic in sorted(topics)}


def _changelog_counts(topology: Topology, prefix: str, counts: dict[str, int]) -> dict[str, int]:
    """Each changelogged store's changelog gets its sub-topology's task count (the largest
    partition count of the sub-topology's sources), so changelog partition ``p`` is task
    ``p``'s."""
    changelogs: dict[str, int] = {}
    for sub in topology.subtopologies:
        sub_count = max(counts[ref.resolve(prefix)] for ref in sub.source_topics)
        for store in sub.stores:
            spec = topology.store(store)
            if spec.changelog:
                changelogs[spec.changelog_topic(prefix)] = sub_count
    return changelogs


def _internal_topic_specs(
    config: AppConfig, repartition: dict[str, int], changelogs: dict[str, int]
) -> list[TopicSpec]:
    """Repartition topics without time retention, compacted changelogs, a 1-partition DLQ."""
    rf = config.internal_replication_factor
    specs = [
        TopicSpec(name, partitions=n, replication_factor=rf, config=REPARTITION_TOPIC_CONFIG)
        for name, n in repartition.items()
    ]
    specs += [
        TopicSpec(
            name,
            partitions=n,
            replication_factor=rf,
            config={"cleanup.policy": "compact"},
        )
        for name, n in changelogs.items()
    ]
    specs.append(TopicSpec(config.dlq_topic, partitions=1, replication_factor=rf))
    return specs


def _check_internal_topics(
    admin: AdminClient, repartition: dict[str, int], changelogs: dict[str, int]
) -> None:
    """Fail if an internal topic that already existed has another partition count; warn if a
    repartition topic has time retention."""
    for name, n in {**repartition, **changelogs}.items():
        actual = len(admin.partitions(name))
        if actual != n:
            msg = (
                f"internal topic {name} has {actual} partitions but the app needs {n}; "
                "it was created for a different input layout: reset the app"
            )
            raise ConfigError(msg)
    for name in repartition:
        retention = admin.topic_config(name).get("retention.ms")
        if retention != "-1":
            log.warning(
                "repartition topic %s has retention.ms=%s: records with older event times "
                "are deleted before they are read; set retention.ms=-1 on it",
                name,
                retention,
            )
