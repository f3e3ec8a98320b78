"""A small typed wrapper over :class:`confluent_kafka.admin.AdminClient`.

Covers what streamer needs: creating topics idempotently, listing brokers and topics, and
waiting until a cluster answers metadata requests.

Every wait is cut into short slices between which the client's error events are checked
(see :mod:`streamer.kafka.diagnostics`): a wrong password or an untrusted certificate fails
the first call within about a second, with one line naming the cause, instead of a timeout.
A missing ACL fails with the operation and resource named.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    OffsetSpec,
    ResourceType,
)
from confluent_kafka.cimpl import NewTopic

from streamer.errors import StreamerError
from streamer.kafka.diagnostics import (
    SLICE_S,
    ClientErrors,
    not_authorized,
    principal_of,
    with_diagnostics,
)

log = logging.getLogger(__name__)


class KafkaAdminError(StreamerError):
    """An admin request (create topics, metadata) failed or timed out.

    ``fatal``: retrying cannot help (authentication or TLS failed, an ACL is missing).
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal

    @property
    def denied(self) -> bool:
        """The cluster refused us (every fatal admin error is such a refusal)."""
        return self.fatal


def check_client_errors(errors: ClientErrors) -> None:
    """Raise a fatal :class:`KafkaAdminError` if the client reported a failure."""
    if errors.failure is not None:
        raise KafkaAdminError(errors.failure, fatal=True)


def wait_future(client: Any, errors: ClientErrors, future: Any, timeout: float) -> Any:
    """``future.result()``, waiting at most ``timeout`` s in slices; between slices the
    admin ``client`` is polled (serving ``error_cb``) and a reported failure is raised.
    A timeout raises :class:`TimeoutError`; the request's own error propagates."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return future.result(timeout=min(SLICE_S, max(0.0, deadline - time.monotonic())))
        except concurrent.futures.TimeoutError:
            client.poll(0)
            check_client_errors(errors)
            if time.monotonic() >= deadline:
                msg = f"no answer within {timeout:.0f} s"
                raise TimeoutError(msg) from None


def _denied(exc: BaseException, operation: str, name: str, principal: str | None) -> str | None:
    """The "not authorized" line for a failed request's exception, if it is one."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if not isinstance(error, KafkaError):
        return None
    return not_authorized(error.code(), operation, name, principal=principal)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create. ``config`` holds topic-level settings such as ``cleanup.policy``."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class PartitionInfo:
    """Leader and replica placement of one partition, as metadata reports it."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class KafkaAdmin:
    """Admin operations against the cluster at ``bootstrap_servers``.

    ``config`` is passed to librdkafka as is (e.g. security settings).
    """

    def __init__(self, bootstrap_servers: str, *, config: Mapping[str, Any] | None = None) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            # Reconnect quickly to brokers that are starting or restarting.
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        }
        conf.update(config or {})
        self.bootstrap_servers = bootstrap_servers
        self.principal = principal_of(conf)
        conf, self._errors = with_diagnostics(conf)
        self._client = AdminClient(conf)

    @property
    def client(self) -> Any:
        """The confluent-kafka ``AdminClient``, for requests this wrapper does not cover."""
        return self._client

    def wait(self, future: Any, timeout: float) -> Any:
        """A request's result; fails early if authentication or TLS fails meanwhile."""
        return wait_future(self._client, self._errors, future, timeout)

    # -- topics -----------------------------------------------------------------------
    def create_topics(
        self, specs: Iterable[TopicSpec], *, timeout: float = 30.0, wait: bool = True
    ) -> None:
        """Create ``specs``; a topic that already exists counts as created.

        With ``wait`` (the default), returns only once every topic is in the metadata with
        a leader for each partition, so producers can use it right away.
        """
        specs = list(specs)
        if not specs:
            return
        new_topics = [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=s.replication_factor,
                config=dict(s.config),
            )
            for s in specs
        ]
        futures = self._client.create_topics(
            new_topics, operation_timeout=timeout, request_timeout=timeout
        )
        errors: list[str] = []
        for name, future in futures.items():
            try:
                self.wait(future, timeout + 5)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    log.debug("topic %s already exists", name)
                    continue
                denied = _denied(exc, "CREATE", name, self.principal)
                if denied is not None:
                    raise KafkaAdminError(denied, fatal=True) from exc
                errors.append(f"{name}: {err if err is not None else exc}")
            except KafkaAdminError:
                raise
            except Exception as exc:  # futures raise plain exceptions on timeouts
                errors.append(f"{name}: {exc!r}")
        if errors:
            msg = "cannot create topics: " + "; ".join(errors)
            raise KafkaAdminError(msg)
        if wait:
            self.wait_for_topics([s.name for s in specs], timeout=timeout)

    def delete_topics(self, names: Iterable[str], *, timeout: float = 30.0) -> None:
        """Delete topics; a topic that does not exist counts as deleted."""
        names = list(names)
        if not names:
            return
        futures = self._client.delete_topics(
            names, operation_timeout=timeout, request_timeout=timeout
        )
        errors: list[str] = []
        for name, future in futures.items():
            try:
                self.wait(future, timeout + 5)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                denied = _denied(exc, "DELETE", name, self.principal)
                if denied is not None:
                    raise KafkaAdminError(denied, fatal=True) from exc
                errors.append(f"{name}: {err if err is not None else exc}")
        if errors:
            msg = "cannot delete topics: " + "; ".join(errors)
            raise KafkaAdminError(msg)

    def list_topics(self, *, timeout: float = 10.0, internal: bool = False) -> set[str]:
        """Names of the topics in the cluster (without ``__``-prefixed ones by default)."""
        md = self._metadata(timeout=timeout)
        return {t for t in md.topics if internal or not t.startswith("__")}

    def partitions(self, topic: str, *, timeout: float = 10.0) -> dict[int, PartitionInfo]:
        """Partition placement of ``topic``; raises KafkaAdminError if it does not exist."""
        md = self._metadata(topic=topic, timeout=timeout)
        tmd = md.topics.get(topic)
        if tmd is not None and tmd.error is not None:
            denied = not_authorized(tmd.error.code(), "DESCRIBE", topic, principal=self.principal)
            if denied is not None:
                raise KafkaAdminError(denied, fatal=True)
        if tmd is None or tmd.error is not None:
            msg = f"topic {topic!r} is not available: {tmd.error if tmd else 'not found'}"
            raise KafkaAdminError(msg)
        return {
            p.id: PartitionInfo(p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
            for p in tmd.partitions.values()
        }

    def wait_for_topics(self, names: Iterable[str], *, timeout: float = 30.0) -> None:
        """Wait until every topic is in the metadata and each partition has a leader."""
        pending = set(names)
        deadline = time.monotonic() + timeout
        while True:
            md = self._metadata(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            for name in list(pending):
                tmd = md.topics.get(name)
                if (
                    tmd is not None
                    and tmd.error is None
                    and tmd.partitions
                    and all(p.leader >= 0 for p in tmd.partitions.values())
                ):
                    pending.discard(name)
            if not pending:
                return
            if time.monotonic() >= deadline:
                msg = f"topics {sorted(pending)} not ready after {timeout:.0f} s"
                raise KafkaAdminError(msg)
            time.sleep(0.1)

    def topic_config(self, topic: str, *, timeout: float = 10.0) -> dict[str, str]:
        """Every config entry of ``topic`` as the broker reports it (defaults included)."""
        resource = ConfigResource(ResourceType.TOPIC, topic)
        futures = self._client.describe_configs([resource], request_timeout=timeout)
        try:
            entries = self.wait(next(iter(futures.values())), timeout)
        except KafkaAdminError:
            raise
        except Exception as exc:
            denied = _denied(exc, "DESCRIBE_CONFIGS", topic, self.principal)
            if denied is not None:
                raise KafkaAdminError(denied, fatal=True) from exc
            msg = f"cannot describe the config of topic {topic!r}: {exc}"
            raise KafkaAdminError(msg) from exc
        return {name: entry.value for name, entry in entries.items() if entry.value is not None}

    # -- offsets ----------------------------------------------------------------------
    def submit_delete_records(
        self, before: Mapping[tuple[str, int], int], *, timeout: float = 10.0
    ) -> dict[Any, Any]:
        """Start deleting every record below ``before[(topic, partition)]`` (DeleteRecords)
        without waiting: one future per partition, keyed by its ``TopicPartition``; each
        gives the partition's new low watermark or raises its error."""
        request = [TopicPartition(t, p, offset) for (t, p), offset in before.items()]
        return dict(self._client.delete_records(request, request_timeout=timeout))

    def end_offsets(self, topic: str, *, timeout: float = 10.0) -> dict[int, int]:
        """Per partition of ``topic``: the offset the next record will get."""
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        return self._list_offsets(topic, latest, "end", timeout)

    def start_offsets(self, topic: str, *, timeout: float = 10.0) -> dict[int, int]:
        """Per partition of ``topic``: the log start offset (the oldest record kept)."""
        earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        return self._list_offsets(topic, earliest, "start", timeout)

    def log_end_offsets(
        self, partitions: Iterable[tuple[str, int]], *, timeout: float = 10.0
    ) -> dict[tuple[str, int], int]:
        """Per partition: the log end (high watermark), whatever transactions are still open
        there (read_uncommitted), so it already counts every acknowledged record."""
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        tps = [TopicPartition(t, p) for t, p in partitions]
        offsets = self._offsets_of(tps, latest, "end", timeout) if tps else {}
        return {(tp.topic, tp.partition): offset for tp, offset in offsets.items()}

    def _list_offsets(self, topic: str, spec: Any, what: str, timeout: float) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
        offsets = self._offsets_of(tps, spec, what, timeout)
        return {tp.partition: offset for tp, offset in offsets.items()}

    def _offsets_of(
        self, tps: list[TopicPartition], spec: Any, what: str, timeout: float
    ) -> dict[TopicPartition, int]:
        futures = self._client.list_offsets(dict.fromkeys(tps, spec), request_timeout=timeout)
        try:
            return {tp: self.wait(f, timeout).offset for tp, f in futures.items()}
        except KafkaAdminError:
            raise
        except Exception as exc:  # futures raise plain exceptions on timeouts
            topics = sorted({tp.topic for tp in tps})
            denied = _denied(exc, "DESCRIBE", topics[0], self.principal)
            if denied is not None:
                raise KafkaAdminError(denied, fatal=True) from exc
            msg = f"cannot list the {what} offsets of {', '.join(map(repr, topics))}: {exc}"
            raise KafkaAdminError(msg) from exc

    def group_offsets(self, group: str, topic: str, *, timeout: float = 10.0) -> dict[int, int]:
        """Per partition of ``topic``: the offset ``group`` committed (partitions without a
        committed offset are left out)."""
        partitions = [TopicPartition(topic, p) for p in self.partitions(topic)]
        futures = self._client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=timeout
        )
        try:
            result = self.wait(futures[group], timeout)
        except KafkaAdminError:
            raise
        except Exception as exc:
            denied = _denied(exc, "DESCRIBE", group, self.principal)
            if denied is not None:
                raise KafkaAdminError(denied, fatal=True) from exc
            msg = f"cannot list the offsets of group {group!r}: {exc}"
            raise KafkaAdminError(msg) from exc
        return {tp.partition: tp.offset for tp in result.topic_partitions or () if tp.offset >= 0}

    # -- brokers ----------------------------------------------------------------------
    def broker_ids(self, *, timeout: float = 10.0) -> set[int]:
        """Ids of the brokers that the cluster metadata currently lists."""
        return set(self._metadata(timeout=timeout).brokers)

    def wait_until_ready(
        self,
        expected_brokers: int = 1,
        timeout: float = 60.0,
        *,
        broker_ids: Iterable[int] | None = None,
    ) -> set[int]:
        """Wait until metadata lists at least ``expected_brokers`` brokers (and every id
        in ``broker_ids``, if given). Returns the listed ids; raises KafkaAdminError on
        timeout."""
        wanted = set(broker_ids or ())
        deadline = time.monotonic() + timeout
        last: str = "no answer yet"
        while True:
            remaining = deadline - time.monotonic()
            try:
                ids = self.broker_ids(timeout=max(0.5, min(2.0, remaining)))
            except KafkaAdminError as exc:
                if exc.fatal:
                    raise
                last = str(exc)
            else:
                if len(ids) >= expected_brokers and wanted <= ids:
                    return ids
                last = f"metadata lists brokers {sorted(ids)}"
            if time.monotonic() >= deadline:
                want = f"{expected_brokers} broker(s)"
                if wanted:
                    want += f" including {sorted(wanted)}"
                msg = (
                    f"Kafka at {self.bootstrap_servers} not ready after {timeout:.0f} s: "
                    f"expected {want}, {last}"
                )
                raise KafkaAdminError(msg)
            time.sleep(0.1)

    # -- internals --------------------------------------------------------------------
    def _metadata(self, *, topic: str | None = None, timeout: float) -> Any:
        """A metadata answer, asked in slices of :data:`SLICE_S` so that a failed
        authentication or TLS handshake ends the wait at once (as a fatal error)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return self._client.list_topics(topic=topic, timeout=max(0.05, min(SLICE_S, left)))
            except KafkaException as exc:
                self._client.poll(0)
                check_client_errors(self._errors)
                if time.monotonic() >= deadline:
                    msg = f"metadata request to {self.bootstrap_servers} failed: {exc}"
                    if self._errors.last_connection_error is not None:
                        msg += f"; last connection error: {self._errors.last_connection_error}"
                    raise KafkaAdminError(msg) from exc
