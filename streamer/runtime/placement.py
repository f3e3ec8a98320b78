"""Where standby copies go: pure functions of the group's description.

A worker cannot choose its assignment, so copies go where the broker's assignor is likely to
send a task if its owner fails, and that guess needs no coordination: every worker computes
the same answer from the same group description.

* **The first copy** goes to the member the consumer protocol's ``range`` assignor (the
  default) would give the task's partition if the owner's host left: that assignor gives
  each member a contiguous range of partition numbers, the members in a fixed order, so
  after a member leaves the survivors, in the order of their current ranges, split the
  partitions into contiguous ranges again (:func:`range_successor`). This needs the whole
  topic assigned and every member holding partitions; otherwise, or with another assignor,
  it is only a deterministic choice, no better than chance.
* **The other copies** go to the hosts (other than the owner's and the first copy's) that
  rank first by a rendezvous hash of (task, host), each to the member of that host with the
  highest rendezvous hash of (task, member): evenly spread, and a change of membership moves
  only the copies of the hosts that came or went.

A *host* is a slot prefix (:func:`host_of`): the members ``<app-id>-<prefix><n>`` of one
``streamer run`` share a state directory, so a copy never sits on its owner's host.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

_SLOT_NUMBER = re.compile(r"\d+$")


def host_of(member: str) -> str:
    """The host part of a member's client id: ``<app-id>-<prefix>`` of ``<app-id>-<prefix><n>``."""
    return _SLOT_NUMBER.sub("", member)


def _score(task: str, name: str) -> int:
    digest = hashlib.blake2b(f"{task}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def range_successor(owners: Mapping[int, str], partition: int, gone: set[str]) -> str | None:
    """Who the range assignor would give ``partition`` once the members ``gone`` left.

    ``owners`` is one topic's partitions and their members. The survivors keep the order of
    their current ranges (by their lowest partition); the first ``count % n`` of the ``n``
    survivors get one partition more. None when the topic is not wholly assigned (a
    rebalance is under way) or no member survives.
    """
    count = len(owners)
    if count == 0 or set(owners) != set(range(count)):
        return None
    lowest: dict[str, int] = {}
    for number, member in owners.items():
        lowest[member] = min(lowest.get(member, number), number)
    survivors = sorted((m for m in lowest if m not in gone), key=lambda m: lowest[m])
    if not survivors:
        return None
    size, extra = divmod(count, len(survivors))
    start = 0
    for index, member in enumerate(survivors):
        end = start + size + (1 if index < extra else 0)
        if start <= partition < end:
            return member
        start = end
    return None


def standby_members(
    task: str,
    owner: str,
    members: Iterable[str],
    replicas: int,
    successor: str | None = None,
) -> list[str]:
    """The members that keep a copy of ``task`` (active on ``owner``): ``successor`` first
    (see the module docstring) when it is on another host, then one member on each of the
    next hosts, other than the owner's, by rendezvous hash."""
    hosts: dict[str, list[str]] = {}
    for member in members:
        hosts.setdefault(host_of(member), []).append(member)
    hosts.pop(host_of(owner), None)
    chosen: list[str] = []
    if successor is not None and host_of(successor) in hosts and replicas > 0:
        chosen.append(successor)
        hosts.pop(host_of(successor))
    ranked = sorted(hosts, key=lambda host: _score(task, host), reverse=True)
    for host in ranked[: replicas - len(chosen)]:
        chosen.append(max(hosts[host], key=lambda member: _score(task, member)))
    return chosen


__all__ = ["host_of", "range_successor", "standby_members"]
