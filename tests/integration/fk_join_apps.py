"""Topologies of the foreign-key join integration test.

Orders (left, keyed by order id) name a customer (right, keyed by customer id); both an inner
and a left foreign-key join write every change of their result. Topics come from environment
variables, as in :mod:`tests.integration.apps`.
"""

from __future__ import annotations

import os
from typing import Any

from streamer import StreamsBuilder, Topology

ORDERS = "STREAMER_TEST_FK_ORDERS"
CUSTOMERS = "STREAMER_TEST_FK_CUSTOMERS"
INNER_OUT = "STREAMER_TEST_FK_INNER"
LEFT_OUT = "STREAMER_TEST_FK_LEFT"


def joined(order: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    """The whole of both rows, so the test can tell which versions each result joined."""
    return {"order": order, "customer": customer}


def customer_of(order: dict[str, Any]) -> str | None:
    customer: str | None = order["customer"]
    return customer


def orders_with_customers() -> Topology:
    builder = StreamsBuilder()
    orders = builder.table(os.environ[ORDERS], name="orders")
    customers = builder.table(os.environ[CUSTOMERS], name="customers")
    orders.join(customers, joined, foreign_key=customer_of, name="named").to_stream().to(
        os.environ[INNER_OUT]
    )
    orders.left_join(customers, joined, foreign_key=customer_of, name="maybe").to_stream().to(
        os.environ[LEFT_OUT]
    )
    return builder.build()
