"""librdkafka's error events and codes become one clear line each."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from streamer.kafka.diagnostics import (
    ClientErrors,
    authentication_line,
    authorization_code,
    not_authorized,
    tls_line,
    with_diagnostics,
)

SASL_FAILED = (
    "sasl_ssl://127.0.0.1:41421/bootstrap: SASL authentication error: Authentication failed "
    "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 "
    "(after 303ms in state AUTH_REQ)"
)
CONFIG = {"sasl.username": "app", "sasl.mechanism": "SCRAM-SHA-512", "sasl.password": "pw"}


def test_a_failed_authentication_names_user_mechanism_broker_and_reason() -> None:
    assert authentication_line(SASL_FAILED, CONFIG) == (
        "authentication failed for user 'app' (SASL SCRAM-SHA-512) at 127.0.0.1:41421: "
        "Authentication failed during authentication due to invalid credentials with SASL "
        "mechanism SCRAM-SHA-512"
    )


def test_a_failed_tls_handshake_names_the_broker_and_the_ca_file() -> None:
    text = (
        "sasl_ssl://127.0.0.1:33611/bootstrap: SSL handshake failed: certificate verify "
        "failed (after 10ms in state SSL_HANDSHAKE)"
    )
    assert tls_line(text, {"ssl.ca.location": "/ca.pem"}) == (
        "TLS handshake with 127.0.0.1:33611 failed: SSL handshake failed: certificate verify "
        "failed (ssl.ca.location=/ca.pem)"
    )


@pytest.mark.parametrize(
    ("code", "operation", "name", "expected"),
    [
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "WRITE", "out", "WRITE topic 'out'"),
        (KafkaError.GROUP_AUTHORIZATION_FAILED, "READ", "app", "READ group 'app'"),
        (
            KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "WRITE",
            "app-0",
            "WRITE transactional id 'app-0'",
        ),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, "DESCRIBE", "kafka-cluster", "DESCRIBE cluster"),
    ],
)
def test_a_missing_acl_names_operation_and_resource(
    code: int, operation: str, name: str, expected: str
) -> None:
    line = not_authorized(code, operation, name, principal="User:app")
    assert line is not None
    assert line.startswith(f"not authorized to {expected} as User:app (")
    assert KafkaError(code).name() in line
    assert not_authorized(KafkaError.UNKNOWN_TOPIC_OR_PART, "READ", "x") is None


def test_an_authorization_failure_wrapped_in_a_fatal_error_is_recognised() -> None:
    wrapped = KafkaError(
        KafkaError._FATAL,
        "Fatal error: Broker: Group authorization failed: ConsumerGroupHeartbeat fatal error",
    )
    assert authorization_code(wrapped) == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert authorization_code(KafkaError(KafkaError._TRANSPORT)) == KafkaError._TRANSPORT


def test_client_errors_keep_the_first_authentication_or_tls_failure_only() -> None:
    errors = ClientErrors(CONFIG)
    errors(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert errors.failure is None
    errors(KafkaError(KafkaError._AUTHENTICATION, SASL_FAILED))
    first = errors.failure
    assert first is not None
    assert first.startswith("authentication failed for user 'app'")
    errors(KafkaError(KafkaError._SSL, "x:1/1: SSL handshake failed: nope"))
    assert errors.failure == first


def test_the_log_sink_notes_refused_transaction_topics_and_hides_sasl_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conf, errors = with_diagnostics(CONFIG)
    assert conf["logger"] is errors
    assert conf["error_cb"] is errors
    refused = (
        'TxnCoordinator/1: Failed to add partition "out" [0] to transaction: Broker: Topic '
        "authorization failed"
    )
    with caplog.at_level(logging.INFO, logger="streamer.librdkafka"):
        errors.log(logging.ERROR, "%s [%s] %s", "ADDPARTS", "app-0-producer#producer-1", refused)
        errors.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-2", SASL_FAILED)
    assert errors.denied_topics == ["out"]
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
