"""Application configuration for the worker runtime: one frozen object, checked at start."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError


class ErrorPolicy(enum.Enum):
    """What happens to a record that cannot be decoded or processed."""

    FAIL = "fail"
    """Raise: the worker stops, and offsets are not committed past the record."""
    SKIP = "skip"
    """Log it, count it and go on."""
    DEAD_LETTER = "dead-letter"
    """Send the raw key, value and headers, with the error, to ``<app_id>-dlq``; go on."""


class Guarantee(enum.Enum):
    EXACTLY_ONCE = "exactly-once"
    AT_LEAST_ONCE = "at-least-once"


_APP_ID = re.compile(r"^[a-zA-Z0-9._-]{1,200}$")


@dataclass(frozen=True)
class AppConfig:
    """Everything a worker needs besides the topology.

    * ``instance`` is this worker's slot (0, 1, ...); with exactly-once it fixes the
      producer's ``transactional.id`` (``<app_id>-<instance_prefix><instance>``), so a
      restarted worker fences its zombie. Slots must be unique across the group: give each
      host its own ``instance_prefix``.
    * ``static_membership`` sets ``group.instance.id`` from the same slot, so a restarted
      worker gets its partitions back without a group-wide rebalance.
    * ``commit_interval_ms`` defaults to 100 ms under exactly-once and 1 s under
      at-least-once.
    * ``repartition_purge_interval_ms``: how often committed records are deleted from
      repartition topics (which have no time retention; see :mod:`streamer.runtime.purge`).
    """

    app_id: str
    bootstrap_servers: str
    guarantee: Guarantee = Guarantee.EXACTLY_ONCE
    state_dir: Path = Path("var/state")
    instance: int = 0
    instance_prefix: str = ""
    commit_interval_ms: int | None = None
    error_policy: ErrorPolicy = ErrorPolicy.FAIL
    static_membership: bool = False
    max_batch: int = 1000
    poll_timeout_ms: int = 10
    internal_topic_prefix: str | None = None
    internal_replication_factor: int = 1
    restore_batch: int = 10_000
    repartition_purge_interval_ms: int = 30_000
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    producer_config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _APP_ID.match(self.app_id):
            msg = f"app id {self.app_id!r} must be 1-200 characters from [a-zA-Z0-9._-]"
            raise ConfigError(msg)
        if not self.bootstrap_servers:
            msg = "bootstrap servers are required (host:port[,host:port...])"
            raise ConfigError(msg)
        if self.instance < 0:
            msg = f"instance must be >= 0, got {self.instance}"
            raise ConfigError(msg)
        if self.commit_interval_ms is not None and self.commit_interval_ms <= 0:
            msg = f"commit interval must be positive, got {self.commit_interval_ms} ms"
            raise ConfigError(msg)
        if self.repartition_purge_interval_ms <= 0:
            msg = (
                "repartition purge interval must be positive, "
                f"got {self.repartition_purge_interval_ms} ms"
            )
            raise ConfigError(msg)
        if self.max_batch <= 0:
            msg = f"max batch must be positive, got {self.max_batch}"
            raise ConfigError(msg)

    @property
    def prefix(self) -> str:
        """What internal topic names start with (default: the app id)."""
        return self.internal_topic_prefix or self.app_id

    @property
    def exactly_once(self) -> bool:
        return self.guarantee is Guarantee.EXACTLY_ONCE

    @property
    def commit_interval(self) -> float:
        ms = self.commit_interval_ms or (100 if self.exactly_once else 1000)
        return ms / 1000

    @property
    def slot(self) -> str:
        return f"{self.instance_prefix}{self.instance}"

    @property
    def transactional_id(self) -> str:
        return f"{self.app_id}-{self.slot}"

    @property
    def dlq_topic(self) -> str:
        return f"{self.prefix}-dlq"
