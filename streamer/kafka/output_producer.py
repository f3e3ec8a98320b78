"""The worker's producer: transactional under exactly-once, delivery groups otherwise.

Part of the :mod:`streamer.kafka` package, the only importer of confluent-kafka; errors are
:class:`~streamer.kafka.runtime_clients.KafkaRuntimeError`, classified as there.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streamer.kafka.diagnostics import (
    SLICE_S,
    authorization_code,
    not_authorized,
    principal_of,
    with_diagnostics,
)
from streamer.kafka.runtime_clients import (
    KafkaRuntimeError,
    check_failure,
    offsets_with_metadata,
    wrap_error,
)
from streamer.kafka.types import TP


class DeliveryGroup:
    """Records sent between two :meth:`OutputProducer.mark` calls, counted as sent and as
    reported; ``done`` once closed and every one has its delivery report."""

    __slots__ = ("_on_failure", "closed", "reported", "sent")

    def __init__(self, on_failure: Callable[[KafkaError, Any], None]) -> None:
        self._on_failure = on_failure
        self.sent = 0
        self.reported = 0
        self.closed = False

    def report(self, err: KafkaError | None, message: Any) -> None:
        """The delivery callback of each record of the group (served by ``poll``)."""
        self.reported += 1
        if err is not None:
            self._on_failure(err, message)

    @property
    def done(self) -> bool:
        return self.closed and self.reported >= self.sent


class OutputProducer:
    """The worker's producer. Transactional when ``transactional.id`` is configured.

    Transactional, only failed deliveries are reported back (``delivery.report.only.error``),
    so a successful record costs no Python callback: the transaction's commit says all were
    delivered. Otherwise every record is reported to the :class:`DeliveryGroup` it was sent
    in, so the worker can commit an interval's offsets once that interval's records are
    delivered (:meth:`mark`) without waiting for later ones. Failures are kept and raised
    by :meth:`check_errors` at the next flush or commit. A delivery refused for a missing
    WRITE ACL makes the next commit, flush or failed transaction call raise a fatal error
    naming the topic, rather than the transaction error it causes.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        conf = dict(config)
        self.transactional = "transactional.id" in config
        conf["delivery.report.only.error"] = self.transactional
        conf["on_delivery"] = self._on_delivery
        self._principal = principal_of(conf)
        self._transactional_id = conf.get("transactional.id")
        conf, self._client_errors = with_diagnostics(conf)
        self._producer = Producer(conf)
        self._produce = self._producer.produce
        self._errors: list[str] = []
        self._denied: list[str] = []
        self._group: DeliveryGroup | None = None
        if not self.transactional:
            self._start_group()

    def _start_group(self) -> None:
        self._group = group = DeliveryGroup(self._on_delivery)
        self._produce = functools.partial(self._producer.produce, on_delivery=group.report)

    def mark(self) -> DeliveryGroup:
        """Close the group of records sent since the last mark and return it; the records
        sent from now on go to a new group. At-least-once (non-transactional) only."""
        group = self._group
        if group is None:
            msg = "a transactional producer has no delivery groups: its commit delivers"
            raise KafkaRuntimeError(msg, fatal=True)
        group.closed = True
        self._start_group()
        return group

    def _on_delivery(self, err: KafkaError | None, message: Any) -> None:
        if err is not None:
            self._errors.append(f"{message.topic()}[{message.partition()}]: {err.str()}")
            denied = not_authorized(err.code(), "WRITE", message.topic(), principal=self._principal)
            if denied is not None and denied not in self._denied:
                self._denied.append(denied)

    def _failed(self, exc: KafkaException, what: str, acl: tuple[str, str | None]) -> Exception:
        """The error to raise for a failed call: a refused WRITE (seen in delivery reports
        or the log), a missing ACL the call's error names, or a failed authentication come
        first, since they are the cause; else the call's own error."""
        with contextlib.suppress(KafkaException):  # a fatal error raises here too
            self._producer.poll(0)  # serve delivery reports and error events
        denied = self._denied_write()
        if denied is not None:
            return KafkaRuntimeError(denied, denied=True)
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError):
            code = authorization_code(error)
            line = not_authorized(code, acl[0], acl[1], principal=self._principal)
            if line is not None:
                return KafkaRuntimeError(line, denied=True)
        if self._client_errors.failure is not None:
            return KafkaRuntimeError(self._client_errors.failure, denied=True)
        return wrap_error(exc, what, acl, self._principal)

    def _denied_write(self) -> str | None:
        if self._denied:
            return self._denied[0]
        topics = self._client_errors.denied_topics
        if topics:
            code = KafkaError.TOPIC_AUTHORIZATION_FAILED
            return not_authorized(code, "WRITE", topics[0], principal=self._principal)
        return None

    def init_transactions(self, timeout: float = 60.0) -> None:
        """Get the producer id (fencing older producers of the same transactional id).

        Asked in slices: a timed-out ``init_transactions`` may be called again, and between
        slices a failed authentication or TLS handshake ends the wait at once."""
        deadline = time.monotonic() + timeout
        acl = ("WRITE", self._transactional_id)
        while True:
            left = max(0.1, min(4 * SLICE_S, deadline - time.monotonic()))
            try:
                self._producer.init_transactions(left)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                again = isinstance(error, KafkaError) and not error.fatal()
                if isinstance(error, KafkaError):
                    again = again and (error.retriable() or error.code() == KafkaError._TIMED_OUT)
                if not again or time.monotonic() >= deadline:
                    raise self._failed(exc, "init_transactions", acl) from exc
                self._producer.poll(0)
                check_failure(self._client_errors)

    def begin(self) -> None:
        try:
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise self._failed(exc, "begin_transaction", ("WRITE", self._transactional_id)) from exc

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
    ) -> None:
        """Queue one record; a full local queue is drained (poll) and retried, never dropped."""
        group = self._group
        if group is not None:
            group.sent += 1  # reports are served by poll, on this thread: none can come first
        if partition is None and not headers:  # the common case, kept short
            try:
                self._produce(topic, value, key, timestamp=timestamp)
                return
            except BufferError:
                pass  # retried below, after serving delivery reports
            except KafkaException as exc:
                raise self._failed(exc, f"produce to {topic}", ("WRITE", topic)) from exc
        while True:
            try:
                if partition is None:
                    if headers:
                        self._produce(topic, value, key, timestamp=timestamp, headers=list(headers))
                    else:
                        self._produce(topic, value, key, timestamp=timestamp)
                elif headers:
                    self._produce(
                        topic, value, key, partition, timestamp=timestamp, headers=list(headers)
                    )
                else:
                    self._produce(topic, value, key, partition, timestamp=timestamp)
                return
            except BufferError:
                # The local queue is full: serve delivery reports, then try again.
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise self._failed(exc, f"produce to {topic}", ("WRITE", topic)) from exc

    def poll(self) -> None:
        try:
            self._producer.poll(0)
        except KafkaException as exc:
            raise self._failed(exc, "producer poll", ("WRITE", self._transactional_id)) from exc
        if self._client_errors.failure is not None:
            raise KafkaRuntimeError(self._client_errors.failure, denied=True)

    def commit(
        self,
        offsets: Mapping[TP, int],
        group_metadata: Any,
        metadata: Mapping[TP, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Add consumer ``offsets`` (with their metadata) to the open transaction; commit it."""
        tps = offsets_with_metadata(offsets, metadata)
        try:
            if tps:
                self._producer.send_offsets_to_transaction(tps, group_metadata, timeout)
            self._producer.commit_transaction(timeout)
        except KafkaException as exc:
            raise self._failed(exc, "commit_transaction", ("READ", None)) from exc
        self.check_errors()

    def abort(self, timeout: float = 60.0) -> None:
        try:
            self._producer.abort_transaction(timeout)
        except KafkaException as exc:
            raise self._failed(exc, "abort_transaction", ("WRITE", self._transactional_id)) from exc
        self._errors.clear()

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            msg = f"{remaining} records were not delivered within {timeout} s"
            raise KafkaRuntimeError(msg, retriable=True)
        self.check_errors()

    def check_errors(self) -> None:
        denied = self._denied_write()
        if denied is not None:
            raise KafkaRuntimeError(denied, denied=True)
        check_failure(self._client_errors)
        if self._errors:
            errors, self._errors = self._errors, []
            msg = f"{len(errors)} records failed delivery, first: {errors[0]}"
            raise KafkaRuntimeError(msg, abortable=self.transactional)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)


__all__ = ["DeliveryGroup", "OutputProducer"]
