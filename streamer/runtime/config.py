"""Application configuration for the worker runtime: one frozen object, checked at start.

:class:`AppConfig` is what the runtime takes, however it was built: by hand, or by
:mod:`streamer.runtime.settings` from a config file, ``STREAMER_*`` variables and flags.
:func:`check_app_id` is the one app-id rule every command applies before touching anything;
:func:`is_secret` and :func:`redacted` keep secret client settings out of reprs and output.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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

APP_ID_RULE = "1-200 characters from [a-zA-Z0-9._-], and not '.' or '..'"
"""Kafka's group-id rule, which also keeps ``<state_dir>/<app_id>`` inside the state dir."""

_SECRET_KEYS = frozenset({"ssl.key.pem", "ssl_key", "sasl.oauthbearer.config", "http_token"})
_SECRET_WORDS = ("password", "secret", "passphrase", "private.key", "credentials")
REDACTED = "***"


def check_app_id(app_id: str) -> str:
    """Return ``app_id`` if it is a valid app id, else raise :class:`ConfigError`.

    The app id names the consumer group, the ``transactional.id`` prefix, the internal
    topics and the state directory ``<state_dir>/<app_id>``: besides Kafka's character set
    it must not be ``.`` or ``..``, so it can never name a parent or the state dir itself.
    """
    if not _APP_ID.match(app_id) or app_id in (".", ".."):
        msg = f"app id {app_id!r} must be {APP_ID_RULE}"
        raise ConfigError(msg)
    return app_id


def is_secret(key: str) -> bool:
    """True for client settings whose value must never be shown: passwords, secrets,
    private keys (``sasl.password``, ``ssl.key.password``, ``ssl.key.pem``, ...)."""
    lowered = key.lower()
    return lowered in _SECRET_KEYS or any(word in lowered for word in _SECRET_WORDS)


def redacted(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with the value of every secret key replaced by ``***``."""
    return {key: REDACTED if is_secret(key) else value for key, value in settings.items()}


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
    * ``kafka_config`` goes to every client (consumers, producer, admin);
      ``consumer_config`` (every consumer), ``producer_config`` and ``admin_config`` are
      merged over it per role. Settings streamer manages itself (``group.id``,
      ``transactional.id``, ``isolation.level``, ...) are refused; see
      :mod:`streamer.runtime.client_config`. Secret values never show in ``repr``.
    * ``standby_replicas``: how many other hosts keep a warm copy of each task's stores
      (see :mod:`streamer.runtime.standby`).
    * ``log_payloads``: error logs may show record keys and values (off: only their
      topic, partition, offset and size).
    * ``query_url``: the advertised URL of this worker's query server, if it runs one. It
      is published in the group consumer's client id (``<app-id>-<slot>|<url>``), so any
      member finds the URL of a partition's owner in the group description.
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
    standby_replicas: int = 0
    repartition_purge_interval_ms: int = 30_000
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    producer_config: Mapping[str, Any] = field(default_factory=dict)
    kafka_config: Mapping[str, Any] = field(default_factory=dict)
    admin_config: Mapping[str, Any] = field(default_factory=dict)
    log_payloads: bool = False
    query_url: str | None = None

    def __post_init__(self) -> None:
        from streamer.runtime.client_config import check_user_settings

        check_app_id(self.app_id)
        for role in ("kafka", "consumer", "producer", "admin"):
            check_user_settings(role, getattr(self, f"{role}_config"))
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
        if self.standby_replicas < 0:
            msg = f"standby replicas must be >= 0, got {self.standby_replicas}"
            raise ConfigError(msg)
        if self.max_batch <= 0:
            msg = f"max batch must be positive, got {self.max_batch}"
            raise ConfigError(msg)

    def __repr__(self) -> str:
        """The fields, with secret client settings shown as ``***``."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_config"):
                value = redacted(value)
            parts.append(f"{f.name}={value!r}")
        return f"AppConfig({', '.join(parts)})"

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
