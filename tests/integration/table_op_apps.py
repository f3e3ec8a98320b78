"""Topologies of the table-operator integration tests (re-grouping a table, suppress).

They read their topics from the same environment variables as :mod:`tests.integration.apps`.
"""

from __future__ import annotations

import os
from typing import Any

from streamer import StreamsBuilder, Topology

INPUT = "STREAMER_TEST_INPUT"
OUTPUT = "STREAMER_TEST_OUTPUT"


def _topics() -> tuple[str, str]:
    return os.environ[INPUT], os.environ[OUTPUT]


def _add(_group: Any, amount: int, totals: dict[str, int]) -> dict[str, int]:
    return {"rows": totals["rows"] + 1, "sum": totals["sum"] + amount}


def _subtract(_group: Any, amount: int, totals: dict[str, int]) -> dict[str, int]:
    return {"rows": totals["rows"] - 1, "sum": totals["sum"] - amount}


def group_totals() -> Topology:
    """A table of rows ``{"group", "amount"}`` re-grouped by group: rows and sum per group.

    Each change record of the re-grouping yields one output ``(group, {"rows", "sum"})``.
    """
    source, sink = _topics()
    builder = StreamsBuilder()
    (
        builder.table(source, name="rows")
        .group_by(lambda _row, value: (value["group"], value["amount"]), name="by-group")
        .aggregate(lambda: {"rows": 0, "sum": 0}, _add, _subtract, name="group-totals")
        .to_stream()
        .to(sink)
    )
    return builder.build()


SUPPRESS_LIMIT_MS = 2_500
SUPPRESS_MAX_RECORDS = 10


def suppressed_rows() -> Topology:
    """A table's updates held per key for ``SUPPRESS_LIMIT_MS`` of stream time, at most
    ``SUPPRESS_MAX_RECORDS`` keys per task (then the oldest go early)."""
    source, sink = _topics()
    builder = StreamsBuilder()
    (
        builder.table(source, name="latest-rows")
        .suppress(
            until_time_limit=SUPPRESS_LIMIT_MS,
            max_records=SUPPRESS_MAX_RECORDS,
            when_full="emit-early",
            name="calm-rows",
        )
        .to_stream()
        .to(sink)
    )
    return builder.build()
