"""Synthetic card transactions with injected fraud patterns, and their ground truth.

Deterministic: the same :class:`GeneratorConfig` (seed included) and start time give the
same transactions, byte for byte. Event time (``ts``) is ``start_ms`` plus a planned offset,
so the data does not depend on how fast it is produced; ``rate`` sets how many transactions
fall in each second of event time, and a producer that sends each one at its ``ts`` (see
:func:`streamer.kafka.clients.produce_paced`) runs in real time.

The population. Each normal card has a home city (and a home point within 20 km of its
centre), a currency, 3-6 favourite merchants of its city, a typical amount ``T`` (EUR,
log-uniform in 10-80) and its own pace. Its transactions are at least 3 s apart (3 s plus
an exponential gap whose mean, 2-10 s, is the card's habit; at most 60 s), each within 10 km
of home, at one of its merchants, for ``T`` times 0.7-1.3. Its spend limit (the
``card-limits`` table) is ``60 * T`` rounded up to 100 EUR.

Normal behaviour stays inside what the fraud topology's default thresholds allow, with a
margin, by construction: at most 4 transactions in any 10 s (velocity fires above 5); at
most 21 in any 60 s, so at most ``27.3 * T`` spent (the limit is ``60 * T``); amounts
within ``0.7-1.3 * T`` (a z-score of at most about 3, the threshold is 6); at most 20 km
between two transactions (impossible travel needs 100 km). No normal card uses a blocked
merchant.

Patterns, each injected at ``pattern_rates[kind]`` instances per 1,000 transactions (an
instance that needs a card with history waits for an eligible one):

``velocity``
    Card testing: a fresh card makes 8-10 tiny purchases (0.5-3 EUR) 0.2-0.8 s apart. The
    6th and later ones exceed the velocity limit and are labelled ``velocity``.
``spend_burst``
    Bust-out: a fresh card makes 3-4 purchases of 40-45 % of its limit, 2-6 s apart. The
    ones that take its total past the limit (the 3rd and 4th) are labelled.
``amount_anomaly``
    A card with at least 4 earlier transactions makes one purchase of 12-20 times ``T``
    (still below its limit with any normal history).
``impossible_travel``
    A card's next transaction happens in a city at least 1,500 km from home, seconds to a
    minute after the previous one. The card is blocked (makes no more transactions) after.
``blocked_merchant``
    A card's next transaction is at a merchant of the ``blocked-merchants`` table.

Cards that end in a fresh-card pattern or in impossible travel make no more transactions,
so no later transaction can be judged against the fraud's effects. The ground truth labels
exactly the transactions that a correct implementation of the rules must flag, with the
pattern's kind; every other transaction is labelled ``None``. The amount anomaly,
impossible travel and blocked merchant patterns label their single transaction.
"""

from __future__ import annotations

import heapq
import math
import random
import sys
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamer.demo.world import (
    AMOUNT_ANOMALY,
    AMOUNT_SPREAD,
    ANOMALY_MIN_HISTORY,
    BLOCKED_MERCHANT,
    BLOCKED_MERCHANTS,
    CITIES,
    EXTRA_GAP_MEAN_MS,
    HOME_RADIUS_KM,
    IMPOSSIBLE_TRAVEL,
    KINDS,
    LIMIT_MULTIPLE,
    MAX_GAP_MS,
    MERCHANTS_PER_CITY,
    MIN_GAP_MS,
    SPEND_BURST,
    TRAVEL_MIN_KM,
    TX_RADIUS_KM,
    TYPICAL_EUR,
    VELOCITY,
    VELOCITY_MAX_TRANSACTIONS,
    Card,
    City,
    haversine_km,
    point_near,
    round_amount,
)


def _default_rates() -> dict[str, float]:
    return dict.fromkeys(KINDS, 1.5)


@dataclass(frozen=True)
class GeneratorConfig:
    """``events`` transactions, ``rate`` per second of event time, patterns at
    ``pattern_rates[kind]`` instances per 1,000 transactions."""

    seed: int = 7
    events: int = 25_000
    rate: float = 500.0
    pattern_rates: Mapping[str, float] = field(default_factory=_default_rates)

    def __post_init__(self) -> None:
        if self.events < 0:
            msg = f"events must be >= 0, got {self.events}"
            raise ValueError(msg)
        if self.rate <= 0:
            msg = f"rate must be positive, got {self.rate}"
            raise ValueError(msg)
        unknown = set(self.pattern_rates) - set(KINDS)
        if unknown:
            msg = f"unknown pattern kinds {sorted(unknown)}; known: {', '.join(KINDS)}"
            raise ValueError(msg)
        if any(r < 0 for r in self.pattern_rates.values()):
            msg = "pattern rates must be >= 0"
            raise ValueError(msg)

    @property
    def duration_s(self) -> float:
        """The event-time span of the data, roughly."""
        return self.events / self.rate


@dataclass(frozen=True, slots=True)
class LabeledTransaction:
    tx: dict[str, Any]
    kind: str | None
    """The fraud kind the fraud topology must flag this transaction for, or None."""


@dataclass
class GenerationStats:
    transactions: int = 0
    instances: Counter[str] = field(default_factory=Counter)
    labeled: Counter[str] = field(default_factory=Counter)
    pending: Counter[str] = field(default_factory=Counter)
    """Instances still waiting for an eligible card when generation ended."""


@dataclass
class _CardState:
    count: int = 0
    last_ms: int = 0
    anomaly_done: bool = False
    stopped: bool = False
    plan: deque[tuple[str | None, float, str, City]] = field(default_factory=deque)
    """Planned pattern transactions: (label, EUR amount, merchant, city)."""


class FraudDataGenerator:
    """The population (cards, merchants, blocked merchants, limits) and the transactions."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        rng = random.Random(self.config.seed)
        self.merchants: dict[str, tuple[str, ...]] = {
            city.name: tuple(f"merchant-{c:02d}{m:02d}" for m in range(MERCHANTS_PER_CITY))
            for c, city in enumerate(CITIES)
        }
        self.blocked_merchants: dict[str, dict[str, Any]] = {
            f"merchant-9{m:03d}": {"reason": "confirmed-fraud", "case": f"case-{1000 + m}"}
            for m in range(BLOCKED_MERCHANTS)
        }
        self.far_cities: dict[str, tuple[City, ...]] = {
            city.name: tuple(
                other
                for other in CITIES
                if haversine_km(city.lat, city.lon, other.lat, other.lon) >= TRAVEL_MIN_KM
            )
            for city in CITIES
        }
        # A card whose gaps average g ms makes 1000/g transactions per second; with the
        # extra gap's mean uniform in [a, b], a card makes ln((m+b)/(m+a))/(b-a) on average.
        low, high = (MIN_GAP_MS + x for x in EXTRA_GAP_MEAN_MS)
        per_card = 1000 * math.log(high / low) / (high - low)
        rates = self.config.pattern_rates
        extra = (9 * rates.get(VELOCITY, 0.0) + 3.5 * rates.get(SPEND_BURST, 0.0)) / 1000
        normal = max(1, math.ceil(self.config.rate / (1 + extra) / per_card))
        fresh_rates = sum(self.config.pattern_rates.get(k, 0.0) for k in (VELOCITY, SPEND_BURST))
        fresh = math.ceil(self.config.events * fresh_rates / 1000) + 2
        self.cards: list[Card] = [
            self._make_card(rng, i, fresh=i >= normal) for i in range(normal + fresh)
        ]

    def _make_card(self, rng: random.Random, index: int, *, fresh: bool) -> Card:
        city = rng.choice(CITIES)
        lat, lon = point_near(rng, city.lat, city.lon, HOME_RADIUS_KM)
        typical = math.exp(rng.uniform(math.log(TYPICAL_EUR[0]), math.log(TYPICAL_EUR[1])))
        merchants = tuple(rng.sample(self.merchants[city.name], rng.randint(3, 6)))
        return Card(
            id=f"card-{index:06d}",
            city=city,
            lat=lat,
            lon=lon,
            typical_eur=typical,
            extra_gap_mean_ms=rng.uniform(*EXTRA_GAP_MEAN_MS),
            merchants=merchants,
            limit_eur=math.ceil(LIMIT_MULTIPLE * typical / 100) * 100,
            fresh=fresh,
        )

    # --- reference data --------------------------------------------------------------------

    def card_limits(self) -> Iterator[tuple[str, dict[str, float]]]:
        """``(card id, {"limit": EUR})`` rows for the ``card-limits`` table."""
        for card in self.cards:
            yield card.id, {"limit": card.limit_eur}

    # --- transactions ------------------------------------------------------------------------

    def transactions(
        self, start_ms: int, stats: GenerationStats | None = None
    ) -> Iterator[LabeledTransaction]:
        """The ``events`` transactions in event-time order, labelled; ``stats`` (if given)
        is updated as they are generated."""
        cfg = self.config
        stats = stats if stats is not None else GenerationStats()
        rng = random.Random(cfg.seed * 1_000_003 + 1)
        states = [_CardState() for _ in self.cards]
        heap: list[tuple[int, int, int]] = []
        seq = 0
        fresh = deque(i for i, card in enumerate(self.cards) if card.fresh)
        for i, card in enumerate(self.cards):
            if not card.fresh:
                heap.append((self._first_time(rng, card), seq, i))
                seq += 1
        heapq.heapify(heap)
        # Staggered, so that the kinds' instances do not all start at the same transaction.
        credit = {kind: i / len(KINDS) for i, kind in enumerate(KINDS)}
        due: Counter[str] = Counter()
        while stats.transactions < cfg.events and heap:
            now, _, index = heapq.heappop(heap)
            card, state = self.cards[index], states[index]
            for kind in KINDS:
                credit[kind] += cfg.pattern_rates.get(kind, 0.0) / 1000
                if credit[kind] >= 1.0:
                    credit[kind] -= 1.0
                    due[kind] += 1
            for kind in (VELOCITY, SPEND_BURST):
                while due[kind] and fresh:
                    due[kind] -= 1
                    stats.instances[kind] += 1
                    target = fresh.popleft()
                    for offset in self._plan_fresh(rng, kind, target, states[target]):
                        heapq.heappush(heap, (now + offset, seq, target))
                        seq += 1
            if state.plan:
                label, eur, merchant, city = state.plan.popleft()
                if not state.plan:
                    state.stopped = True
            else:
                label, eur, merchant, city = self._next_normal(rng, card, state, due, stats)
            tx = self._transaction(
                rng, stats.transactions, card, start_ms + now, eur, merchant, city
            )
            state.count += 1
            state.last_ms = now
            stats.transactions += 1
            if label is not None:
                stats.labeled[label] += 1
            if not state.stopped and not state.plan and not card.fresh:
                heapq.heappush(heap, (now + self._gap(rng, card), seq, index))
                seq += 1
            yield LabeledTransaction(tx, label)
        stats.pending = +due

    def _gap(self, rng: random.Random, card: Card) -> int:
        return int(min(MIN_GAP_MS + rng.expovariate(1 / card.extra_gap_mean_ms), MAX_GAP_MS))

    def _first_time(self, rng: random.Random, card: Card) -> int:
        """When the card's first transaction falls, as if it had been active before 0 (so
        the rate is steady from the start, not bunched at the beginning)."""
        t = -MAX_GAP_MS + int(rng.uniform(0, MIN_GAP_MS + card.extra_gap_mean_ms))
        while t < 0:
            t += self._gap(rng, card)
        return t

    def _plan_fresh(
        self, rng: random.Random, kind: str, index: int, state: _CardState
    ) -> list[int]:
        """Plan a fresh card's burst; return the offsets (ms from now) of its transactions."""
        card = self.cards[index]
        offsets: list[int] = []
        t = rng.uniform(0, 1_000)
        if kind == VELOCITY:
            n = rng.randint(8, 10)
            for i in range(1, n + 1):
                label = VELOCITY if i > VELOCITY_MAX_TRANSACTIONS else None
                merchant = rng.choice(card.merchants)
                state.plan.append((label, rng.uniform(0.5, 3.0), merchant, card.city))
                offsets.append(int(t))
                t += rng.uniform(200, 800)
        else:
            n = rng.randint(3, 4)
            total = 0.0
            for _ in range(n):
                eur = card.limit_eur * rng.uniform(0.40, 0.45)
                total += eur
                label = SPEND_BURST if total > card.limit_eur else None
                state.plan.append((label, eur, rng.choice(card.merchants), card.city))
                offsets.append(int(t))
                t += rng.uniform(2_000, 6_000)
        return offsets

    def _next_normal(
        self,
        rng: random.Random,
        card: Card,
        state: _CardState,
        due: Counter[str],
        stats: GenerationStats,
    ) -> tuple[str | None, float, str, City]:
        amount = card.typical_eur * rng.uniform(*AMOUNT_SPREAD)
        if due[IMPOSSIBLE_TRAVEL] and state.count >= 1:
            due[IMPOSSIBLE_TRAVEL] -= 1
            stats.instances[IMPOSSIBLE_TRAVEL] += 1
            state.stopped = True
            city = rng.choice(self.far_cities[card.city.name])
            return IMPOSSIBLE_TRAVEL, amount, rng.choice(self.merchants[city.name]), city
        if due[AMOUNT_ANOMALY] and state.count >= ANOMALY_MIN_HISTORY and not state.anomaly_done:
            due[AMOUNT_ANOMALY] -= 1
            stats.instances[AMOUNT_ANOMALY] += 1
            state.anomaly_done = True
            eur = card.typical_eur * rng.uniform(12, 20)
            return AMOUNT_ANOMALY, eur, rng.choice(card.merchants), card.city
        if due[BLOCKED_MERCHANT]:
            due[BLOCKED_MERCHANT] -= 1
            stats.instances[BLOCKED_MERCHANT] += 1
            merchant = rng.choice(sorted(self.blocked_merchants))
            return BLOCKED_MERCHANT, amount, merchant, card.city
        return None, amount, rng.choice(card.merchants), card.city

    def _transaction(
        self,
        rng: random.Random,
        number: int,
        card: Card,
        ts: int,
        eur: float,
        merchant: str,
        city: City,
    ) -> dict[str, Any]:
        if city is card.city:
            lat, lon = point_near(rng, card.lat, card.lon, TX_RADIUS_KM)
        else:
            lat, lon = point_near(rng, city.lat, city.lon, TX_RADIUS_KM)
        return {
            "id": f"tx-{number:08d}",
            "card": card.id,
            "amount": round_amount(eur, city.currency),
            "currency": city.currency,
            "merchant": merchant,
            "country": city.country,
            "lat": round(lat, 5),
            "lon": round(lon, 5),
            "ts": ts,
        }


if __name__ == "__main__":
    from streamer.demo.generator_cli import main

    sys.exit(main())
