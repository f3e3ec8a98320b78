"""Card fraud detection: five stateful rules, a risk score per transaction, one alert per
suspicious transaction, and alerts grouped into cases per card.

Input: JSON card transactions on ``transactions``, keyed by card id::

    {"id": "tx-00000042", "card": "card-000017", "amount": 42.5, "currency": "EUR",
     "merchant": "merchant-0312", "country": "FR", "lat": 48.85, "lon": 2.35,
     "ts": 1718000000000}

``ts`` is the event time (ms) and drives every window. Output: on ``alerts``, keyed by card,
at most one alert per transaction::

    {"tx_id": ..., "card": ..., "score": 0.94, "reasons": ["velocity", "spend_burst"],
     "details": {"velocity": {...}, "spend_burst": {...}}, "late": false, "tx": {...}}

On ``risk-scores``, keyed by card, one record per transaction whose risk score is above zero
(see *Scores* below); on ``fraud-cases``, keyed by card, the cases (see *Cases*).

How it is built. Each transaction becomes a *verdict* (the transaction, its amount in EUR,
an empty list of reasons) and flows through a chain of named steps, one per rule. Each rule
step owns its state, looks at the verdict, appends its reason code and details if it fires,
and forwards the verdict to the next rule. The last step turns verdicts with at least one
reason into an alert and drops the rest. So a transaction yields exactly one alert carrying
every reason that fired, without joining rule outputs back together, and each rule remains
its own step with its own store, changelog and tests. The chain never changes the key, so
everything runs in one sub-topology per partition: no repartition topic.

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

Late transactions (see ``fraud-screen``) are not added to the windows, whose windows are
closed, and the windowed rules do not judge them; the other rules do, and their alerts say
``"late": true``. Window state is purged on stream time every ``purge_interval_ms``, so it
holds at most ``window + grace`` of history per card. The key-value stores hold one row per
card.

Every threshold lives in :class:`FraudConfig`; ``build()`` reads overrides from
``FRAUD_<FIELD>`` environment variables (``FRAUD_VELOCITY_MAX_TRANSACTIONS=8``), which is
how ``streamer run topologies/fraud.py`` is configured. The runtime runs it exactly-once by
default: each alert is committed together with the input offsets and state changes that
produced it.

Value format. By default transactions and alerts are JSON. With ``value_format="avro"``
(``FRAUD_VALUE_FORMAT=avro FRAUD_SCHEMA_REGISTRY_URL=http://...``) both are Avro in the
Confluent wire format, with the schemas of ``topologies/schemas/`` (``transaction.avsc``,
``alert.avsc``): transactions are read into ``transaction.avsc`` whatever compatible schema
their producers wrote with, and alerts are written with ``alert.avsc``, registered under
``<alerts_topic>-value`` on first use. The invalid-transactions side topic, the global
tables and the stores stay JSON.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer import (
    Processor,
    ProcessorContext,
    PunctuationType,
    Record,
    SessionWindows,
    StoreKind,
    StreamsBuilder,
    Topology,
)
from streamer.serde import JsonSerde, RegistryAvroSerde, Serde, StringSerde

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

DEFAULT_FX_TO_EUR: tuple[tuple[str, float], ...] = (
    ("EUR", 1.0),
    ("USD", 0.92),
    ("GBP", 1.17),
    ("CHF", 1.05),
    ("CAD", 0.68),
    ("JPY", 0.0062),
    ("AUD", 0.61),
    ("SGD", 0.69),
    ("AED", 0.25),
    ("BRL", 0.17),
)


@dataclass(frozen=True, slots=True)
class FraudConfig:
    """Topics and thresholds. Amounts are in EUR, times in ms, distances in km."""

    transactions_topic: str = "transactions"
    alerts_topic: str = "alerts"
    blocked_merchants_topic: str = "blocked-merchants"
    card_limits_topic: str = "card-limits"
    invalid_topic: str = "transactions-invalid"
    scores_topic: str = "risk-scores"
    cases_topic: str = "fraud-cases"

    velocity_window_ms: int = 10_000
    velocity_max_transactions: int = 5

    spend_window_ms: int = 60_000
    default_spend_limit: float = 2_000.0

    anomaly_min_history: int = 4
    anomaly_z_threshold: float = 6.0
    anomaly_min_std_ratio: float = 0.3

    travel_max_speed_kmh: float = 900.0
    travel_min_distance_km: float = 100.0

    grace_ms: int = 5_000
    purge_interval_ms: int = 10_000

    weight_velocity: float = 0.6
    weight_spend_burst: float = 0.7
    weight_amount_anomaly: float = 0.5
    weight_impossible_travel: float = 0.8
    weight_blocked_merchant: float = 0.9

    score_soft_start: float = 0.6
    """Ratio to its threshold from which a rule contributes to the risk score."""
    score_saturation: float = 2.0
    """Ratio to its threshold at which a rule's contribution stops rising."""

    case_gap_ms: int = 30_000
    """Alerts of a card at most this far apart (event time) belong to one case."""
    case_max_transactions: int = 100
    """Transactions listed in a case at most (the count goes on)."""

    rules: str = ",".join(REASONS)
    """The rules that run, comma-separated (all by default); to measure each one's cost."""

    fx_to_eur: tuple[tuple[str, float], ...] = DEFAULT_FX_TO_EUR
    """EUR per unit of each accepted currency; other currencies are invalid."""

    value_format: str = "json"
    """``json`` or ``avro`` (then ``schema_registry_url`` is required): the format of
    transactions and alerts."""
    schema_registry_url: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.score_soft_start < 1 < self.score_saturation:
            msg = (
                "score_soft_start and score_saturation must satisfy 0 <= soft start < 1 < "
                f"saturation, got {self.score_soft_start} and {self.score_saturation}"
            )
            raise ValueError(msg)
        unknown = set(self.enabled_rules()) - set(REASONS)
        if unknown:
            msg = f"unknown rules {sorted(unknown)} in rules; known: {', '.join(REASONS)}"
            raise ValueError(msg)
        if self.case_gap_ms <= 0:
            msg = f"case_gap_ms must be positive, got {self.case_gap_ms}"
            raise ValueError(msg)

    def enabled_rules(self) -> tuple[str, ...]:
        """The rules that run, in their fixed order."""
        named = {name.strip() for name in self.rules.split(",") if name.strip()}
        return tuple(reason for reason in REASONS if reason in named) + tuple(
            sorted(named - set(REASONS))
        )

    def contribution(self, reason: str, ratio: float) -> float:
        """The rule's share of the risk score at ``ratio`` (how far it is to its threshold,
        1 being the threshold): 0 up to the soft start, the rule's weight at 1,
        ``(1 + weight) / 2`` from saturation on, linear in between."""
        soft, full, weight = self.score_soft_start, self.score_saturation, self.weight(reason)
        if ratio <= soft:
            return 0.0
        if ratio <= 1.0:
            return weight * (ratio - soft) / (1.0 - soft)
        top = (1.0 + weight) / 2
        if ratio >= full:
            return top
        return weight + (top - weight) * (ratio - 1.0) / (full - 1.0)

    def weight(self, reason: str) -> float:
        value: float = getattr(self, f"weight_{reason}")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FraudConfig:
        """Defaults overridden by ``FRAUD_<FIELD>`` variables; ``FRAUD_FX_TO_EUR`` is
        ``EUR=1,USD=0.92,...``. Raises ValueError naming a variable that does not parse."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f"FRAUD_{f.name.upper()}"
            text = env.get(name)
            if text is None:
                continue
            try:
                values[f.name] = _parse(text, f.default)
            except ValueError as exc:
                msg = f"{name}={text!r}: {exc}"
                raise ValueError(msg) from exc
        return cls(**values)


def _parse(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        pairs = []
        for item in text.split(","):
            code, sep, rate = item.partition("=")
            if not sep:
                msg = "expected CODE=RATE pairs separated by commas"
                raise ValueError(msg)
            pairs.append((code.strip().upper(), float(rate)))
        return tuple(pairs)
    return text


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _event_time(key: Any, value: Any, record_timestamp: int) -> int:
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


def _blocked_merchant(config: FraudConfig) -> Any:
    def joiner(verdict: dict[str, Any], row: Any) -> dict[str, Any]:
        if row is not None:
            details = row if isinstance(row, dict) else {"row": row}
            merchant = verdict["tx"]["merchant"]
            _fire(verdict, BLOCKED_MERCHANT, {"merchant": merchant, **details})
            _contribute(config, verdict, BLOCKED_MERCHANT, 1.0)
        return verdict

    return joiner


def _merchant_of(_key: Any, verdict: dict[str, Any]) -> Any:
    return verdict["tx"]["merchant"]


def score(contributions: Mapping[str, float]) -> float:
    """The risk score: ``1 - prod(1 - contribution)`` over the rules' contributions."""
    keep = 1.0
    for share in contributions.values():
        keep *= 1.0 - share
    return round(1.0 - keep, 4)


def _scored(verdict: dict[str, Any]) -> dict[str, Any]:
    return {**verdict, "score": score(verdict["contributions"])}


def to_alert(verdict: dict[str, Any]) -> dict[str, Any]:
    tx = verdict["tx"]
    return {
        "tx_id": tx["id"],
        "card": tx["card"],
        "score": verdict["score"],
        "reasons": verdict["reasons"],
        "details": verdict["details"],
        "late": verdict["late"],
        "tx": tx,
    }


def to_risk_score(verdict: dict[str, Any]) -> dict[str, Any]:
    """What ``risk-scores`` carries for a transaction with a risk score above zero."""
    tx = verdict["tx"]
    return {
        "tx_id": tx["id"],
        "card": tx["card"],
        "ts": tx["ts"],
        "score": verdict["score"],
        "contributions": verdict["contributions"],
        "reasons": verdict["reasons"],
    }


# --- cases ---------------------------------------------------------------------------------


def _new_case() -> dict[str, Any]:
    return {"alerts": 0, "score": 0.0, "reasons": [], "first": None, "last": None, "txs": []}


def _case_adder(config: FraudConfig) -> Any:
    def add(_card: Any, alert: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
        point = [alert["tx"]["ts"], alert["tx_id"]]
        return _merge_cases(
            config,
            case,
            {
                "alerts": 1,
                "score": alert["score"],
                "reasons": alert["reasons"],
                "first": point,
                "last": point,
                "txs": [alert["tx_id"]],
            },
        )

    return add


def _merge_cases(config: FraudConfig, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two cases of one card as one: first and last alert by event time, reasons in rule
    order, the highest score, at most ``case_max_transactions`` transaction ids."""
    firsts = [p for p in (a["first"], b["first"]) if p is not None]
    lasts = [p for p in (a["last"], b["last"]) if p is not None]
    reasons = set(a["reasons"]) | set(b["reasons"])
    return {
        "alerts": a["alerts"] + b["alerts"],
        "score": max(a["score"], b["score"]),
        "reasons": [r for r in REASONS if r in reasons],
        "first": min(firsts) if firsts else None,
        "last": max(lasts) if lasts else None,
        "txs": (a["txs"] + b["txs"])[: config.case_max_transactions],
    }


def _case_record(config: FraudConfig, card: str, case: dict[str, Any], status: str) -> Any:
    first_ts, first_tx = case["first"]
    last_ts, last_tx = case["last"]
    return {
        "case_id": f"{card}@{first_ts}",
        "card": card,
        "status": status,
        "alerts": case["alerts"],
        "score": case["score"],
        "reasons": case["reasons"],
        "first_alert": {"tx_id": first_tx, "ts": first_ts},
        "last_alert": {"tx_id": last_tx, "ts": last_ts},
        "closes_after": last_ts + config.case_gap_ms,
        "transactions": case["txs"],
    }


def _add_cases(cfg: FraudConfig, alerts: Any) -> None:
    """Group ``alerts`` into cases by a session window per card; see the module docstring."""
    text, json = StringSerde(), JsonSerde()
    windows = SessionWindows(gap=cfg.case_gap_ms, grace=cfg.grace_ms)
    grouped = alerts.group_by_key()
    adder, merger = _case_adder(cfg), (lambda _card, a, b: _merge_cases(cfg, a, b))
    for status, emit, idle in (
        ("open", "update", None),
        ("closed", "final", max(1_000, cfg.case_gap_ms // 4)),
    ):
        (
            grouped.windowed_by(windows)
            .aggregate(
                _new_case,
                adder,
                merger=merger,
                name=f"fraud-cases-{status}",
                emit=emit,
                idle_close_ms=idle,
            )
            .to_stream(name=f"fraud-cases-{status}-stream")
            .filter(lambda _w, case: case is not None, name=f"fraud-cases-{status}-live")
            .map(
                lambda w, case, status=status: (w.key, _case_record(cfg, w.key, case, status)),
                name=f"fraud-cases-{status}-record",
            )
            .to(cfg.cases_topic, key_serde=text, value_serde=json, name=f"fraud-cases-{status}-out")
        )


SCHEMAS_DIR = Path(__file__).with_name("schemas")


def value_serdes(cfg: FraudConfig) -> tuple[Serde[Any], Serde[Any]]:
    """The (transactions, alerts) value serdes of ``cfg.value_format``."""
    if cfg.value_format == "json":
        return JsonSerde(), JsonSerde()
    if cfg.value_format != "avro":
        msg = f"value_format must be 'json' or 'avro', got {cfg.value_format!r}"
        raise ValueError(msg)
    if not cfg.schema_registry_url:
        msg = "value_format 'avro' needs schema_registry_url (FRAUD_SCHEMA_REGISTRY_URL)"
        raise ValueError(msg)
    url = cfg.schema_registry_url
    return (
        RegistryAvroSerde(
            url, SCHEMAS_DIR / "transaction.avsc", topic=cfg.transactions_topic, auto_register=True
        ),
        RegistryAvroSerde(
            url, SCHEMAS_DIR / "alert.avsc", topic=cfg.alerts_topic, auto_register=True
        ),
    )


def build(config: FraudConfig | None = None) -> Topology:
    """The fraud topology; without ``config``, :meth:`FraudConfig.from_env`."""
    cfg = config or FraudConfig.from_env()
    builder = StreamsBuilder()
    json, text = JsonSerde(), StringSerde()
    transaction_serde, alert_serde = value_serdes(cfg)
    blocked = builder.global_table(cfg.blocked_merchants_topic, name="blocked-merchants")
    limits = builder.global_table(cfg.card_limits_topic, name="card-limits")
    builder.add_store(VELOCITY_STORE, StoreKind.WINDOW, key_serde=text, value_serde=json)
    builder.add_store(SPEND_STORE, StoreKind.WINDOW, key_serde=text, value_serde=json)
    builder.add_store(PROFILE_STORE, key_serde=text, value_serde=json)
    builder.add_store(LOCATION_STORE, key_serde=text, value_serde=json)

    transactions = builder.stream(
        cfg.transactions_topic,
        name="transactions",
        timestamp_extractor=_event_time,
        value_serde=transaction_serde,
    )
    rules = cfg.enabled_rules()
    steps = {
        VELOCITY: (VELOCITY_STEP, lambda: VelocityRule(cfg), [VELOCITY_STORE]),
        SPEND_BURST: (
            SPEND_STEP,
            lambda: SpendBurstRule(cfg, limits.store),
            [SPEND_STORE, limits.store],
        ),
        AMOUNT_ANOMALY: (ANOMALY_STEP, lambda: AmountAnomalyRule(cfg), [PROFILE_STORE]),
        IMPOSSIBLE_TRAVEL: (TRAVEL_STEP, lambda: ImpossibleTravelRule(cfg), [LOCATION_STORE]),
    }
    chain = [r for r in rules if r in steps]
    first = (
        steps[chain[0]][0]
        if chain
        else (BLOCKED_STEP if BLOCKED_MERCHANT in rules else "fraud-score")
    )
    screened = transactions.process(
        lambda: Screen(cfg, first, INVALID_STEP), name=SCREEN_STEP, key_serde=text, keeps_key=True
    )
    screened.to(cfg.invalid_topic, name=INVALID_STEP)
    verdicts = screened
    for rule in chain:
        step, factory, stores = steps[rule]
        verdicts = verdicts.process(
            factory, name=step, stores=stores, key_serde=text, keeps_key=True
        )
    if BLOCKED_MERCHANT in rules:
        verdicts = verdicts.left_join(
            blocked, _blocked_merchant(cfg), name=BLOCKED_STEP, key_selector=_merchant_of
        )
    scored = verdicts.map_values(_scored, name="fraud-score")
    (
        scored.filter(lambda _card, verdict: verdict["score"] > 0, name="fraud-risky")
        .map_values(to_risk_score, name="fraud-risk-score")
        .to(cfg.scores_topic, name="fraud-risk-scores", value_serde=json)
    )
    alerts = scored.filter(
        lambda _card, verdict: bool(verdict["reasons"]), name="fraud-suspicious"
    ).map_values(to_alert, name="fraud-alert")
    alerts.to(cfg.alerts_topic, name="fraud-alerts", value_serde=alert_serde)
    _add_cases(cfg, alerts)
    return builder.build()
