"""Consumer-group and offset administration for the operations commands.

A thin typed layer over :class:`confluent_kafka.admin.AdminClient`: describe a group and its
members, read and change its committed offsets, delete it, list offsets by time or position,
and read a topic's settings (to recreate it). Partitions are plain ``(topic, partition)``
tuples outside this module, as in :mod:`streamer.kafka.runtime_clients`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ConfigSource,
    OffsetSpec,
    ResourceType,
)

from streamer.kafka.admin import KafkaAdminError, wait_future
from streamer.kafka.diagnostics import not_authorized, principal_of, with_diagnostics
from streamer.kafka.types import TP

EARLIEST = "earliest"
LATEST = "latest"


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group, as the group coordinator describes it."""

    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    partitions: tuple[TP, ...]

    def label(self) -> str:
        """``client-id@host`` (the host without the leading slash Kafka reports)."""
        return f"{self.client_id}@{self.host.lstrip('/')}"


@dataclass(frozen=True)
class GroupDescription:
    """State and members of a consumer group. A group that does not exist is ``DEAD`` or
    ``UNKNOWN`` with no members."""

    group_id: str
    state: str
    type: str
    members: tuple[GroupMember, ...] = field(default=())

    @property
    def exists(self) -> bool:
        return self.state not in ("DEAD", "UNKNOWN") or bool(self.members)

    def owners(self) -> dict[TP, GroupMember]:
        return {tp: m for m in self.members for tp in m.partitions}


@dataclass(frozen=True)
class TopicSettings:
    """What it takes to recreate a topic as it is: partitions, replicas and the settings
    set on the topic itself (not broker defaults)."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _kafka_error(exc: BaseException) -> KafkaError | None:
    cause = exc.__cause__
    if isinstance(cause, KafkaException) and cause.args and isinstance(cause.args[0], KafkaError):
        return cause.args[0]
    return None


def _error_code(exc: BaseException) -> Any:
    error = _kafka_error(exc)
    return None if error is None else error.code()


_COORDINATOR_ERRORS = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


class GroupAdmin:
    """Group and offset operations against the cluster at ``bootstrap_servers``.

    ``config`` is passed to librdkafka as is (e.g. security settings). A failed
    authentication or TLS handshake, or a missing ACL, raises a fatal
    :class:`KafkaAdminError` naming it (see :mod:`streamer.kafka.diagnostics`).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        config: Mapping[str, Any] | None = None,
        timeout: float = 15.0,
    ) -> None:
        conf: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
        conf.update(config or {})
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self.principal = principal_of(conf)
        conf, self._errors = with_diagnostics(conf)
        self._client = AdminClient(conf)

    def _result(self, future: Future[Any], what: str, acl: tuple[str, str] | None = None) -> Any:
        """``future``'s result. ``acl`` (operation, group) names what a missing ACL denied."""
        try:
            return wait_future(self._client, self._errors, future, self.timeout)
        except KafkaAdminError:
            raise
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            denied = None
            if acl is not None and isinstance(error, KafkaError):
                denied = not_authorized(error.code(), *acl, principal=self.principal)
            if denied is not None:
                raise KafkaAdminError(denied, fatal=True) from exc
            msg = f"{what} failed: {error}"
            raise KafkaAdminError(msg) from exc
        except Exception as exc:  # futures raise plain exceptions on timeouts
            msg = f"{what} failed: {exc!r}"
            raise KafkaAdminError(msg) from exc

    def _retrying(
        self,
        request: Callable[[], Future[Any]],
        what: str,
        acl: tuple[str, str] | None = None,
    ) -> Any:
        """Send ``request`` again while it fails with a retriable error (a group coordinator
        that is moving or still loading, as on a fresh cluster), for up to the timeout."""
        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            try:
                return self._result(request(), what, acl)
            except KafkaAdminError as exc:
                error = _kafka_error(exc)
                retriable = error is not None and (
                    error.retriable() or error.code() in _COORDINATOR_ERRORS
                )
                if exc.fatal or not retriable or time.monotonic() + delay >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # -- groups -----------------------------------------------------------------------
    def describe_group(self, group: str) -> GroupDescription:
        try:
            result = self._retrying(
                lambda: self._client.describe_consumer_groups(
                    [group], request_timeout=self.timeout
                )[group],
                f"describing group {group!r}",
                ("DESCRIBE", group),
            )
        except KafkaAdminError as exc:
            if _error_code(exc) == KafkaError.GROUP_ID_NOT_FOUND:
                return GroupDescription(group, "DEAD", "UNKNOWN")
            raise
        members = tuple(
            GroupMember(
                member_id=str(m.member_id),
                client_id=str(m.client_id),
                host=str(m.host),
                instance_id=m.group_instance_id,
                partitions=tuple(
                    sorted(
                        (tp.topic, tp.partition)
                        for tp in (m.assignment.topic_partitions if m.assignment else None) or ()
                    )
                ),
            )
            for m in result.members or ()
        )
        return GroupDescription(
            group, _enum_name(result.state), _enum_name(getattr(result, "type", "")), members
        )

    def group_ids(self) -> list[str]:
        result = self._retrying(
            lambda: self._client.list_consumer_groups(request_timeout=self.timeout),
            "listing consumer groups",
            ("DESCRIBE", "kafka-cluster"),
        )
        return sorted(str(g.group_id) for g in result.valid or ())

    def committed_offsets(self, group: str) -> dict[TP, int]:
        """Every committed offset of ``group`` (partitions without one are left out)."""
        result = self._retrying(
            lambda: self._client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=self.timeout
            )[group],
            f"listing the offsets of group {group!r}",
            ("DESCRIBE", group),
        )
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or ()
            if tp.offset >= 0
        }

    def alter_offsets(self, group: str, offsets: Mapping[TP, int]) -> None:
        """Set ``group``'s committed offsets; the group must have no active members."""
        if not offsets:
            return
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        )
        result = self._retrying(
            lambda: self._client.alter_consumer_group_offsets(
                [request], request_timeout=self.timeout
            )[group],
            f"changing the offsets of group {group!r}",
            ("READ", group),
        )
        errors = [
            f"{tp.topic}[{tp.partition}]: {tp.error}"
            for tp in result.topic_partitions or ()
            if tp.error is not None
        ]
        if errors:
            msg = f"changing the offsets of group {group!r} failed: " + "; ".join(errors)
            raise KafkaAdminError(msg)

    def delete_group(self, group: str) -> bool:
        """Delete ``group`` and its offsets; False if it did not exist."""
        try:
            self._retrying(
                lambda: self._client.delete_consumer_groups([group], request_timeout=self.timeout)[
                    group
                ],
                f"deleting group {group!r}",
                ("DELETE", group),
            )
        except KafkaAdminError as exc:
            if _error_code(exc) == KafkaError.GROUP_ID_NOT_FOUND:
                return False
            raise
        return True

    # -- offsets ----------------------------------------------------------------------
    def list_offsets(
        self,
        partitions: Iterable[TP],
        spec: str | int,
        *,
        read_committed: bool = True,
    ) -> dict[TP, int]:
        """Per partition: the earliest offset, the end offset (``"latest"``: the last stable
        offset with ``read_committed``), or for an ``int`` timestamp in ms the first offset
        whose record timestamp is at or after it (-1 when there is none)."""
        if spec == EARLIEST:
            offset_spec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        elif spec == LATEST:
            offset_spec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        elif isinstance(spec, int):
            offset_spec = OffsetSpec.for_timestamp(spec)
        else:
            msg = f"offset spec must be {EARLIEST!r}, {LATEST!r} or a timestamp, got {spec!r}"
            raise ValueError(msg)
        request = {TopicPartition(t, p): offset_spec for t, p in sorted(set(partitions))}
        if not request:
            return {}
        isolation = (
            IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
        )
        futures = self._client.list_offsets(
            request, isolation_level=isolation, request_timeout=self.timeout
        )
        return {
            (tp.topic, tp.partition): int(
                self._result(
                    f, f"listing offsets of {tp.topic}[{tp.partition}]", ("DESCRIBE", tp.topic)
                ).offset
            )
            for tp, f in futures.items()
        }

    # -- topics -----------------------------------------------------------------------
    def topic_settings(self, topic: str) -> TopicSettings:
        """Partitions, replication factor and topic-level settings of ``topic``."""
        metadata = self._client.list_topics(topic=topic, timeout=self.timeout)
        tmd = metadata.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            msg = f"topic {topic!r} is not available: {tmd.error if tmd else 'not found'}"
            raise KafkaAdminError(msg)
        replicas = max(len(p.replicas) for p in tmd.partitions.values())
        resource = ConfigResource(ResourceType.TOPIC, topic)
        futures = self._client.describe_configs([resource], request_timeout=self.timeout)
        entries = self._result(
            futures[resource], f"describing {topic!r}", ("DESCRIBE_CONFIGS", topic)
        )
        config = {
            name: str(entry.value)
            for name, entry in entries.items()
            if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and entry.value is not None
        }
        return TopicSettings(topic, len(tmd.partitions), replicas, config)


__all__ = [
    "EARLIEST",
    "LATEST",
    "GroupAdmin",
    "GroupDescription",
    "GroupMember",
    "TopicSettings",
]
