"""A local Kafka KRaft cluster (1 or more combined broker/controller nodes) on loopback."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from streamer.errors import KafkaHarnessError
from streamer.kafka.admin import KafkaAdmin, KafkaAdminError
from streamer.testing.kafka.config import allocate_nodes, random_cluster_id
from streamer.testing.kafka.jars import (
    check_java_version,
    find_java,
    kafka_version,
    resolve_broker_jars,
)
from streamer.testing.kafka.node import DEFAULT_JVM_OPTS, KafkaNode
from streamer.testing.kafka.security import (
    LISTENER,
    Credentials,
    KafkaSecurity,
    broker_settings,
    client_settings,
    format_arguments,
)
from streamer.testing.kafka.tls import TlsFiles, make_tls_files

log = logging.getLogger(__name__)

# Clusters started by this interpreter (not detached): stopped, and their temporary data
# removed, when it exits.
_LIVE_CLUSTERS: weakref.WeakSet[LocalKafkaCluster] = weakref.WeakSet()


def _stop_live_clusters() -> None:
    for cluster in list(_LIVE_CLUSTERS):
        cluster.stop(timeout=0)


atexit.register(_stop_live_clusters)

# Per-node settings that make failure detection quick in small test clusters.
FAST_FAILOVER_CONFIG: dict[str, str] = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "5000",
}

QUIET_CLIENT_CONFIG: dict[str, Any] = {"log_level": 2, "log.connection.close": False}


class LocalKafkaCluster:
    """``brokers`` Kafka nodes started from Maven-resolved jars, listening on 127.0.0.1.

    Every node is both broker and controller (KRaft, static voters). ``data_dir`` holds one
    ``node-<id>`` directory per node; by default it is a temporary directory that is removed
    by :meth:`stop`. A given ``data_dir`` is kept (its ``node-*`` directories are wiped at
    each :meth:`start`). ``broker_config`` overrides broker settings on every node.
    ``jvm_opts`` replaces the JVM options (default: quick start-up, see ``DEFAULT_JVM_OPTS``;
    ``$STREAMER_KAFKA_JVM_OPTS`` still comes last).

    ``detached=True`` lets the brokers outlive this Python process (used by ``streamer
    broker up``); otherwise they are killed when the interpreter exits.

    ``security`` secures the client listener (SASL_SSL with SCRAM users, TLS certificates
    made at start, ACLs enforced; see :mod:`streamer.testing.kafka.security`). Clients then
    need :meth:`client_config`; :class:`~streamer.testing.kafka.secured.SecuredKafka`
    creates users and grants ACLs.
    """

    def __init__(
        self,
        brokers: int = 1,
        *,
        data_dir: Path | None = None,
        jars_dir: Path | None = None,
        broker_config: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        detached: bool = False,
        jvm_opts: Sequence[str] = DEFAULT_JVM_OPTS,
        security: KafkaSecurity | None = None,
    ) -> None:
        if brokers < 1:
            msg = f"a cluster needs at least one broker, not {brokers}"
            raise KafkaHarnessError(msg)
        self.brokers = brokers
        self.start_timeout = start_timeout
        self.detached = detached
        self.broker_config = {**FAST_FAILOVER_CONFIG, **(broker_config or {})}
        self.jvm_opts = tuple(jvm_opts)
        self.security = security
        self.tls: TlsFiles | None = None
        self._given_data_dir = data_dir
        self._jars_dir = jars_dir
        self._data_dir: Path | None = None
        self.keep_data = data_dir is not None
        self.cluster_id: str | None = None
        self.nodes: list[KafkaNode] = []
        self._admin: KafkaAdmin | None = None
        self.started_in: float | None = None

    # -- properties -------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        """``host:port,...`` of every node; raises if the cluster has not been started."""
        if not self.nodes:
            msg = "the Kafka cluster is not started"
            raise KafkaHarnessError(msg)
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            msg = "the Kafka cluster is not started"
            raise KafkaHarnessError(msg)
        return self._data_dir

    @property
    def admin(self) -> KafkaAdmin:
        """An admin client (the super user on a secured cluster)."""
        if self._admin is None:
            # Quiet: connection refusals are expected while nodes start or restart.
            self._admin = KafkaAdmin(
                self.bootstrap_servers, config={**QUIET_CLIENT_CONFIG, **self.client_config()}
            )
        return self._admin

    def client_config(self, user: Credentials | None = None) -> dict[str, Any]:
        """librdkafka settings (besides ``bootstrap.servers``) to connect as ``user``: none
        on a plain cluster; on a secured one SASL_SSL as ``user``, by default the admin."""
        if self.security is None:
            return {}
        if self.tls is None:
            msg = "the Kafka cluster is not started"
            raise KafkaHarnessError(msg)
        return client_settings(user or self.security.admin, str(self.tls.ca_path))

    @property
    def is_running(self) -> bool:
        return bool(self.nodes) and all(node.is_running for node in self.nodes)

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self.nodes else "not started"
        secured = ", SASL_SSL" if self.security is not None else ""
        return f"LocalKafkaCluster(brokers={self.brokers}, {where}{secured})"

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> LocalKafkaCluster:
        """Resolve jars, format storage, start every node and wait until all are listed in
        the cluster metadata. Retries once with new ports if a port was taken meanwhile."""
        if self.nodes:
            return self
        started = time.monotonic()
        jars_dir = self._jars_dir or resolve_broker_jars()
        java = find_java()
        check_java_version(java)
        if self._given_data_dir is not None:
            self._data_dir = self._given_data_dir.resolve()
            self._data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._data_dir = Path(tempfile.mkdtemp(prefix="streamer-kafka-"))
        if self.security is not None:
            self.tls = make_tls_files(self._data_dir / "tls")
        log.info(
            "starting %d Kafka %s node(s) in %s", self.brokers, kafka_version(), self._data_dir
        )
        for attempt in (1, 2):
            self._create_nodes(jars_dir, java)
            try:
                self._format_all()
                for node in self.nodes:
                    node.start()
                self._wait_ready(self.nodes, self.start_timeout)
            except KafkaHarnessError:
                retry = attempt == 1 and any(node.failed_to_bind() for node in self.nodes)
                self._kill_all()
                if retry:
                    log.info("a Kafka port was taken while starting; retrying with new ports")
                    continue
                self.nodes = []
                self._cleanup_data()
                raise
            break
        self.started_in = time.monotonic() - started
        if not self.detached:
            _LIVE_CLUSTERS.add(self)
        log.info("Kafka ready at %s (%.1f s)", self.bootstrap_servers, self.started_in)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node and remove a temporary data directory.

        Nodes whose data is kept get SIGTERM, then SIGKILL after ``timeout``; nodes whose
        data is thrown away are killed at once (a clean shutdown of a KRaft quorum takes
        seconds and buys nothing then).
        """
        _LIVE_CLUSTERS.discard(self)
        if not self.keep_data:
            self._kill_all()
        for node in self.nodes:
            node.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if not node.wait_stopped(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "Kafka node %s did not stop in %.0f s; killing it", node.node_id, timeout
                )
                node.kill()
        self._cleanup_data()

    def __enter__(self) -> LocalKafkaCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- failures ---------------------------------------------------------------------
    def node(self, index: int) -> KafkaNode:
        try:
            return self.nodes[index]
        except IndexError:
            msg = f"no broker #{index}: the cluster has {len(self.nodes)} node(s)"
            raise KafkaHarnessError(msg) from None

    def kill_broker(self, index: int) -> KafkaNode:
        """SIGKILL node ``index`` (0-based position in :attr:`nodes`)."""
        node = self.node(index)
        node.kill()
        return node

    def stop_broker(self, index: int, timeout: float = 10.0) -> KafkaNode:
        node = self.node(index)
        node.stop(timeout)
        return node

    def restart_broker(self, index: int, timeout: float | None = None) -> KafkaNode:
        """(Re)start node ``index`` and wait until the metadata lists it again."""
        node = self.node(index)
        node.restart()
        self._wait_ready([node], timeout or self.start_timeout)
        return node

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Wait until every node runs and is listed in the metadata."""
        self._wait_ready(self.nodes, timeout or self.start_timeout)

    # -- logs and state ---------------------------------------------------------------
    def log_paths(self) -> list[Path]:
        return [node.log_path for node in self.nodes]

    def keep_logs_to(self, dest: Path) -> Path:
        """Copy every node's log files and config into ``dest/node-<id>/``."""
        dest.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            target = dest / f"node-{node.node_id}"
            target.mkdir(exist_ok=True)
            if node.logs_dir.is_dir():
                shutil.copytree(node.logs_dir, target, dirs_exist_ok=True)
            if node.properties_path.is_file():
                shutil.copy2(node.properties_path, target / "server.properties")
        return dest

    def state(self) -> dict[str, Any]:
        """A JSON-serialisable description (pids, ports, paths) of the running cluster."""
        return {
            "kafka_version": kafka_version(),
            "cluster_id": self.cluster_id,
            "data_dir": str(self.data_dir),
            "bootstrap_servers": self.bootstrap_servers,
            "nodes": [
                {
                    "node_id": node.node_id,
                    "pid": node.pid,
                    "port": node.spec.port,
                    "controller_port": node.spec.controller_port,
                    "node_dir": str(node.node_dir),
                    "log_path": str(node.log_path),
                }
                for node in self.nodes
            ],
        }

    # -- internals --------------------------------------------------------------------
    def _create_nodes(self, jars_dir: Path, java: str) -> None:
        specs = allocate_nodes(self.brokers)
        self.cluster_id = random_cluster_id()
        self._admin = None
        self.nodes = []
        overrides = dict(self.broker_config)
        listener, format_args = "PLAINTEXT", []
        if self.security is not None and self.tls is not None:
            overrides = {**broker_settings(self.security, self.tls), **overrides}
            listener, format_args = LISTENER, format_arguments(self.security)
        for spec in specs:
            node_dir = self.data_dir / f"node-{spec.node_id}"
            if node_dir.exists():
                shutil.rmtree(node_dir)
            self.nodes.append(
                KafkaNode(
                    spec,
                    voters=specs,
                    cluster_id=self.cluster_id,
                    node_dir=node_dir,
                    jars_dir=jars_dir,
                    java=java,
                    config_overrides=overrides,
                    detached=self.detached,
                    jvm_opts=self.jvm_opts,
                    listener=listener,
                    format_args=format_args,
                )
            )

    def _format_all(self) -> None:
        # One JVM per node, in parallel: formatting is mostly JVM start-up time.
        procs = [(node, node.start_format()) for node in self.nodes]
        for node, proc in procs:
            node.finish_format(proc)

    def _wait_ready(self, nodes: list[KafkaNode], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        wanted = {node.node_id for node in nodes}
        last = "no metadata answer yet"
        while True:
            for node in nodes:
                if not node.is_running:
                    msg = f"Kafka node {node.node_id} stopped while starting.\n"
                    raise KafkaHarnessError(msg + node.describe_failure())
            try:
                listed = self.admin.broker_ids(timeout=1.0)
            except KafkaAdminError as exc:
                last = str(exc)
            else:
                if wanted <= listed:
                    return
                last = f"metadata lists brokers {sorted(listed)}, waiting for {sorted(wanted)}"
            if time.monotonic() >= deadline:
                details = "\n".join(node.describe_failure() for node in nodes)
                msg = f"Kafka not ready after {timeout:.0f} s ({last}).\n{details}"
                raise KafkaHarnessError(msg)
            time.sleep(0.2)

    def _kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def _cleanup_data(self) -> None:
        if self._data_dir is not None and not self.keep_data:
            shutil.rmtree(self._data_dir, ignore_errors=True)
