"""The topology of the cogroup integration test: clicks and purchases into one aggregate."""

from __future__ import annotations

import os
from typing import Any

from streamer import StreamsBuilder, Topology

CLICKS = "STREAMER_TEST_CLICKS"
PURCHASES = "STREAMER_TEST_PURCHASES"
OUTPUT = "STREAMER_TEST_OUTPUT"


def _click(_user: Any, click: dict[str, int], agg: dict[str, int]) -> dict[str, int]:
    return {**agg, "clicks": agg["clicks"] + 1, "last_click": click["seq"]}


def _purchase(_user: Any, purchase: dict[str, Any], agg: dict[str, int]) -> dict[str, int]:
    return {**agg, "buys": agg["buys"] + 1, "spent": agg["spent"] + purchase["eur"]}


def user_activity() -> Topology:
    """Clicks keyed by user ``{"seq"}`` and purchases keyed by order ``{"user", "eur"}``,
    re-grouped by user through ``by-user-repartition``, update one aggregate per user:
    ``{"clicks", "last_click", "buys", "spent"}``, forwarded after each record."""
    builder = StreamsBuilder()
    clicks = builder.stream(os.environ[CLICKS]).group_by_key()
    purchases = builder.stream(os.environ[PURCHASES]).group_by(
        lambda _order, purchase: purchase["user"], name="by-user"
    )
    (
        clicks.cogroup(_click)
        .cogroup(purchases, _purchase)
        .aggregate(lambda: {"clicks": 0, "last_click": -1, "buys": 0, "spent": 0}, name="activity")
        .to_stream()
        .to(os.environ[OUTPUT])
    )
    return builder.build()
