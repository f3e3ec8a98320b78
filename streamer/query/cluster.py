"""The cluster as the query server sees it: partition counts, the group, lag, last records.

One :class:`KafkaClusterView` per server, built on first use (so a server starts without
waiting for the cluster) and shared by its threads. Lag is collected at most every
``LAG_TTL_S`` seconds whatever the number of consoles polling it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from streamer.kafka.clients import ConsumedRecord
from streamer.kafka.groups import GroupDescription
from streamer.ops.apps import QUIET_CLIENT_CONFIG, Cluster
from streamer.ops.lag import collect_lag
from streamer.runtime.config import AppConfig
from streamer.topology.graph import Topology

LAG_TTL_S = 2.0


class KafkaClusterView:
    """Admin reads of the app's cluster, with the worker's own client settings."""

    def __init__(self, config: AppConfig, topology: Topology) -> None:
        self._config = config
        self._topology = topology
        self._settings: Mapping[str, Any] = {**config.kafka_config, **config.admin_config}
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._lag: dict[str, Any] | None = None
        self._lag_at = 0.0

    def _get(self) -> Cluster:
        with self._lock:
            if self._cluster is None:
                self._cluster = Cluster(
                    self._config.bootstrap_servers, config=self._settings, timeout=10.0
                )
            return self._cluster

    def partition_count(self, topic: str) -> int:
        return len(self._get().admin.partitions(topic))

    def describe_group(self) -> GroupDescription:
        return self._get().groups.describe_group(self._config.app_id)

    def lag(self) -> dict[str, Any]:
        """``streamer lag --json``'s report, at most ``LAG_TTL_S`` old."""
        now = time.monotonic()
        with self._lock:
            if self._lag is not None and now - self._lag_at < LAG_TTL_S:
                return self._lag
        report = collect_lag(self._get(), self._config.app_id, self._topology).to_json()
        with self._lock:
            self._lag, self._lag_at = report, now
        return report

    def last_records(self, topic: str, count: int) -> list[ConsumedRecord]:
        from streamer.kafka.tail import last_records

        settings = {**QUIET_CLIENT_CONFIG, **self._config.kafka_config}
        settings.update(self._config.consumer_config)
        return last_records(self._config.bootstrap_servers, topic, count, config=settings)


__all__ = ["LAG_TTL_S", "KafkaClusterView"]
