"""The topology of the versioned-table integration test: sales priced as of their time."""

from __future__ import annotations

import os

from streamer import HistoryRetention, StreamsBuilder, Topology

PRICES = "STREAMER_TEST_PRICES"
SALES = "STREAMER_TEST_SALES"
OUTPUT = "STREAMER_TEST_OUTPUT"
RETENTION_MS = 3_600_000
GRACE_MS = 10_000


def priced_sales() -> Topology:
    """Each sale ``(product, n)`` yields ``(product, {"sale": n, "price": p})``, ``p`` the
    product's price as of the sale's timestamp (None when it had none), after a grace of
    :data:`GRACE_MS` in the buffer store ``priced-buffer``."""
    builder = StreamsBuilder()
    prices = builder.table(
        os.environ[PRICES], name="prices", versioned=HistoryRetention(RETENTION_MS)
    )
    builder.stream(os.environ[SALES]).left_join(
        prices, lambda sale, price: {"sale": sale, "price": price}, name="priced", grace=GRACE_MS
    ).to(os.environ[OUTPUT])
    return builder.build()
