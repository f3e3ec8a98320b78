"""The worker: one process, one consumer-group member, one task per owned partition.

:class:`Worker` is what users and the child process hold: configuration, ``run`` and
``request_stop``, and the latest published :class:`~streamer.runtime.metrics.WorkerSnapshot`.
``run`` builds a :class:`WorkerLoop` from its parts and drives it:

* the clients, from a :class:`~streamer.runtime.clients.ClientFactory` (Kafka by default);
* the :class:`~streamer.runtime.task_manager.TaskManager` (tasks and their lifecycle);
* the :class:`~streamer.runtime.restore.StateRestorer` (changelog restore);
* the :class:`~streamer.runtime.commit.CommitProtocol` (positions, transaction, commit order);
* the :class:`~streamer.runtime.global_tables.GlobalTables`.

The loop, one iteration at a time on one thread:

1. poll the group consumer for a batch (rebalance callbacks run inside this call);
2. feed each record to the running task that owns its partition;
3. advance restores and global tables by one batch each (never blocking);
4. fire wall-clock punctuators;
5. every ``commit_interval``, or once the write caches hold ``MAX_DIRTY_KEYS``, commit.

Rebalances: assigned partitions get tasks (restoring ones stay paused); revoked partitions
are committed first, then released cleanly; lost partitions abort the transaction first,
then are released without committing. After a failure nothing is committed again.

Assignment uses Kafka's consumer group protocol (KIP-848) with the broker-side ``range``
assignor: assignments change incrementally (partitions that stay keep processing through a
rebalance) and equal partition numbers of co-partitioned topics go to the same member, which
joins need. ``group_protocol="classic"`` switches to the classic protocol with the
cooperative-sticky assignor, which does not co-locate partitions across topics.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from streamer.runtime.clients import ClientFactory, KafkaClientFactory
from streamer.runtime.config import AppConfig
from streamer.runtime.metrics import (
    SNAPSHOT_INTERVAL_S,
    NoopMetrics,
    WorkerInfo,
    WorkerMetrics,
    WorkerSnapshot,
)
from streamer.runtime.worker_loop import StoreWrapper, WorkerLoop
from streamer.topology.graph import Topology

if TYPE_CHECKING:
    from streamer.runtime.tracing import Tracing

log = logging.getLogger(__name__)

__all__ = ["SNAPSHOT_INTERVAL_S", "Worker"]


class Worker:
    """Runs ``topology`` as one member of the group ``config.app_id``. See module docstring.

    ``metrics`` receives per-batch and per-commit measurements (default: none);
    ``tracing``, when given, records spans and carries trace context in headers;
    ``clients`` builds the Kafka clients (default: :class:`KafkaClientFactory`);
    ``wrap_store`` is given every task store as it is opened and returns the store the task
    uses, so an observer such as the query server can wrap it.
    Constructing a worker connects to nothing: :meth:`run` does.
    """

    def __init__(
        self,
        topology: Topology,
        config: AppConfig,
        *,
        group_protocol: str = "consumer",
        metrics: WorkerMetrics | None = None,
        tracing: Tracing | None = None,
        clients: ClientFactory | None = None,
        wrap_store: StoreWrapper | None = None,
    ) -> None:
        self.topology = topology
        self.config = config
        self.metrics: WorkerMetrics = metrics if metrics is not None else NoopMetrics()
        self.tracing = tracing
        self.clients: ClientFactory = clients or KafkaClientFactory(
            config, group_protocol=group_protocol, client_extras=self.metrics.client_config
        )
        self.info = WorkerInfo(config.app_id, config.slot, config.guarantee.value)
        self._wrap_store = wrap_store
        self._stop = threading.Event()
        self._snapshot = WorkerSnapshot(self.info)

    @property
    def snapshot(self) -> WorkerSnapshot:
        """The latest published state; safe to read from any thread."""
        return self._snapshot

    @property
    def ready(self) -> bool:
        """True once the worker owns tasks and none of them is restoring."""
        return self._snapshot.ready

    def request_stop(self) -> None:
        """Ask the loop to finish its batch, commit, close and leave (signal-safe)."""
        self._stop.set()

    def run(self) -> None:
        """Start, loop until :meth:`request_stop`, then shut down cleanly.

        An exception closes the worker uncleanly (nothing more is committed) and propagates.
        """
        loop = WorkerLoop(
            self.topology,
            self.config,
            clients=self.clients,
            metrics=self.metrics,
            tracing=self.tracing,
            stop=self._stop,
            publish=self._publish,
            wrap_store=self._wrap_store,
        )
        try:
            loop.start()
            while not self._stop.is_set():
                loop.run_once()
            loop.commit()
        except BaseException:
            loop.close(clean=False)
            raise
        loop.close(clean=True)

    def _publish(self, snapshot: WorkerSnapshot) -> None:
        self._snapshot = snapshot
