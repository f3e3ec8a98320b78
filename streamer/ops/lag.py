"""Consumer lag of an app: per input partition, the committed offset, the end offset, the
lag between them and the group member that owns the partition.

The end offset is the last stable offset (what a ``read_committed`` consumer can reach). A
partition without a committed offset is read from its start (``auto.offset.reset=earliest``),
so its lag counts from the log start offset.

On topics written by transactions (repartition topics under exactly-once), a caught-up
partition shows a lag of 0: the worker commits the consumer's position, which is past the
commit marker that follows the last record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamer.kafka.groups import EARLIEST, LATEST, GroupMember
from streamer.ops.apps import Cluster, OperationRefused, topics_from_topology
from streamer.topology.graph import Topology


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    owner: GroupMember | None

    def to_json(self) -> dict[str, Any]:
        owner = None
        if self.owner is not None:
            owner = {
                "member_id": self.owner.member_id,
                "client_id": self.owner.client_id,
                "host": self.owner.host.lstrip("/"),
                "instance_id": self.owner.instance_id,
            }
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "lag": self.lag,
            "owner": owner,
        }


@dataclass(frozen=True)
class LagReport:
    app_id: str
    state: str
    members: tuple[GroupMember, ...]
    partitions: tuple[PartitionLag, ...]
    taken_at_ms: int

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def lag_by_topic(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.topic] = totals.get(p.topic, 0) + p.lag
        return totals

    def lag_of(self, topic: str, partition: int) -> int:
        for p in self.partitions:
            if (p.topic, p.partition) == (topic, partition):
                return p.lag
        msg = f"no lag for {topic}[{partition}] in this report"
        raise KeyError(msg)

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "time": _iso(self.taken_at_ms),
            "group_state": self.state,
            "members": [
                {
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.host.lstrip("/"),
                    "instance_id": m.instance_id,
                    "partitions": [[t, p] for t, p in m.partitions],
                }
                for m in self.members
            ],
            "partitions": [p.to_json() for p in self.partitions],
            "topics": self.lag_by_topic(),
            "total_lag": self.total_lag,
        }

    def format(self) -> str:
        """A table for people: one line per partition, then totals per topic."""
        header = (
            f"app {self.app_id} at {_iso(self.taken_at_ms)}: group {self.state.lower()}, "
            f"{len(self.members)} member(s), total lag {self.total_lag:,}"
        )
        rows = [("TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OWNER")]
        for p in self.partitions:
            rows.append(
                (
                    p.topic,
                    str(p.partition),
                    "-" if p.committed is None else str(p.committed),
                    str(p.end),
                    str(p.lag),
                    "-" if p.owner is None else p.owner.label(),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        right = {1, 2, 3, 4}
        lines = [header, ""]
        for row in rows:
            cells = [
                cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append("")
        for topic, lag in sorted(self.lag_by_topic().items()):
            lines.append(f"{topic}: lag {lag:,}")
        return "\n".join(lines)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def collect_lag(cluster: Cluster, app_id: str, topology: Topology | None = None) -> LagReport:
    """The lag of every partition the app reads: those it committed offsets for, those its
    members own, and (with ``topology``) every partition of its input and repartition
    topics."""
    group = cluster.groups.describe_group(app_id)
    committed = cluster.groups.committed_offsets(app_id)
    topics = {t for t, _ in committed} | {t for m in group.members for t, _ in m.partitions}
    if topology is not None:
        app = topics_from_topology(topology, app_id)
        topics |= set(app.sources) | set(app.repartition)
    if not topics:
        msg = (
            f"group {app_id!r} has no committed offsets and no members: has the app run "
            "with this app id? Pass --topology to list its input topics anyway."
        )
        raise OperationRefused(msg)
    existing = cluster.admin.list_topics()
    partitions = cluster.partitions(t for t in topics if t in existing)
    ends = cluster.groups.list_offsets(partitions, LATEST)
    uncommitted = [tp for tp in partitions if tp not in committed]
    starts = cluster.groups.list_offsets(uncommitted, EARLIEST)
    owners = group.owners()
    rows = []
    for tp in partitions:
        position = committed.get(tp, starts.get(tp, 0))
        rows.append(
            PartitionLag(
                tp[0],
                tp[1],
                committed.get(tp),
                ends[tp],
                max(0, ends[tp] - position),
                owners.get(tp),
            )
        )
    return LagReport(app_id, group.state, group.members, tuple(rows), int(time.time() * 1000))
