"""Clear errors from librdkafka's: failed authentication, TLS and missing ACLs.

librdkafka reports a wrong password or an untrusted broker certificate only through its
error callback and its log, then keeps reconnecting: the call that waits for the broker
hangs until its own timeout and fails with a vague transport error. :class:`ClientErrors`
is every streamer client's ``error_cb``: it turns such an event into one line that names
the cause (``authentication failed for user 'app' (SASL SCRAM-SHA-512) at 127.0.0.1:9093:
...``), and the clients check it while they wait, in short slices, so the first call fails
within about a second.

A missing ACL comes back as an error code on the request; :func:`not_authorized` names the
operation and resource (``not authorized to WRITE topic 'out' (TOPIC_AUTHORIZATION_FAILED)
...``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError

from streamer.kafka.log_folding import librdkafka_logger

SLICE_S = 0.25
"""How long a client waits in librdkafka before checking :class:`ClientErrors` again."""

_EVENT = re.compile(r"^(?:(?P<proto>[a-z_]+)://)?(?P<addr>[^\s/]+:\d+)/\S*?:\s*(?P<text>.*)$", re.S)
_AFTER = re.compile(r"\s*\(after -?\d+ms in state [A-Z_]+.*?\)\s*$")
_THREAD = re.compile(r"^\[thrd:[^\]]*\]:\s*")

AUTHORIZATION_CODES: dict[int, str] = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
}
"""Kafka's authorization error codes, and the kind of resource each is about."""

_CODE_TEXTS = {
    "Topic authorization failed": KafkaError.TOPIC_AUTHORIZATION_FAILED,
    "Group authorization failed": KafkaError.GROUP_AUTHORIZATION_FAILED,
    "Transactional Id authorization failed": KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    "Cluster authorization failed": KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}
_ADDPARTS_DENIED = re.compile(r'Failed to add partition "(?P<topic>[^"]+)".*authorization failed')


def authorization_code(error: KafkaError) -> int:
    """``error``'s code, or the authorization code its text names when librdkafka wrapped
    it in a generic fatal error (``_FATAL``: "Fatal error: Broker: Group authorization
    failed: ...")."""
    code = int(error.code())
    if code in AUTHORIZATION_CODES:
        return code
    text = error.str()
    for words, named in _CODE_TEXTS.items():
        if words in text:
            return int(named)
    return code


def _split_event(text: str) -> tuple[str, str]:
    """``(broker address, reason)`` of a librdkafka error string
    ``proto://host:port/id: <reason> (after Nms in state S)``."""
    match = _EVENT.match(text)
    if match is None:
        return "", _AFTER.sub("", text)
    return match["addr"], _AFTER.sub("", match["text"])


def authentication_line(error_text: str, config: Mapping[str, Any]) -> str:
    """The one line that says a SASL authentication failed, for whom, where and why."""
    address, reason = _split_event(error_text)
    reason = reason.removeprefix("SASL authentication error: ")
    user = config.get("sasl.username")
    mechanism = str(config.get("sasl.mechanism", config.get("sasl.mechanisms", "GSSAPI")))
    who = f"for user {user!r} " if user else ""
    where = f" at {address}" if address else ""
    return f"authentication failed {who}(SASL {mechanism.upper()}){where}: {reason}"


def tls_line(error_text: str, config: Mapping[str, Any]) -> str:
    """The one line that says a TLS handshake failed, where and why."""
    address, reason = _split_event(error_text)
    where = f" with {address}" if address else ""
    ca = config.get("ssl.ca.location")
    hint = f" (ssl.ca.location={ca})" if ca else " (ssl.ca.location is not set)"
    return f"TLS handshake{where} failed: {reason}{hint}"


def not_authorized(
    code: int, operation: str, name: str | None = None, *, principal: str | None = None
) -> str | None:
    """``not authorized to <operation> <resource> '<name>' (<CODE>)``, or None when ``code``
    is not an authorization error."""
    resource = AUTHORIZATION_CODES.get(code)
    if resource is None:
        return None
    target = resource if name is None or resource == "cluster" else f"{resource} {name!r}"
    who = f" as {principal}" if principal else ""
    return (
        f"not authorized to {operation} {target}{who} ({KafkaError(code).name()}); "
        "grant the ACL (see docs/security.md)"
    )


def principal_of(config: Mapping[str, Any]) -> str | None:
    """``User:<name>`` for a SASL client configuration, else None."""
    user = config.get("sasl.username")
    return f"User:{user}" if user else None


class ClientErrors:
    """The ``error_cb`` and log sink of one client: what it learns from their events.

    Invariants: :attr:`failure` is None until librdkafka reports an authentication or TLS
    handshake failure; then it holds one line naming the cause and never changes.
    :attr:`denied_topics` lists, in order, the topics a transaction was refused for lack of
    a WRITE ACL (librdkafka names them only in its log). Other errors (a broker down, a
    reconnect) are left to the client's retries: the log lines about them are folded, and
    :attr:`last_connection_error` keeps the latest, for a timeout to say why.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = {k: v for k, v in config.items() if k.startswith(("sasl.", "ssl."))}
        self._lock = threading.Lock()
        self._logger = librdkafka_logger()
        self.failure: str | None = None
        self.denied_topics: list[str] = []
        self.last_connection_error: str | None = None

    def __call__(self, error: KafkaError) -> None:
        """librdkafka's ``error_cb``."""
        code = error.code()
        if code == KafkaError._AUTHENTICATION:
            line = authentication_line(error.str(), self._config)
        elif code == KafkaError._SSL and "handshake failed" in error.str():
            line = tls_line(error.str(), self._config)
        else:
            self._logger.debug("client error: %s (%s)", error.str(), error.name())
            return
        with self._lock:
            if self.failure is None:
                self.failure = line

    def log(self, level: int, msg: str, *args: Any) -> None:
        """librdkafka's log sink (confluent-kafka's ``logger``): forwards to the folded
        ``streamer.librdkafka`` logger, noting topics a transaction was refused."""
        if len(args) == 3 and args[0] == "ADDPARTS":
            match = _ADDPARTS_DENIED.search(str(args[2]))
            if match is not None:
                with self._lock:
                    if match["topic"] not in self.denied_topics:
                        self.denied_topics.append(match["topic"])
        elif len(args) == 3 and "SASL authentication error" in str(args[2]):
            # error_cb reports it too, and the client's next call raises it as one line.
            level = logging.DEBUG
        elif len(args) == 3 and args[0] == "FAIL":
            address, reason = _split_event(_THREAD.sub("", str(args[2]), count=1))
            self.last_connection_error = f"{address}: {reason}" if address else reason
        self._logger.log(level, msg, *args)


def with_diagnostics(config: Mapping[str, Any]) -> tuple[dict[str, Any], ClientErrors]:
    """``config`` with a :class:`ClientErrors` as its ``error_cb`` and log sink (unless it
    has its own), and that :class:`ClientErrors`."""
    errors = ClientErrors(config)
    conf = dict(config)
    conf.setdefault("logger", errors)
    conf.setdefault("error_cb", errors)
    return conf, errors
