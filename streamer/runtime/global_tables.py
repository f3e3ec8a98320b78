"""Global tables: every worker keeps a full copy of each global table's topic.

:class:`GlobalStores` is the part the worker and the test driver share: one key-value store
per global table, and the rule that a row read from a topic goes to every table on that
topic (a tombstone deletes the key; a record without a key is ignored).

:class:`GlobalTables` is the worker's side. At start, each table's store is wiped and the
whole topic is read up to its end before the worker joins the group, so the first record
processed already sees complete reference data. Afterwards, :meth:`GlobalTables.poll`
applies new rows once per loop iteration without blocking, so an update such as unblocking
a merchant takes effect within a poll, for every task of the worker.

Stores live in ``<state_dir>/<app_id>/global-<slot>/<table>``, one per worker process, so
processes on one host never contend for a RocksDB lock.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamer.kafka.types import TP
from streamer.runtime.clients import AdminClient, RestoreConsumerClient
from streamer.state import BytesStore, KeyValueStore, open_store
from streamer.topology.graph import Topology

log = logging.getLogger(__name__)


class GlobalStores:
    """The stores of a topology's global tables; ``open_store(name)`` opens one's bytes."""

    def __init__(self, topology: Topology, open_store: Callable[[str], BytesStore]) -> None:
        self.views: dict[str, KeyValueStore[Any, Any]] = {}
        """Per table name, the typed store that tasks read."""
        self._by_topic: dict[str, list[BytesStore]] = {}
        try:
            for table in topology.global_tables:
                raw = open_store(table.name)
                self._by_topic.setdefault(table.topic, []).append(raw)
                self.views[table.name] = KeyValueStore(raw, table.key_serde, table.value_serde)
        except BaseException:
            self.close()
            raise

    @property
    def topics(self) -> set[str]:
        return set(self._by_topic)

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Apply one row of ``topic`` to every table that reads it."""
        if key is None:
            return
        for store in self._by_topic.get(topic, ()):
            if value is None:
                store.delete(key)
            else:
                store.put(key, value)

    def close(self) -> None:
        for stores in self._by_topic.values():
            for store in stores:
                store.close()
        self._by_topic.clear()


class GlobalTables:
    """A worker's global stores and the consumer that keeps them current."""

    def __init__(
        self,
        topology: Topology,
        directory: Path,
        *,
        consumer: Callable[[], RestoreConsumerClient],
        admin: Callable[[], AdminClient],
    ) -> None:
        self._topology = topology
        self._directory = directory
        self._new_consumer = consumer
        self._admin = admin
        self._consumer: RestoreConsumerClient | None = None
        self._stores: GlobalStores | None = None

    @property
    def views(self) -> dict[str, KeyValueStore[Any, Any]]:
        """Per table name, its store (empty before :meth:`load`)."""
        return {} if self._stores is None else self._stores.views

    def _open_fresh(self, name: str) -> BytesStore:
        path = self._directory / name
        if path.exists():
            shutil.rmtree(path)
        return open_store("rocksdb", name, path)

    def load(self, stop: threading.Event) -> None:
        """Open fresh stores and read every global topic to its end (unless ``stop`` is set)."""
        if not self._topology.global_tables:
            return
        self._stores = GlobalStores(self._topology, self._open_fresh)
        self._consumer = self._new_consumer()
        admin = self._admin()
        pending: set[TP] = set()
        for topic in sorted(self._stores.topics):
            for partition in admin.partitions(topic):
                self._consumer.add((topic, partition), None)
                pending.add((topic, partition))
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
        assert self._stores is not None
        records, at_end = self._consumer.consume(max_records, timeout)
        for message in records:
            self._stores.apply(message.topic(), message.key(), message.value())
        if pending is not None:
            pending.difference_update(at_end)
        return len(records)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._stores is not None:
            self._stores.close()
