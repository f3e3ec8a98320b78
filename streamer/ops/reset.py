"""Reset: remove everything an app keeps, so its next start begins from nothing.

While no worker of the app runs: delete its consumer group (and so its committed offsets),
its internal topics (repartition, changelog and dead-letter topics) and its local state
directory ``<state_dir>/<app_id>`` on this host. Input and output topics are not touched.
Other hosts that ran the app keep their own state directories: delete them there (or run
the reset on each host). The next start reads the input from the beginning.

The local state directory is deleted only if it lies strictly under the state directory and
holds the marker its workers wrote (see :mod:`streamer.state.markers`); otherwise the reset
is refused before anything is changed, on the cluster or on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.kafka.groups import GroupDescription
from streamer.kafka.types import TP
from streamer.ops.apps import Cluster, require_no_members, state_directory
from streamer.ops.local_state import check_local_state, remove_local_state
from streamer.ops.replay import wait_until_deleted
from streamer.topology.graph import Topology


@dataclass(frozen=True)
class ResetPlan:
    app_id: str
    group: GroupDescription
    committed: dict[TP, int]
    topics: tuple[str, ...]
    state_path: Path
    state_exists: bool
    exact: bool

    @property
    def empty(self) -> bool:
        return not (self.committed or self.group.exists or self.topics or self.state_exists)

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "group_state": self.group.state,
            "offsets_deleted": [
                {"topic": t, "partition": p, "committed": o}
                for (t, p), o in sorted(self.committed.items())
            ],
            "topics_deleted": list(self.topics),
            "topics_matched_by_name": not self.exact,
            "state_deleted": str(self.state_path) if self.state_exists else None,
        }

    def format(self) -> str:
        lines = [f"reset of app {self.app_id} (group {self.group.state.lower()})", ""]
        if self.committed or self.group.exists:
            lines.append(
                f"consumer group {self.app_id} to delete, with {len(self.committed)} "
                "committed offset(s):"
            )
            lines += [f"  {t}[{p}] at {o}" for (t, p), o in sorted(self.committed.items())]
        else:
            lines.append(f"consumer group {self.app_id}: does not exist")
        lines.append("")
        if self.topics:
            lines.append("internal topics to delete:")
            lines += [f"  {t}" for t in self.topics]
            if not self.exact:
                lines.append(
                    "  (matched by name; pass --topology to use the topology's topic names)"
                )
        else:
            lines.append("internal topics: none found")
        lines.append("")
        if self.state_exists:
            lines.append(f"local state to delete: {self.state_path}")
        else:
            lines.append(f"local state: {self.state_path} does not exist")
        lines.append(
            "other hosts that ran the app keep their state directories: delete them there."
        )
        return "\n".join(lines)


def plan_reset(
    cluster: Cluster,
    app_id: str,
    *,
    state_dir: Path,
    topology: Topology | None = None,
) -> ResetPlan:
    """What a reset of ``app_id`` would remove; refuses while the group has members, and
    when the local state directory is not one streamer may delete."""
    state_exists = check_local_state(state_dir, app_id)
    group = cluster.groups.describe_group(app_id)
    require_no_members(group, "reset")
    committed = cluster.groups.committed_offsets(app_id)
    app = cluster.app_topics(app_id, topology, committed)
    existing = cluster.admin.list_topics()
    topics = tuple(sorted(t for t in app.internal if t in existing))
    path = state_directory(state_dir, app_id)
    return ResetPlan(app_id, group, committed, topics, path, state_exists, app.exact)


def execute_reset(cluster: Cluster, plan: ResetPlan, *, timeout: float = 60.0) -> None:
    """Carry out ``plan``: the group first (Kafka refuses while it has members), then the
    topics, then local state. The local state is checked again before anything changes."""
    check_local_state(plan.state_path.parent, plan.app_id)
    require_no_members(cluster.groups.describe_group(plan.app_id), "reset")
    if plan.committed or plan.group.exists:
        cluster.groups.delete_group(plan.app_id)
    if plan.topics:
        cluster.admin.delete_topics(plan.topics)
        wait_until_deleted(cluster, list(plan.topics), timeout=timeout)
    remove_local_state(plan.state_path.parent, plan.app_id)
