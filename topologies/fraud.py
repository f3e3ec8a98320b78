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

The steps, in order, are ``fraud-screen`` (validation, EUR conversion, lateness), one step
per rule (``fraud-velocity``, ``fraud-spend-burst``, ``fraud-amount-anomaly``,
``fraud-impossible-travel``, ``fraud-blocked-merchant``), then ``fraud-score``: each rule
and its state are described in :mod:`fraud_rules` (``topologies/fraud_rules.py``), the
score, alerts and cases in :mod:`fraud_cases`.

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
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer import StoreKind, StreamsBuilder, Topology
from streamer.serde import JsonSerde, RegistryAvroSerde, Serde, StringSerde

# The steps live beside this file, in the same package (topologies, streamer.examples);
# `streamer run topologies/fraud.py` imports the file as part of its package.
from .fraud_cases import (
    add_cases,
    score,
    scored,
    to_alert,
    to_risk_score,
)
from .fraud_rules import (
    AMOUNT_ANOMALY,
    ANOMALY_STEP,
    BLOCKED_MERCHANT,
    BLOCKED_STEP,
    EARTH_RADIUS_KM,
    IMPOSSIBLE_TRAVEL,
    INVALID_STEP,
    LOCATION_STORE,
    PROFILE_STORE,
    REASONS,
    SCREEN_STEP,
    SPEND_BURST,
    SPEND_STEP,
    SPEND_STORE,
    TRAVEL_STEP,
    VELOCITY,
    VELOCITY_STEP,
    VELOCITY_STORE,
    AmountAnomalyRule,
    ImpossibleTravelRule,
    Screen,
    SpendBurstRule,
    VelocityRule,
    blocked_merchant_joiner,
    event_time,
    haversine_km,
    merchant_of,
)

__all__ = [
    "AMOUNT_ANOMALY",
    "ANOMALY_STEP",
    "BLOCKED_MERCHANT",
    "BLOCKED_STEP",
    "DEFAULT_FX_TO_EUR",
    "EARTH_RADIUS_KM",
    "IMPOSSIBLE_TRAVEL",
    "INVALID_STEP",
    "LOCATION_STORE",
    "PROFILE_STORE",
    "REASONS",
    "SCHEMAS_DIR",
    "SCREEN_STEP",
    "SPEND_BURST",
    "SPEND_STEP",
    "SPEND_STORE",
    "TRAVEL_STEP",
    "VELOCITY",
    "VELOCITY_STEP",
    "VELOCITY_STORE",
    "AmountAnomalyRule",
    "FraudConfig",
    "ImpossibleTravelRule",
    "Screen",
    "SpendBurstRule",
    "VelocityRule",
    "add_cases",
    "blocked_merchant_joiner",
    "build",
    "event_time",
    "haversine_km",
    "merchant_of",
    "score",
    "scored",
    "to_alert",
    "to_risk_score",
    "value_serdes",
]

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
        timestamp_extractor=event_time,
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
            blocked, blocked_merchant_joiner(cfg), name=BLOCKED_STEP, key_selector=merchant_of
        )
    judged = verdicts.map_values(scored, name="fraud-score")
    (
        judged.filter(lambda _card, verdict: verdict["score"] > 0, name="fraud-risky")
        .map_values(to_risk_score, name="fraud-risk-score")
        .to(cfg.scores_topic, name="fraud-risk-scores", value_serde=json)
    )
    alerts = judged.filter(
        lambda _card, verdict: bool(verdict["reasons"]), name="fraud-suspicious"
    ).map_values(to_alert, name="fraud-alert")
    alerts.to(cfg.alerts_topic, name="fraud-alerts", value_serde=alert_serde)
    add_cases(cfg, alerts)
    return builder.build()
