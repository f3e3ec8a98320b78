"""Deleting repartition records that the group has committed.

Repartition topics keep records forever (``retention.ms=-1``): their records carry the
input's event time, and time retention would delete old event times before they are read.
They are emptied from the other end instead. After a commit, every record of a repartition
partition below the committed offset is processed for good (under exactly-once its effects
committed in the same transaction), so the worker deletes those records with the admin
API's DeleteRecords, at most once per ``interval`` and without waiting for the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from streamer.kafka.types import TP

log = logging.getLogger(__name__)


class RecordDeleter(Protocol):
    def submit_delete_records(self, before: Mapping[TP, int]) -> Mapping[Any, Any]:
        """Start deleting records below the given offsets; futures per partition."""
        ...


class RepartitionPurger:
    """Tracks committed offsets of repartition partitions and deletes the records below them.

    Invariant: an offset is only ever handed over after the commit that covers it succeeded,
    and only offsets above those already requested are sent again.
    """

    def __init__(
        self,
        deleter: RecordDeleter,
        topics: Iterable[str],
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deleter = deleter
        self._topics = frozenset(topics)
        self._interval = interval
        self._clock = clock
        self._pending: dict[TP, int] = {}
        self._requested: dict[TP, int] = {}
        self._last = clock()
        self.failures = 0

    def committed(self, offsets: Mapping[TP, int]) -> None:
        """Note offsets that were just committed; send a request when ``interval`` passed."""
        for tp, offset in offsets.items():
            if tp[0] in self._topics and offset > self._requested.get(tp, 0):
                self._pending[tp] = offset
        if self._pending and self._clock() - self._last >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Send the pending deletions now (also called once at shutdown)."""
        self._last = self._clock()
        if not self._pending:
            return
        before, self._pending = self._pending, {}
        self._requested.update(before)
        try:
            futures = self._deleter.submit_delete_records(before)
        except Exception as exc:  # purging is housekeeping: log and go on
            self._failed(before, exc)
            return
        for tp, future in futures.items():
            future.add_done_callback(lambda f, tp=tp: self._done(tp, f))

    def _done(self, tp: Any, future: Any) -> None:
        exc = future.exception()
        if exc is not None:
            self._failed({(tp.topic, tp.partition): tp.offset}, exc)

    def _failed(self, before: Mapping[TP, int], exc: BaseException) -> None:
        self.failures += 1
        where = ", ".join(f"{t}[{p}]<{o}" for (t, p), o in sorted(before.items()))
        log.warning("could not delete committed repartition records (%s): %s", where, exc)
