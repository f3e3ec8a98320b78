"""The demo's background threads: the transaction producer, and a collector per output
topic (alerts, risk scores, cases).

Each records a failure in ``error`` instead of raising, so the demo's main loop can report
it; each stops when its ``stop()`` is called.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streamer.demo.generator import FraudDataGenerator, GenerationStats
from streamer.kafka.clients import TopicTail, produce_paced


@dataclass
class Received:
    value: dict[str, Any]
    arrived_ms: int
    """Wall-clock time (ms since the epoch) it was read here."""


class TopicCollector(threading.Thread):
    """Reads a JSON topic (committed records only) and timestamps each arrival."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(name=f"{topic}-collector", daemon=True)
        self.tail = TopicTail(bootstrap, topic)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.last_arrival = time.monotonic()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                records = self.tail.poll(max_records=1000, timeout=0.1)
                now_ms = int(time.time() * 1000)
                if not records:
                    continue
                batch = [
                    Received(json.loads(record.value), now_ms)
                    for record in records
                    if record.value is not None
                ]
                with self.lock:
                    self.received.extend(batch)
                    self.last_arrival = time.monotonic()
        except BaseException as exc:
            self.error = exc
        finally:
            self.tail.close()

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def quiet_for(self) -> float:
        with self.lock:
            return time.monotonic() - self.last_arrival

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def latency_ms(alert: Received) -> int:
    """When an alert was read here minus its transaction's ``ts`` (when it was sent)."""
    return alert.arrived_ms - int(alert.value["tx"]["ts"])


class TransactionProducer(threading.Thread):
    """Generates the transactions and produces each at its event time."""

    def __init__(
        self, bootstrap: str, generator: FraudDataGenerator, start_ms: int, topic: str
    ) -> None:
        super().__init__(name="transaction-producer", daemon=True)
        self.bootstrap = bootstrap
        self.generator = generator
        self.start_ms = start_ms
        self.topic = topic
        self.stats = GenerationStats()
        self.truth: dict[str, dict[str, Any]] = {}
        """Ground-truth rows by transaction id, for the transactions generated so far."""
        self.sent = 0
        self.finished_at: float | None = None
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def _records(self) -> Iterator[tuple[int | None, bytes, bytes]]:
        for item in self.generator.transactions(self.start_ms, self.stats):
            tx = item.tx
            self.truth[tx["id"]] = {
                "id": tx["id"],
                "card": tx["card"],
                "ts": tx["ts"],
                "kind": item.kind,
                "attack": item.attack,
            }
            yield tx["ts"], tx["card"].encode(), json.dumps(tx).encode()

    def stop(self) -> None:
        self.stopping.set()
        self.join(40)

    def _progress(self, sent: int) -> None:
        self.sent = sent

    def run(self) -> None:
        try:
            produce_paced(
                self.bootstrap,
                self.topic,
                self._records(),
                stop=self.stopping,
                on_progress=self._progress,
                progress_interval=0.2,
            )
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished_at = time.monotonic()
