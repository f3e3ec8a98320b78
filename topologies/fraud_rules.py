"""The fraud topology's steps before scoring: the screen and the five rules.

Each step takes a *verdict* (the transaction, its EUR amount, a ``late`` flag, the reasons
that fired with their details, and each rule's contribution to the risk score), adds to it
and forwards it under the same key. :mod:`fraud` (``topologies/fraud.py``) chains the
steps; its :class:`FraudConfig` holds every threshold.

Steps, in order:

``fraud-screen``
    Checks the fields, converts the amount to EUR, and marks the transaction *late* when its
    event time is more than ``grace_ms`` behind the partition's stream time. Invalid
    transactions (missing or mistyped fields, unknown currency, key not the card id) go to
    ``transactions-invalid`` with the error, and are counted.
``fraud-velocity`` (window store)
    More than ``velocity_max_transactions`` transactions of the card in the sliding window
    ``[ts - velocity_window_ms, ts]`` (both ends inclusive, this one included).
``fraud-spend-burst`` (window store, and the ``card-limits`` global table)
    The card's EUR amounts summed over ``[ts - spend_window_ms, ts]`` exceed its limit: the
    ``limit`` of its row in the ``card-limits`` table, else ``default_spend_limit``.
``fraud-amount-anomaly`` (key-value store)
    Welford's running mean and variance of the card's EUR amounts. Once the card has
    ``anomaly_min_history`` earlier transactions, an amount whose z-score exceeds
    ``anomaly_z_threshold`` fires. The standard deviation used is at least
    ``anomaly_min_std_ratio`` times the mean (and 1 EUR), so a card with a few near-identical
    amounts does not alert on a slightly larger one. Only large amounts fire; every amount,
    flagged or not, updates the statistics.
``fraud-impossible-travel`` (key-value store)
    The card's previous transaction (the latest by event time) and this one are at least
    ``travel_min_distance_km`` apart (haversine), at an implied speed above
    ``travel_max_speed_kmh``.
``fraud-blocked-merchant`` (the ``blocked-merchants`` global table)
    The merchant has a row in the compacted ``blocked-merchants`` topic. Every worker holds
    the whole table and follows the topic while running, so blocking (a row) or unblocking
    (a tombstone) takes effect within a poll, for every card. A global table fits because
    transactions are keyed by card, not by merchant.
``fraud-alerts``
    Emits the verdicts with at least one reason, with their risk score.

Scores. Each rule measures how close the transaction comes to its threshold as a ratio
``q`` (velocity: the count over ``velocity_max_transactions + 1``; spend burst: the total
over the limit; amount anomaly: the z-score over ``anomaly_z_threshold``; impossible travel:
the implied speed over ``travel_max_speed_kmh``, for hops of at least
``travel_min_distance_km``; blocked merchant: 1). Its contribution is 0 up to
``score_soft_start``, rises linearly to the rule's weight at ``q = 1`` (the threshold), then
to ``(1 + weight) / 2`` at ``q = score_saturation`` and stays there. The risk score combines
the contributions as ``1 - prod(1 - contribution)``: one rule, however far past its
threshold, scores below several that fire together. Whether a rule *fires* (gives a
reason) depends on its threshold only, as described above; the score ranks what fired and
what came close.

Cases. The alerts of a card are grouped into cases by a session window per card (gap
``case_gap_ms``, grace ``grace_ms``): a case opens with its first alert, every further alert
within the gap updates it, and it closes once stream time passes its last alert plus the gap
and the grace (or, on a quiet partition, once the wall clock has moved that far). Each alert
writes the updated case to ``fraud-cases`` with ``"status": "open"``; a closed case is
written once more with ``"status": "closed"``. The case id is the card and the event time
of its first alert.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from streamer import Processor, ProcessorContext, PunctuationType, Record

if TYPE_CHECKING:
    from topologies.fraud import FraudConfig

VELOCITY = "velocity"
SPEND_BURST = "spend_burst"
AMOUNT_ANOMALY = "amount_anomaly"
IMPOSSIBLE_TRAVEL = "impossible_travel"
BLOCKED_MERCHANT = "blocked_merchant"
REASONS = (VELOCITY, SPEND_BURST, AMOUNT_ANOMALY, IMPOSSIBLE_TRAVEL, BLOCKED_MERCHANT)
"""Reason codes, in the order the rules run (and alerts list them)."""

SCREEN_STEP = "fraud-screen"
VELOCITY_STEP = "fraud-velocity"
SPEND_STEP = "fraud-spend-burst"
ANOMALY_STEP = "fraud-amount-anomaly"
TRAVEL_STEP = "fraud-impossible-travel"
BLOCKED_STEP = "fraud-blocked-merchant"
INVALID_STEP = "fraud-invalid"

VELOCITY_STORE = "fraud-velocity-window"
SPEND_STORE = "fraud-spend-window"
PROFILE_STORE = "fraud-amount-profile"
LOCATION_STORE = "fraud-last-location"

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def event_time(key: Any, value: Any, record_timestamp: int) -> int:
    """The transaction's ``ts``; the record timestamp when it has none (fraud-screen then
    rejects the transaction)."""
    if isinstance(value, dict):
        ts = value.get("ts")
        if isinstance(ts, int) and not isinstance(ts, bool) and ts >= 0:
            return ts
    return record_timestamp


_TEXT_FIELDS = ("id", "card", "currency", "merchant", "country")
_NUMBER_FIELDS = ("amount", "lat", "lon")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Screen(Processor):
    """Validates, converts to EUR, marks late transactions; see the module docstring."""

    def __init__(self, config: FraudConfig, valid_child: str, invalid_child: str) -> None:
        self.config = config
        self.rates = dict(config.fx_to_eur)
        self.valid_child = valid_child
        self.invalid_child = invalid_child

    def _problem(self, key: Any, tx: Any) -> str | None:
        if not isinstance(tx, dict):
            return "the transaction is not a JSON object"
        for name in _TEXT_FIELDS:
            if not isinstance(tx.get(name), str) or not tx[name]:
                return f"field {name!r} must be a non-empty string"
        for name in _NUMBER_FIELDS:
            if not _number(tx.get(name)):
                return f"field {name!r} must be a number"
        ts = tx.get("ts")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            return "field 'ts' must be a non-negative integer (event time in ms)"
        if tx["amount"] < 0:
            return "field 'amount' must not be negative"
        if not (-90 <= tx["lat"] <= 90 and -180 <= tx["lon"] <= 180):
            return "'lat'/'lon' are out of range"
        if tx["currency"] not in self.rates:
            return f"unknown currency {tx['currency']!r}"
        if key != tx["card"]:
            return f"the record key {key!r} is not the card id {tx['card']!r}"
        return None

    def process(self, record: Record) -> None:
        tx = record.value
        problem = self._problem(record.key, tx)
        if problem is not None:
            self.context.count("fraud-invalid-transactions")
            self.context.forward(
                record.with_value({"error": problem, "transaction": tx}), to=self.invalid_child
            )
            return
        late = self.context.stream_time - record.timestamp > self.config.grace_ms
        if late:
            self.context.count("fraud-late-transactions")
        verdict = {
            "tx": tx,
            "eur": tx["amount"] * self.rates[tx["currency"]],
            "late": late,
            "reasons": [],
            "details": {},
            "contributions": {},
        }
        self.context.forward(record.with_value(verdict), to=self.valid_child)


def _fire(verdict: dict[str, Any], reason: str, details: dict[str, Any]) -> None:
    verdict["reasons"].append(reason)
    verdict["details"][reason] = details


def _contribute(config: FraudConfig, verdict: dict[str, Any], reason: str, ratio: float) -> None:
    share = config.contribution(reason, ratio)
    if share > 0:
        verdict["contributions"][reason] = round(share, 4)


class _WindowRule(Processor):
    """A rule over the card's transactions in a sliding window ``[ts - window, ts]``.

    Keeps one window-store row per (card, event time), purged on stream time once older
    than ``window + grace`` (no transaction that is still on time can reach it).
    """

    store_name: str
    window_ms: int

    def __init__(self, config: FraudConfig) -> None:
        self.config = config

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.window = context.store(self.store_name)
        context.schedule(self.config.purge_interval_ms, PunctuationType.STREAM_TIME, self.purge)

    def purge(self, now: int) -> None:
        horizon = self.context.stream_time - self.window_ms - self.config.grace_ms
        for card, start, _value in self.window.windows_starting_before(horizon):
            self.window.delete(card, start)

    def add(self, card: str, ts: int, amount: float) -> tuple[int, float]:
        """Record this transaction; return the window's (count, sum) including it."""
        row = self.window.fetch(card, ts) or [0, 0.0]
        self.window.put(card, ts, [row[0] + 1, row[1] + amount])
        count, total = 0, 0.0
        for _start, (n, amount_sum) in self.window.fetch_range(card, ts - self.window_ms, ts):
            count += n
            total += amount_sum
        return count, total


class VelocityRule(_WindowRule):
    store_name = VELOCITY_STORE

    def __init__(self, config: FraudConfig) -> None:
        super().__init__(config)
        self.window_ms = config.velocity_window_ms

    def process(self, record: Record) -> None:
        verdict = record.value
        if not verdict["late"]:
            count, _ = self.add(record.key, record.timestamp, 0.0)
            limit = self.config.velocity_max_transactions
            _contribute(self.config, verdict, VELOCITY, count / (limit + 1))
            if count > limit:
                _fire(verdict, VELOCITY, {"count": count, "window_ms": self.window_ms})
        self.context.forward(record)


class SpendBurstRule(_WindowRule):
    store_name = SPEND_STORE

    def __init__(self, config: FraudConfig, limits_store: str) -> None:
        super().__init__(config)
        self.window_ms = config.spend_window_ms
        self.limits_store = limits_store

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.limits = context.store(self.limits_store)

    def limit_of(self, card: str) -> float:
        row = self.limits.get(card)
        if isinstance(row, dict) and _number(row.get("limit")):
            return float(row["limit"])
        if _number(row):
            return float(row)
        return self.config.default_spend_limit

    def process(self, record: Record) -> None:
        verdict = record.value
        if not verdict["late"]:
            _, total = self.add(record.key, record.timestamp, verdict["eur"])
            limit = self.limit_of(record.key)
            if limit > 0:
                _contribute(self.config, verdict, SPEND_BURST, total / limit)
            if total > limit:
                details = {
                    "total_eur": round(total, 2),
                    "limit_eur": limit,
                    "window_ms": self.window_ms,
                }
                _fire(verdict, SPEND_BURST, details)
        self.context.forward(record)


class AmountAnomalyRule(Processor):
    """Welford's online mean and variance per card; see the module docstring."""

    def __init__(self, config: FraudConfig) -> None:
        self.config = config

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.profiles = context.store(PROFILE_STORE)

    def process(self, record: Record) -> None:
        verdict = record.value
        x = verdict["eur"]
        profile = self.profiles.get(record.key) or {"n": 0, "mean": 0.0, "m2": 0.0}
        n, mean, m2 = profile["n"], profile["mean"], profile["m2"]
        if n >= self.config.anomaly_min_history:
            std = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
            floor = max(self.config.anomaly_min_std_ratio * mean, 1.0)
            z = (x - mean) / max(std, floor)
            if self.config.anomaly_z_threshold > 0:
                _contribute(
                    self.config, verdict, AMOUNT_ANOMALY, z / self.config.anomaly_z_threshold
                )
            if z > self.config.anomaly_z_threshold:
                details = {
                    "z": round(z, 2),
                    "amount_eur": round(x, 2),
                    "mean_eur": round(mean, 2),
                    "std_eur": round(std, 2),
                    "history": n,
                }
                _fire(verdict, AMOUNT_ANOMALY, details)
        n += 1
        delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
        self.profiles.put(record.key, {"n": n, "mean": mean, "m2": m2})
        self.context.forward(record)


class ImpossibleTravelRule(Processor):
    """Compares each transaction with the card's latest one by event time."""

    def __init__(self, config: FraudConfig) -> None:
        self.config = config

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.last = context.store(LOCATION_STORE)

    def process(self, record: Record) -> None:
        verdict = record.value
        tx = verdict["tx"]
        ts = record.timestamp
        previous = self.last.get(record.key)
        if previous is not None:
            km = haversine_km(previous["lat"], previous["lon"], tx["lat"], tx["lon"])
            hours = abs(ts - previous["ts"]) / 3_600_000
            speed = math.inf if hours == 0 else km / hours
            far = km >= self.config.travel_min_distance_km
            if far and self.config.travel_max_speed_kmh > 0:
                ratio = min(speed / self.config.travel_max_speed_kmh, 1e9)
                _contribute(self.config, verdict, IMPOSSIBLE_TRAVEL, ratio)
            if far and speed > self.config.travel_max_speed_kmh:
                details = {
                    "km": round(km, 1),
                    "kmh": None if math.isinf(speed) else round(speed),
                    "seconds": round(hours * 3600, 3),
                    "previous_tx": previous["id"],
                    "previous_country": previous["country"],
                }
                _fire(verdict, IMPOSSIBLE_TRAVEL, details)
        if previous is None or ts >= previous["ts"]:
            self.last.put(
                record.key,
                {
                    "id": tx["id"],
                    "ts": ts,
                    "lat": tx["lat"],
                    "lon": tx["lon"],
                    "country": tx["country"],
                },
            )
        self.context.forward(record)


def blocked_merchant_joiner(config: FraudConfig) -> Any:
    def joiner(verdict: dict[str, Any], row: Any) -> dict[str, Any]:
        if row is not None:
            details = row if isinstance(row, dict) else {"row": row}
            merchant = verdict["tx"]["merchant"]
            _fire(verdict, BLOCKED_MERCHANT, {"merchant": merchant, **details})
            _contribute(config, verdict, BLOCKED_MERCHANT, 1.0)
        return verdict

    return joiner


def merchant_of(_key: Any, verdict: dict[str, Any]) -> Any:
    return verdict["tx"]["merchant"]
