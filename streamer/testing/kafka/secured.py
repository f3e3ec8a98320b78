"""Users and ACLs on a secured local cluster: what the ``secure_kafka`` fixture hands out.

::

    with LocalKafkaCluster(security=KafkaSecurity()) as cluster:
        kafka = SecuredKafka(cluster)
        app = kafka.create_user("app", acls=app_acls("orders", inputs=["in"], outputs=["out"]))
        conf = {"bootstrap.servers": kafka.bootstrap_servers, **kafka.client_config(app)}

Every user is a SCRAM-SHA-512 user; the admin is a super user and needs no ACLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamer.errors import KafkaHarnessError
from streamer.kafka.acls import Acl, create_acls, delete_acls, upsert_scram_user
from streamer.kafka.admin import KafkaAdmin
from streamer.testing.kafka.cluster import QUIET_CLIENT_CONFIG, LocalKafkaCluster
from streamer.testing.kafka.security import Credentials, new_password


class SecuredKafka:
    """A started :class:`LocalKafkaCluster` with ``security``, seen as a client sees it.

    Invariant: every user this object creates exists on the cluster with the password in
    its :class:`Credentials`, and holds exactly the ACLs granted through this object (and
    not revoked), no more.
    """

    def __init__(self, cluster: LocalKafkaCluster) -> None:
        if cluster.security is None or cluster.tls is None:
            msg = "SecuredKafka needs a started LocalKafkaCluster(security=KafkaSecurity())"
            raise KafkaHarnessError(msg)
        self.cluster = cluster
        self.admin = cluster.security.admin
        self.ca_path: Path = cluster.tls.ca_path
        self._client: Any = None

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    @property
    def kafka_admin(self) -> KafkaAdmin:
        """streamer's admin wrapper, as the admin (to create topics, read offsets)."""
        return self.cluster.admin

    def client_config(self, user: Credentials | None = None) -> dict[str, Any]:
        """librdkafka settings to connect as ``user`` (default: the admin), without
        ``bootstrap.servers``."""
        return self.cluster.client_config(user)

    def config(self, user: Credentials | None = None) -> dict[str, Any]:
        """``bootstrap.servers`` and :meth:`client_config`: a whole client configuration."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.client_config(user)}

    def create_user(
        self, username: str, password: str | None = None, *, acls: Iterable[Acl] = ()
    ) -> Credentials:
        """Create (or reset the password of) a SCRAM user, grant it ``acls``, return it."""
        user = Credentials(username, password or new_password())
        upsert_scram_user(self._admin_client(), user.username, user.password)
        self.grant(user, acls)
        return user

    def grant(self, user: Credentials, acls: Iterable[Acl]) -> None:
        create_acls(self._admin_client(), user.principal, acls)

    def revoke(self, user: Credentials, acls: Iterable[Acl]) -> None:
        delete_acls(self._admin_client(), user.principal, acls)

    def _admin_client(self) -> Any:
        if self._client is None:
            config = {**self.client_config(), **QUIET_CLIENT_CONFIG}
            self._client = KafkaAdmin(self.bootstrap_servers, config=config).client
        return self._client

    def __repr__(self) -> str:
        return f"SecuredKafka({self.bootstrap_servers}, admin={self.admin.username})"
