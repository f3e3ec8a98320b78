"""A secured test cluster: a SASL_SSL listener with SCRAM users, TLS and ACLs.

:class:`KafkaSecurity` says how a :class:`~streamer.testing.kafka.cluster.LocalKafkaCluster`
is secured; the functions here turn it into broker settings, ``kafka-storage format``
arguments and librdkafka client settings.

The broker listener is ``SASL_SSL`` (SCRAM-SHA-512 over TLS, with a CA and server
certificate made at start, see :mod:`streamer.testing.kafka.tls`); the controller listener
stays PLAINTEXT on loopback. The KRaft ``StandardAuthorizer`` checks every request, and a
resource without ACLs is denied (``allow.everyone.if.no.acl.found=false``). Super users:
the admin, and ``User:ANONYMOUS``, the principal of the PLAINTEXT controller listener, so
that brokers and controllers can talk to each other; clients never reach that listener's
principal, since the client listener always authenticates.

Passwords never appear on a command line: the admin's SCRAM credential is given to
``kafka-storage format`` as a salt and salted password, and the broker reads its own
password from ``server.properties`` (written readable by its owner only).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamer.testing.kafka.tls import TlsFiles

LISTENER = "SASL_SSL"
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 4096
"""The smallest count Kafka accepts for SCRAM-SHA-512: users are made often in tests."""
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def new_password() -> str:
    """A random password (URL-safe characters only: no quoting needed anywhere)."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Credentials:
    """A SCRAM user name and password."""

    username: str
    password: str = field(repr=False)

    @property
    def principal(self) -> str:
        """The principal ACLs name: ``User:<username>``."""
        return f"User:{self.username}"


@dataclass(frozen=True)
class KafkaSecurity:
    """How a local cluster is secured: SASL_SSL, SCRAM-SHA-512, TLS and ACLs.

    ``admin`` is a super user, created when the storage is formatted; the brokers also use
    it among themselves. ``users`` are further SCRAM users created at format time (more can
    be added while the cluster runs, see ``LocalKafkaCluster.create_user``). Passwords are
    random unless given.
    """

    admin: Credentials = field(default_factory=lambda: Credentials("admin", new_password()))
    users: tuple[Credentials, ...] = ()

    @property
    def mechanism(self) -> str:
        return MECHANISM


def scram_format_argument(user: Credentials, *, salt: bytes | None = None) -> str:
    """The ``--add-scram`` value for ``user``: a salt and salted password (PBKDF2 over
    SHA-512, as SCRAM-SHA-512 stores it), so the password itself is on no command line."""
    salt = salt if salt is not None else secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", user.password.encode("utf-8"), salt, SCRAM_ITERATIONS)
    return (
        f"{MECHANISM}=[name={user.username},"
        f'salt="{base64.b64encode(salt).decode("ascii")}",'
        f'saltedpassword="{base64.b64encode(salted).decode("ascii")}",'
        f"iterations={SCRAM_ITERATIONS}]"
    )


def format_arguments(security: KafkaSecurity) -> list[str]:
    """Extra ``kafka-storage format`` arguments: one ``--add-scram`` per initial user."""
    args: list[str] = []
    for user in (security.admin, *security.users):
        args += ["--add-scram", scram_format_argument(user)]
    return args


def broker_settings(security: KafkaSecurity, tls: TlsFiles) -> dict[str, str]:
    """Broker settings of the SASL_SSL listener, its TLS files and the authorizer."""
    admin = security.admin
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin.username}" password="{admin.password}";'
    )
    prefix = f"listener.name.{LISTENER.lower()}"
    return {
        "listener.security.protocol.map": f"{LISTENER}:{LISTENER},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": LISTENER,
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"{prefix}.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.keystore_path),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_path),
        "ssl.client.auth": "none",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin.username};User:ANONYMOUS",
    }


def client_settings(user: Credentials, ca_path: str) -> dict[str, Any]:
    """librdkafka settings to connect as ``user``: SASL_SSL, SCRAM-SHA-512, the test CA
    (host names are verified: the certificate names 127.0.0.1 and localhost)."""
    return {
        "security.protocol": LISTENER,
        "sasl.mechanism": MECHANISM,
        "sasl.username": user.username,
        "sasl.password": user.password,
        "ssl.ca.location": ca_path,
    }


def redact(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with every password replaced by ``***`` (for logs and reprs)."""
    return {k: "***" if "password" in k else v for k, v in settings.items()}
