"""Card velocity: alert when a card makes too many transactions in a short time.

The first rule of the fraud-detection topology. Input: JSON card transactions keyed by card
id, with event time in ``ts`` (ms). Output: one alert per transaction that takes its card
over ``max_transactions`` within ``window_ms`` (a sliding window ending at that
transaction). Late transactions (older than every window that could still count them:
stream time past ``ts + window_ms + grace_ms``) go to a side topic instead of being silently
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamer import SlidingWindows, StreamsBuilder, Topology, Windowed


@dataclass(frozen=True, slots=True)
class VelocityConfig:
    transactions_topic: str = "transactions"
    alerts_topic: str = "alerts"
    late_topic: str = "transactions-late"
    window_ms: int = 60_000
    grace_ms: int = 5_000
    max_transactions: int = 3


def _event_time(key: Any, value: Any, record_timestamp: int) -> int:
    return int(value.get("ts", record_timestamp))


def build(config: VelocityConfig | None = None) -> Topology:
    cfg = config or VelocityConfig()
    builder = StreamsBuilder()
    transactions = builder.stream(cfg.transactions_topic, timestamp_extractor=_event_time)
    counts = (
        transactions.group_by_key()
        .windowed_by(SlidingWindows(size=cfg.window_ms, grace=cfg.grace_ms))
        .count(name="card-velocity", late_topic=cfg.late_topic)
    )

    def to_alert(key: Windowed, count: int) -> tuple[Any, dict[str, Any]]:
        return key.key, {
            "card": key.key,
            "reason": "velocity",
            "transactions": count,
            "window_start": key.start,
            "window_end": key.end,
        }

    (
        counts.to_stream()
        .filter(lambda _key, count: count > cfg.max_transactions)
        .map(to_alert)
        .to(cfg.alerts_topic)
    )
    return builder.build()
