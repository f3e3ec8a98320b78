"""Global tables: every worker keeps a full copy of each global table's topic.

At start, each table's store is wiped and the whole topic is read up to its end before the
worker joins the group, so the first record processed already sees complete reference data.
Afterwards, :meth:`GlobalTables.poll` applies new rows (and tombstones) once per loop
iteration without blocking, so an update such as unblocking a merchant takes effect within a
poll, for every task of the worker.

Stores live in ``<state_dir>/<app_id>/global-<slot>/<table>``, one per worker process, so
processes on one host never contend for a RocksDB lock.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from streamer.kafka.admin import KafkaAdmin
from streamer.kafka.runtime_clients import TP, RestoreConsumer
from streamer.state import KeyValueStore, open_store
from streamer.topology.graph import Topology

log = logging.getLogger(__name__)


class GlobalTables:
    """The global stores of one worker and the consumer that keeps them current."""

    def __init__(self, topology: Topology, directory: Path) -> None:
        self.stores: dict[str, KeyValueStore[Any, Any]] = {}
        self._by_topic: dict[str, KeyValueStore[Any, Any]] = {}
        self._consumer: RestoreConsumer | None = None
        self._topology = topology
        self._directory = directory

    def load(
        self, consumer_config: dict[str, Any], bootstrap_servers: str, stop: threading.Event
    ) -> None:
        """Open fresh stores and read every global topic to its end (unless ``stop`` is set)."""
        tables = self._topology.global_tables
        if not tables:
            return
        self._consumer = RestoreConsumer(consumer_config)
        for table in tables:
            path = self._directory / table.name
            if path.exists():
                shutil.rmtree(path)
            store = KeyValueStore(
                open_store("rocksdb", table.name, path), table.key_serde, table.value_serde
            )
            self.stores[table.name] = store
            self._by_topic[table.topic] = store
        admin = KafkaAdmin(bootstrap_servers)
        pending: set[TP] = set()
        for table in tables:
            for partition in admin.partitions(table.topic):
                self._consumer.add((table.topic, partition), None)
                pending.add((table.topic, partition))
        ends = self._consumer.end_offsets(pending)
        pending = {tp for tp in pending if ends[tp] > 0}
        loaded = 0
        while pending and not stop.is_set():
            loaded += self._apply(10_000, 0.2, pending)
        log.info("global tables loaded: %d records", loaded)

    def poll(self) -> int:
        """Apply whatever new rows have arrived, without waiting."""
        if self._consumer is None:
            return 0
        return self._apply(1000, 0.0, None)

    def _apply(self, max_records: int, timeout: float, pending: set[TP] | None) -> int:
        assert self._consumer is not None
        records, at_end = self._consumer.consume(max_records, timeout)
        for message in records:
            store = self._by_topic[message.topic()]
            key = message.key()
            if key is None:
                continue
            value = message.value()
            if value is None:
                store.store.delete(key)
            else:
                store.store.put(key, value)
        if pending is not None:
            pending -= at_end
        return len(records)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        for store in self.stores.values():
            store.store.close()
