"""Records an aggregation cannot use: counted always, and reported when they have no key.

An aggregation (count, reduce, aggregate, windowed or not) skips a record whose key or
value is None, as Kafka Streams does. Every such record adds one to the task counter
``null-key-or-value-skipped``. A record without a key is also a likely bug upstream (a
missing ``select_key`` or ``group_by``), so it adds one to :data:`DROPPED_NULL_KEY` and is
reported by a WARNING naming the record's source topic, partition and offset.

Reports are rate-limited per step of a task: at most one line every
:data:`REPORT_INTERVAL_MS` of the task's wall clock, saying how many keyless records the
step dropped since its last line. The first drop is reported at once; drops within the
interval after a report are counted and go into the next line. The lines name no key or
value.
"""

from __future__ import annotations

import logging

from streamer.processors.api import ProcessorContext

log = logging.getLogger(__name__)

SKIPPED_NULL_KEY_OR_VALUE = "null-key-or-value-skipped"
DROPPED_NULL_KEY = "records-dropped-null-key"
REPORT_INTERVAL_MS = 10_000
# Versioned tables and as-of joins (see streamer.processors.versioned):
TABLE_UPDATE_EXPIRED = "table-update-expired-dropped"
"""A versioned table's update older than its history retention: not applied."""
TABLE_UPDATE_OUT_OF_ORDER = "table-update-out-of-order"
"""A versioned table's update stored into history: applied, not forwarded as the latest."""
JOIN_OUTSIDE_HISTORY = "join-outside-history-dropped"
"""A stream record older than the joined table's history retention: no exact answer."""


class NullKeyDrops:
    """The count and rate-limited report of one aggregation step's unusable records."""

    __slots__ = ("_next_report", "_total", "_unreported")

    def __init__(self) -> None:
        self._unreported = 0
        self._total = 0
        self._next_report: int | None = None

    def skipped(self, context: ProcessorContext, *, key_missing: bool) -> None:
        """Count a record the step skips; report it if it had no key and a line is due."""
        context.count(SKIPPED_NULL_KEY_OR_VALUE)
        if not key_missing:
            return
        context.count(DROPPED_NULL_KEY)
        self._unreported += 1
        self._total += 1
        now = context.wall_clock_time
        if self._next_report is not None and now < self._next_report:
            return
        origin = context.origin
        where = (
            "a punctuation"
            if origin is None
            else (f"{origin.topic}[{origin.partition}]@{origin.offset}")
        )
        log.warning(
            "task %s, step %s: dropped %d record(s) without a key since the last report (%d in "
            "all), the latest at %s; an aggregation needs a key: set one with select_key or "
            "group_by before it",
            context.task_id,
            context.step_name,
            self._unreported,
            self._total,
            where,
        )
        self._unreported = 0
        self._next_report = now + REPORT_INTERVAL_MS


__all__ = [
    "DROPPED_NULL_KEY",
    "JOIN_OUTSIDE_HISTORY",
    "REPORT_INTERVAL_MS",
    "SKIPPED_NULL_KEY_OR_VALUE",
    "TABLE_UPDATE_EXPIRED",
    "TABLE_UPDATE_OUT_OF_ORDER",
    "NullKeyDrops",
]
