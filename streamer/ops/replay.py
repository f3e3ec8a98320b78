"""Replay: reprocess an app's input from a point in time, with state rebuilt to match.

A replay, done while no worker of the app runs:

1. sets the group's committed offset of every input partition to the first record at or
   after the time (``earliest``: the log start; no such record: the end);
2. sets the offsets of its repartition topics to their ends: what is in them came from
   input read before, and the reprocessed input writes it again;
3. deletes its changelog topics and creates them again, empty, with the same partitions,
   replicas and topic settings, so that no task restores the state the old input built;
4. with a state directory, deletes ``<state_dir>/<app_id>`` there. Local state lives on every
   host that ran the app: each of them must delete its own before its workers start. The
   directory is deleted only if it lies strictly under the state directory and holds the
   marker its workers wrote (see :mod:`streamer.state.markers`); otherwise the replay is
   refused before anything is changed.

The state the app then builds comes from the input since that time only. Output topics
are not touched: downstream consumers see the results of the reprocessed input again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError
from streamer.kafka.admin import KafkaAdminError, TopicSpec
from streamer.kafka.groups import EARLIEST, LATEST, GroupDescription, TopicSettings
from streamer.ops.apps import (
    Cluster,
    OperationRefused,
    require_no_members,
    state_directory,
)
from streamer.ops.local_state import check_local_state, remove_local_state
from streamer.topology.graph import Topology


def parse_start(text: str) -> str | int:
    """``earliest``, or an ISO-8601 time with a UTC offset (``2024-06-01T12:00:00Z``), as ms
    since the epoch."""
    if text.strip().lower() == EARLIEST:
        return EARLIEST
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        msg = (
            f"--from {text!r} is neither 'earliest' nor an ISO-8601 time such as "
            "2024-06-01T12:00:00Z"
        )
        raise ConfigError(msg) from exc
    if moment.tzinfo is None:
        msg = (
            f"--from {text!r} has no UTC offset; add one, such as Z or +02:00 "
            "(2024-06-01T12:00:00Z)"
        )
        raise ConfigError(msg)
    return int(moment.timestamp() * 1000)


def describe_start(start: str | int) -> str:
    if isinstance(start, int):
        return datetime.fromtimestamp(start / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return start


@dataclass(frozen=True)
class OffsetChange:
    topic: str
    partition: int
    current: int | None
    target: int
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "current": self.current,
            "new": self.target,
            "why": self.why,
        }


@dataclass(frozen=True)
class ReplayPlan:
    app_id: str
    start: str | int
    group: GroupDescription
    offsets: tuple[OffsetChange, ...]
    changelogs: tuple[TopicSettings, ...]
    state_path: Path | None
    exact: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "from": describe_start(self.start),
            "group_state": self.group.state,
            "topics_matched_by_name": not self.exact,
            "offsets": [o.to_json() for o in self.offsets],
            "changelogs_recreated": [
                {
                    "topic": c.name,
                    "partitions": c.partitions,
                    "replication_factor": c.replication_factor,
                    "config": c.config,
                }
                for c in self.changelogs
            ],
            "state_deleted": None if self.state_path is None else str(self.state_path),
        }

    def format(self) -> str:
        lines = [
            f"replay of app {self.app_id} from {describe_start(self.start)} "
            f"(group {self.group.state.lower()}, no active members)",
            "",
            f"committed offsets of group {self.app_id} to set:",
        ]
        rows = [("TOPIC", "PARTITION", "CURRENT", "NEW", "")]
        rows += [
            (
                o.topic,
                str(o.partition),
                "-" if o.current is None else str(o.current),
                str(o.target),
                o.why,
            )
            for o in self.offsets
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            cells = [
                c.rjust(widths[i]) if i in (1, 2, 3) else c.ljust(widths[i])
                for i, c in enumerate(row)
            ]
            lines.append("  " + "  ".join(cells).rstrip())
        lines.append("")
        if self.changelogs:
            lines.append("changelog topics to delete and create again, empty:")
            for c in self.changelogs:
                settings = ", ".join(f"{k}={v}" for k, v in sorted(c.config.items()))
                lines.append(
                    f"  {c.name} ({c.partitions} partitions, {c.replication_factor} "
                    f"replica(s){', ' + settings if settings else ''})"
                )
        else:
            lines.append("changelog topics: none")
        if not self.exact:
            lines.append(
                "  (internal topics matched by name; pass --topology to use the topology's)"
            )
        lines.append("")
        if self.state_path is not None:
            lines.append(f"local state to delete: {self.state_path}")
        else:
            lines.append(
                f"local state: NOT deleted here. Before any worker starts again, delete "
                f"<state-dir>/{self.app_id} on every host that ran the app (or run this "
                "command with --state-dir on each host)."
            )
        return "\n".join(lines)


def plan_replay(
    cluster: Cluster,
    app_id: str,
    start: str | int,
    *,
    topology: Topology | None = None,
    state_dir: Path | None = None,
) -> ReplayPlan:
    """What a replay of ``app_id`` from ``start`` would change; refuses while the group has
    members, and when ``state_dir`` is given and the app's local state directory is not one
    streamer may delete."""
    if state_dir is not None:
        check_local_state(state_dir, app_id)
    group = cluster.groups.describe_group(app_id)
    require_no_members(group, "replay")
    committed = cluster.groups.committed_offsets(app_id)
    app = cluster.app_topics(app_id, topology, committed)
    existing = cluster.admin.list_topics()
    missing = [t for t in app.sources if t not in existing]
    if missing:
        msg = f"input topics {', '.join(missing)} do not exist"
        raise ConfigError(msg)
    if not app.sources:
        msg = (
            f"nothing to replay: group {app_id!r} has no committed offsets on input topics; "
            "pass --topology to name them"
        )
        raise OperationRefused(msg)
    sources = cluster.partitions(app.sources)
    targets = cluster.groups.list_offsets(sources, start)
    ends = cluster.groups.list_offsets(sources, LATEST)
    why_found = "log start" if start == EARLIEST else "first record at or after the time"
    changes = []
    for tp in sources:
        target = targets[tp]
        why = why_found
        if target < 0:
            target, why = ends[tp], "end: no record at or after the time"
        changes.append(OffsetChange(tp[0], tp[1], committed.get(tp), target, why))
    repartition = cluster.partitions(t for t in app.repartition if t in existing)
    repartition_ends = cluster.groups.list_offsets(repartition, LATEST)
    changes += [
        OffsetChange(tp[0], tp[1], committed.get(tp), repartition_ends[tp], "end: repartition")
        for tp in repartition
    ]
    changelogs = tuple(cluster.groups.topic_settings(t) for t in app.changelogs if t in existing)
    state_path = None if state_dir is None else state_directory(state_dir, app_id)
    return ReplayPlan(app_id, start, group, tuple(changes), changelogs, state_path, app.exact)


def execute_replay(cluster: Cluster, plan: ReplayPlan, *, timeout: float = 60.0) -> None:
    """Carry out ``plan``: offsets first (Kafka refuses them if a member joined since the
    plan), then the changelogs, then local state. The local state is checked again before
    anything changes."""
    if plan.state_path is not None:
        check_local_state(plan.state_path.parent, plan.app_id)
    require_no_members(cluster.groups.describe_group(plan.app_id), "replay")
    cluster.groups.alter_offsets(
        plan.app_id, {(o.topic, o.partition): o.target for o in plan.offsets}
    )
    recreate_topics(cluster, plan.changelogs, timeout=timeout)
    if plan.state_path is not None:
        remove_local_state(plan.state_path.parent, plan.app_id)


def wait_until_deleted(cluster: Cluster, names: list[str], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(set(names) & cluster.admin.list_topics())
        if not left:
            return
        if time.monotonic() >= deadline:
            msg = f"topics {left} still exist {timeout:.0f} s after their deletion"
            raise KafkaAdminError(msg)
        time.sleep(0.2)


def recreate_topics(
    cluster: Cluster, topics: tuple[TopicSettings, ...], *, timeout: float = 60.0
) -> None:
    """Delete ``topics``, wait until they are gone, and create them again, empty."""
    if not topics:
        return
    names = [t.name for t in topics]
    cluster.admin.delete_topics(names)
    wait_until_deleted(cluster, names, timeout=timeout)
    cluster.admin.create_topics(
        [TopicSpec(t.name, t.partitions, t.replication_factor, dict(t.config)) for t in topics],
        timeout=timeout,
    )
