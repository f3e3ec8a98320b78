"""Operation counts and latencies for a store, through a small :class:`StoreMetrics` hook.

:class:`MeteredStore` wraps any :class:`~streamer.state.base.BytesStore` (typically the
:class:`~streamer.state.cache.CachingStore`) and reports each call to ``metrics.record``
after the call returns, whether it succeeded or raised. Operation names are the method names:
``get``, ``put``, ``delete``, ``range``, ``prefix``, ``write_batch``, ``flush``. For ``range``
and ``prefix`` the time measured is opening the iterator, not consuming it.

This module imports no metrics library: the runtime adapts :class:`StoreMetrics` to
Prometheus or OpenTelemetry. The default, :class:`NoopMetrics`, records nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from time import perf_counter
from typing import Protocol

from streamer.state.base import BytesStore


class StoreMetrics(Protocol):
    """Receives one call per store operation."""

    def record(self, store: str, operation: str, seconds: float) -> None: ...


class NoopMetrics:
    """Records nothing."""

    def record(self, store: str, operation: str, seconds: float) -> None:
        return None


class CountingMetrics:
    """Keeps counts and total seconds per ``(store, operation)`` in memory (tests, debugging)."""

    def __init__(self) -> None:
        self.counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)

    def record(self, store: str, operation: str, seconds: float) -> None:
        self.counts[store, operation] += 1
        self.seconds[store, operation] += seconds


class MeteredStore:
    """A :class:`BytesStore` that forwards every call to ``inner`` and times it."""

    def __init__(self, inner: BytesStore, metrics: StoreMetrics | None = None) -> None:
        self._inner = inner
        self._metrics: StoreMetrics = metrics if metrics is not None else NoopMetrics()

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def inner(self) -> BytesStore:
        return self._inner

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    def _record(self, operation: str, began: float) -> None:
        self._metrics.record(self._inner.name, operation, perf_counter() - began)

    def get(self, key: bytes) -> bytes | None:
        began = perf_counter()
        try:
            return self._inner.get(key)
        finally:
            self._record("get", began)

    def put(self, key: bytes, value: bytes) -> None:
        began = perf_counter()
        try:
            self._inner.put(key, value)
        finally:
            self._record("put", began)

    def delete(self, key: bytes) -> None:
        began = perf_counter()
        try:
            self._inner.delete(key)
        finally:
            self._record("delete", began)

    def range(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        began = perf_counter()
        try:
            return self._inner.range(start, end, reverse=reverse)
        finally:
            self._record("range", began)

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        began = perf_counter()
        try:
            return self._inner.prefix(prefix)
        finally:
            self._record("prefix", began)

    def write_batch(self, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        began = perf_counter()
        try:
            self._inner.write_batch(entries)
        finally:
            self._record("write_batch", began)

    def approximate_size(self) -> int:
        return self._inner.approximate_size()

    def flush(self) -> None:
        began = perf_counter()
        try:
            self._inner.flush()
        finally:
            self._record("flush", began)

    def close(self) -> None:
        self._inner.close()

    def __repr__(self) -> str:
        return f"MeteredStore({self._inner!r})"


__all__ = ["CountingMetrics", "MeteredStore", "NoopMetrics", "StoreMetrics"]
