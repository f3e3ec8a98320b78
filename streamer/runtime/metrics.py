"""The worker's metrics hook: a small protocol with a no-op default.

The worker calls it at a few points only, never per record:

* :meth:`WorkerMetrics.client_config` when it creates its group consumer (``"consumer"``)
  and producer (``"producer"``): settings merged into theirs, such as librdkafka's
  ``statistics.interval.ms`` and ``stats_cb`` (the callback runs inside the client's poll,
  on the worker's thread);
* :meth:`WorkerMetrics.started` once, when its clients exist (so an implementation can read
  the worker's state later);
* :meth:`WorkerMetrics.batch` once per polled batch that had records, with the batch and
  the seconds it took to process;
* :meth:`WorkerMetrics.commit` after each successful commit, with its duration;
* :meth:`WorkerMetrics.tick` once per loop iteration, where an implementation can refresh
  gauges from the worker's state at its own pace (it must return quickly).

:class:`streamer.runtime.prometheus.PrometheusMetrics` serves them to Prometheus. Tests
and the test driver need nothing: :class:`NoopMetrics` is the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from streamer.kafka.runtime_clients import Message
    from streamer.runtime.worker import Worker


class WorkerMetrics(Protocol):
    def client_config(self, client: str) -> Mapping[str, Any]: ...

    def started(self, worker: Worker) -> None: ...

    def batch(self, messages: Sequence[Message], seconds: float) -> None: ...

    def commit(self, seconds: float) -> None: ...

    def tick(self) -> None: ...


class NoopMetrics:
    """Records nothing."""

    def client_config(self, client: str) -> Mapping[str, Any]:
        return {}

    def started(self, worker: Worker) -> None:
        return None

    def batch(self, messages: Sequence[Message], seconds: float) -> None:
        return None

    def commit(self, seconds: float) -> None:
        return None

    def tick(self) -> None:
        return None


__all__ = ["NoopMetrics", "WorkerMetrics"]
