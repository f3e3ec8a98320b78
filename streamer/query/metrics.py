"""What the console shows that the snapshot does not hold: end-to-end latency.

:class:`LatencyMetrics` is a :class:`~streamer.runtime.metrics.WorkerMetrics` that passes
every call on to another one (Prometheus, or none) and keeps, per polled batch, the
latency of each partition's last record (now minus its timestamp, as the Prometheus
histogram observes it) for ``WINDOW_S`` seconds. The worker's thread adds samples; the
query server's threads read percentiles: a lock guards the samples.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streamer.runtime.metrics import NoopMetrics, WorkerInfo, WorkerMetrics, WorkerSnapshot

if TYPE_CHECKING:
    from streamer.kafka.types import Message

WINDOW_S = 30.0
MAX_SAMPLES = 20_000


class LatencyMetrics:
    """Records end-to-end latency samples, then calls ``inner``."""

    def __init__(self, inner: WorkerMetrics | None = None) -> None:
        self.inner: WorkerMetrics = inner if inner is not None else NoopMetrics()
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)
        self._lock = threading.Lock()

    def client_config(self, client: str) -> Mapping[str, Any]:
        return self.inner.client_config(client)

    def started(self, info: WorkerInfo) -> None:
        self.inner.started(info)

    def batch(self, messages: Sequence[Message], seconds: float) -> None:
        last = {(m.topic(), m.partition()): m for m in messages}
        now = time.time()
        samples = []
        for message in last.values():
            timestamp = message.timestamp()[1]
            if timestamp > 0:
                samples.append((now, max(0.0, now - timestamp / 1000)))
        with self._lock:
            self._samples.extend(samples)
        self.inner.batch(messages, seconds)

    def commit(self, seconds: float) -> None:
        self.inner.commit(seconds)

    def tick(self, snapshot: WorkerSnapshot) -> None:
        self.inner.tick(snapshot)

    def latency(self, now: float | None = None) -> dict[str, float | int | None]:
        """p50 and p99 in seconds over the last ``WINDOW_S`` (None without samples)."""
        cutoff = (time.time() if now is None else now) - WINDOW_S
        with self._lock:
            values = sorted(latency for at, latency in self._samples if at >= cutoff)
        if not values:
            return {"p50": None, "p99": None, "samples": 0}
        return {
            "p50": percentile(values, 0.50),
            "p99": percentile(values, 0.99),
            "samples": len(values),
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of the sorted, non-empty ``ordered``."""
    rank = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))
    return ordered[rank]


__all__ = ["MAX_SAMPLES", "WINDOW_S", "LatencyMetrics", "percentile"]
