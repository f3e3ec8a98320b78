"""What an app owns on the cluster: its consumer group, input topics and internal topics.

With the app's topology, topic names are exact. Without it, internal topics are found by
name: ``<app_id>-<name>-repartition``, ``<app_id>-<store>-changelog`` and ``<app_id>-dlq``.
Matching by name could take another app's topics when one app id extends another (``fraud``
and ``fraud-v2``): a topic that starts with the id of another consumer group that itself
starts with ``<app_id>`` is left out, and the commands say the names were matched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.errors import StreamerError
from streamer.kafka.admin import KafkaAdmin
from streamer.kafka.groups import GroupAdmin, GroupDescription
from streamer.runtime.client_config import built_with
from streamer.topology.graph import Topology

QUIET_CLIENT_CONFIG: dict[str, Any] = {"log_level": 2, "log.connection.close": False}
"""librdkafka logs only critical errors: the commands report failures themselves."""


class OperationRefused(StreamerError):
    """An operation would be unsafe now (for example, the group still has members)."""


@dataclass(frozen=True)
class AppTopics:
    """The topics of one app. ``exact`` is False when internal topics were matched by name."""

    app_id: str
    sources: tuple[str, ...]
    repartition: tuple[str, ...]
    changelogs: tuple[str, ...]
    dlq: tuple[str, ...]
    exact: bool

    @property
    def internal(self) -> tuple[str, ...]:
        return self.repartition + self.changelogs + self.dlq


def topics_from_topology(topology: Topology, app_id: str) -> AppTopics:
    """The app's topics as its topology names them (stream inputs only: global tables are
    read from the beginning at every start and have no group offsets)."""
    sources = sorted({ref.name for ref in topology.source_topics() if not ref.internal})
    repartition = sorted(
        {
            ref.resolve(app_id)
            for ref in topology.source_topics() | topology.sink_topics()
            if ref.internal
        }
    )
    changelogs = sorted(s.changelog_topic(app_id) for s in topology.stores if s.changelog)
    return AppTopics(
        app_id,
        tuple(sources),
        tuple(repartition),
        tuple(changelogs),
        (f"{app_id}-dlq",),
        exact=True,
    )


def discover_topics(
    app_id: str,
    existing: Collection[str],
    committed_topics: Iterable[str],
    group_ids: Iterable[str],
) -> AppTopics:
    """The app's topics found by name among ``existing``; inputs are the topics the group
    committed offsets for, less its internal topics."""
    others = [g for g in group_ids if g != app_id and g.startswith(app_id)]

    def owned(topic: str) -> bool:
        return topic.startswith(f"{app_id}-") and not any(topic.startswith(f"{g}-") for g in others)

    mine = sorted(t for t in existing if owned(t))
    repartition = tuple(t for t in mine if t.endswith("-repartition"))
    changelogs = tuple(t for t in mine if t.endswith("-changelog"))
    dlq = tuple(t for t in mine if t == f"{app_id}-dlq")
    internal = set(repartition) | set(changelogs) | set(dlq)
    sources = tuple(sorted({t for t in committed_topics if t not in internal and not owned(t)}))
    return AppTopics(app_id, sources, repartition, changelogs, dlq, exact=False)


class Cluster:
    """The admin clients the commands use, after checking that the cluster answers.

    ``config`` is the user's admin settings (the ``[kafka]`` table, then ``[kafka.admin]``:
    security settings and the like), given to both clients over the quiet logging
    defaults. A setting librdkafka refuses raises one :class:`ConfigError` line.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout: float = 15.0,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        conf = {**QUIET_CLIENT_CONFIG, **(config or {})}
        with built_with("admin", conf):
            self.admin = KafkaAdmin(bootstrap_servers, config=conf)
            self.groups = GroupAdmin(bootstrap_servers, config=conf, timeout=timeout)
        self.admin.wait_until_ready(1, timeout=timeout)

    def app_topics(
        self, app_id: str, topology: Topology | None, committed: Iterable[tuple[str, int]] = ()
    ) -> AppTopics:
        if topology is not None:
            return topics_from_topology(topology, app_id)
        return discover_topics(
            app_id,
            self.admin.list_topics(),
            {topic for topic, _ in committed},
            self.groups.group_ids(),
        )

    def partitions(self, topics: Iterable[str]) -> list[tuple[str, int]]:
        return [(t, p) for t in sorted(set(topics)) for p in sorted(self.admin.partitions(t))]


def require_no_members(group: GroupDescription, action: str) -> None:
    """Refuse ``action`` while ``group`` has members: they would commit over the change."""
    if not group.members:
        return
    listing = ", ".join(sorted(m.label() for m in group.members))
    msg = (
        f"cannot {action} while group {group.group_id!r} has {len(group.members)} active "
        f"member(s): {listing}. Stop every worker of the app first (on every host). A "
        "static member that stopped stays a member until its session times out (the "
        "broker's group.consumer.session.timeout.ms, 45 s by default)."
    )
    raise OperationRefused(msg)


def state_directory(state_dir: Path, app_id: str) -> Path:
    return state_dir / app_id
