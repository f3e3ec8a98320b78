"""The ACLs a streamer app needs on a cluster that enforces them, as plain data.

:func:`app_acls` lists what a worker group calls (docs/security.md explains each line and
shows the same list as ``kafka-acls`` commands and AdminClient calls; a unit test keeps the
page and this module equal). :func:`ops_acls` adds what ``streamer lag``, ``replay`` and
``reset`` need beyond that. :class:`Acl` renders as a ``kafka-acls`` argument list or as a
confluent-kafka ``AclBinding``; :func:`create_acls`, :func:`delete_acls` and
:func:`upsert_scram_user` apply them with an admin client.

The functions that talk to Kafka take a confluent-kafka ``AdminClient``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streamer.kafka.admin import KafkaAdminError

RESOURCES = ("topic", "group", "transactional-id", "cluster")
OPERATIONS = (
    "READ",
    "WRITE",
    "CREATE",
    "DELETE",
    "ALTER",
    "DESCRIBE",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
)
CLUSTER_NAME = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Acl:
    """Allow ``operation`` on one resource: a ``topic``, ``group``, ``transactional-id``
    (``name`` exactly, or every name starting with it when ``prefixed``) or the ``cluster``.

    Invariant: ``resource`` is one of :data:`RESOURCES` and ``operation`` one of
    :data:`OPERATIONS`; the cluster's name is always ``kafka-cluster``.
    """

    resource: str
    name: str
    operation: str
    prefixed: bool = False

    def __post_init__(self) -> None:
        if self.resource not in RESOURCES:
            msg = f"unknown ACL resource {self.resource!r}; one of {', '.join(RESOURCES)}"
            raise ValueError(msg)
        if self.operation not in OPERATIONS:
            msg = f"unknown ACL operation {self.operation!r}; one of {', '.join(OPERATIONS)}"
            raise ValueError(msg)

    def binding(self, principal: str, host: str = "*") -> Any:
        """This ACL for ``principal`` (``User:<name>``) as a confluent-kafka ``AclBinding``."""
        from confluent_kafka.admin import (  # type: ignore[attr-defined]
            AclBinding,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        kind = "BROKER" if self.resource == "cluster" else self.resource.upper().replace("-", "_")
        pattern = ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL
        return AclBinding(
            ResourceType[kind],
            self.name,
            pattern,
            principal,
            host,
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )


def _cli_operation(operation: str) -> str:
    return "".join(word.capitalize() for word in operation.split("_"))


def kafka_acls_lines(principal: str, acls: Iterable[Acl]) -> list[str]:
    """The ``kafka-acls --add`` arguments that grant ``acls``, one line per resource
    (operations on one resource share a line), in the order the resources first appear."""
    by_resource: dict[tuple[str, str, bool], list[str]] = {}
    for acl in acls:
        ops = by_resource.setdefault((acl.resource, acl.name, acl.prefixed), [])
        if acl.operation not in ops:
            ops.append(acl.operation)
    lines = []
    for (resource, name, prefixed), ops in by_resource.items():
        target = "--cluster" if resource == "cluster" else f"--{resource} {name}"
        if prefixed:
            target += " --resource-pattern-type prefixed"
        operations = " ".join(f"--operation {_cli_operation(op)}" for op in ops)
        lines.append(f"--add --allow-principal {principal} {operations} {target}")
    return lines


def app_acls(
    app_id: str,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    exactly_once: bool = True,
    internal_prefix: str | None = None,
) -> list[Acl]:
    """What a worker group of ``app_id`` calls, and nothing more (see docs/security.md).

    ``inputs``: the user topics it reads (streams and global tables); ``outputs``: the user
    topics it writes. Internal topics (repartition, changelog, dead-letter) start with
    ``<internal_prefix or app_id>-``; transactional ids with ``<app_id>-``. DESCRIBE is not
    listed: Kafka implies it from READ, WRITE and DELETE, and IDEMPOTENT_WRITE on the
    cluster from WRITE on any topic.
    """
    prefix = f"{internal_prefix or app_id}-"
    acls = [Acl("topic", t, "READ") for t in inputs]
    acls += [Acl("topic", t, "WRITE") for t in outputs]
    acls += [
        Acl("topic", prefix, op, prefixed=True)
        for op in ("CREATE", "READ", "WRITE", "DESCRIBE_CONFIGS", "DELETE")
    ]
    acls.append(Acl("group", app_id, "READ"))
    if exactly_once:
        acls.append(Acl("transactional-id", f"{app_id}-", "WRITE", prefixed=True))
    return acls


def ops_acls(app_id: str) -> list[Acl]:
    """What ``streamer lag``, ``replay`` and ``reset`` need beyond :func:`app_acls`: only
    ``reset`` deletes the group. (``lag`` and ``replay`` describe the group and its topics,
    change its offsets, and delete and create changelogs: :func:`app_acls` covers that.)"""
    return [Acl("group", app_id, "DELETE")]


def create_acls(admin: Any, principal: str, acls: Iterable[Acl], *, timeout: float = 30.0) -> None:
    """Grant ``acls`` to ``principal`` with the confluent-kafka ``AdminClient`` ``admin``;
    returns once the broker that answers ``DescribeAcls`` lists them all."""
    wanted = set(acls)
    if wanted:
        futures = admin.create_acls([a.binding(principal) for a in wanted], request_timeout=timeout)
        _wait_all(futures.values(), f"granting ACLs to {principal}", timeout)
        _wait_described(admin, principal, lambda held: wanted <= held, timeout)


def delete_acls(admin: Any, principal: str, acls: Iterable[Acl], *, timeout: float = 30.0) -> None:
    """Revoke ``acls`` from ``principal`` (each binding, exactly); returns once the broker
    that answers ``DescribeAcls`` lists none of them."""
    from confluent_kafka.admin import AclBindingFilter  # type: ignore[attr-defined]

    unwanted = set(acls)
    filters = []
    for acl in unwanted:
        b = acl.binding(principal)
        filters.append(
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
        )
    if filters:
        futures = admin.delete_acls(filters, request_timeout=timeout)
        _wait_all(futures.values(), f"revoking ACLs of {principal}", timeout)
        _wait_described(admin, principal, lambda held: not unwanted & held, timeout)


def described_acls(admin: Any, principal: str, *, timeout: float = 10.0) -> set[Acl]:
    """The ALLOW ACLs of ``principal`` that the answering broker knows."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    anything: Any = None  # a filter matches any name and host given None
    query = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        principal,
        anything,
        AclOperation.ANY,
        AclPermissionType.ALLOW,
    )
    try:
        bindings = admin.describe_acls(query, request_timeout=timeout).result(timeout=timeout)
    except Exception as exc:  # KafkaException, or a plain one on timeouts
        msg = f"describing the ACLs of {principal} failed: {exc}"
        raise KafkaAdminError(msg) from exc
    return {
        Acl(
            "cluster" if b.restype.name == "BROKER" else b.restype.name.lower().replace("_", "-"),
            b.name,
            b.operation.name,
            prefixed=b.resource_pattern_type.name == "PREFIXED",
        )
        for b in bindings
    }


def _wait_described(
    admin: Any, principal: str, done: Callable[[set[Acl]], bool], timeout: float
) -> None:
    """Ask ``DescribeAcls`` until ``done`` holds: a created ACL reaches the brokers' own
    authorizers through the metadata log, a moment after the controller accepted it."""
    deadline = time.monotonic() + timeout
    while not done(described_acls(admin, principal)):
        if time.monotonic() >= deadline:
            msg = f"the ACLs of {principal} did not reach the brokers within {timeout:.0f} s"
            raise KafkaAdminError(msg)
        time.sleep(0.05)


def upsert_scram_user(
    admin: Any, username: str, password: str, *, iterations: int = 4096, timeout: float = 30.0
) -> None:
    """Create ``username`` (or set its password) as a SCRAM-SHA-512 user."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations)
    upsert = UserScramCredentialUpsertion(username, info, password.encode("utf-8"))
    futures = admin.alter_user_scram_credentials([upsert], request_timeout=timeout)
    _wait_all(futures.values(), f"setting the SCRAM credential of {username!r}", timeout)


def _wait_all(futures: Iterable[Any], what: str, timeout: float) -> None:
    errors = []
    for future in futures:
        try:
            future.result(timeout=timeout)
        except Exception as exc:  # KafkaException, or a plain one on timeouts
            errors.append(str(exc.args[0] if exc.args else exc))
    if errors:
        msg = f"{what} failed: {'; '.join(errors)}"
        raise KafkaAdminError(msg)
