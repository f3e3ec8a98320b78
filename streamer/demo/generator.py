"""Synthetic card transactions with injected fraud patterns, and their ground truth.

Two modes. In the **realistic** mode (the default, and the demo's), attacks vary in
strength and some legitimate cards behave like fraud: transit taps, large purchases, travel
bookings abroad, travellers, spending shifts (:mod:`streamer.demo.realistic` describes them
and the knobs that set their share). The ground truth labels every transaction of an
injected attack with its kind and attack id: how well the rules *detect* fraud is measured
against it. In the **conformance** mode, described below, legitimate behaviour stays inside
every threshold and the ground truth labels exactly what a correct rule must flag: it checks
that the rules do what their specification says.

Deterministic: the same :class:`GeneratorConfig` (seed included) and start time give the
same transactions, byte for byte. Event time (``ts``) is ``start_ms`` plus a planned offset,
so the data does not depend on how fast it is produced; ``rate`` sets how many transactions
fall in each second of event time, and a producer that sends each one at its ``ts`` (see
:func:`streamer.kafka.clients.produce_paced`) runs in real time.

The population (both modes). Each normal card has a home city (and a home point within 20 km of its
centre), a currency, 3-6 favourite merchants of its city, a typical amount ``T`` (EUR,
log-uniform in 10-80) and its own pace. Its transactions are at least 3 s apart (3 s plus
an exponential gap whose mean, 2-10 s, is the card's habit; at most 60 s), each within 10 km
of home, at one of its merchants, for ``T`` times 0.7-1.3. Its spend limit (the
``card-limits`` table) is ``60 * T`` rounded up to 100 EUR.

Conformance mode. Normal behaviour stays inside what the fraud topology's default thresholds
allow, with a margin, by construction: at most 4 transactions in any 10 s (velocity fires
above 5); at most 21 in any 60 s, so at most ``27.3 * T`` spent (the limit is ``60 * T``);
amounts within ``0.7-1.3 * T`` (a z-score of at most about 3, the threshold is 6); at most
20 km between two transactions (impossible travel needs 100 km). No normal card uses a
blocked merchant.

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

from streamer.demo.conformance import conformance_fresh_attack, conformance_turn
from streamer.demo.realistic import (
    CardState,
    Places,
    Planned,
    default_legit_rates,
    fresh_attack,
    next_turn,
)
from streamer.demo.world import (
    BLOCKED_MERCHANTS,
    CITIES,
    EXTRA_GAP_MEAN_MS,
    HOME_RADIUS_KM,
    IMPOSSIBLE_TRAVEL,
    KINDS,
    LEGIT_KINDS,
    LIMIT_MULTIPLE,
    MAX_GAP_MS,
    MERCHANTS_PER_CITY,
    MIN_GAP_MS,
    MODES,
    REALISTIC,
    SPEND_BURST,
    TRANSIT,
    TRAVEL_MIN_KM,
    TX_RADIUS_KM,
    TYPICAL_EUR,
    VELOCITY,
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
    """``events`` transactions, ``rate`` per second of event time, attacks at
    ``pattern_rates[kind]`` instances per 1,000 transactions; in the realistic ``mode``,
    legitimate look-alike episodes at ``legit_rates[kind]`` per 1,000 transactions (see
    :mod:`streamer.demo.realistic`)."""

    seed: int = 7
    events: int = 25_000
    rate: float = 500.0
    pattern_rates: Mapping[str, float] = field(default_factory=_default_rates)
    mode: str = REALISTIC
    legit_rates: Mapping[str, float] = field(default_factory=default_legit_rates)

    def __post_init__(self) -> None:
        if self.events < 0:
            msg = f"events must be >= 0, got {self.events}"
            raise ValueError(msg)
        if self.rate <= 0:
            msg = f"rate must be positive, got {self.rate}"
            raise ValueError(msg)
        if self.mode not in MODES:
            msg = f"mode must be one of {', '.join(MODES)}, got {self.mode!r}"
            raise ValueError(msg)
        for rates, known, what in (
            (self.pattern_rates, KINDS, "pattern"),
            (self.legit_rates, LEGIT_KINDS, "legitimate episode"),
        ):
            unknown = set(rates) - set(known)
            if unknown:
                msg = f"unknown {what} kinds {sorted(unknown)}; known: {', '.join(known)}"
                raise ValueError(msg)
            if any(r < 0 for r in rates.values()):
                msg = f"{what} rates must be >= 0"
                raise ValueError(msg)

    @property
    def duration_s(self) -> float:
        """The event-time span of the data, roughly."""
        return self.events / self.rate


@dataclass(frozen=True, slots=True)
class LabeledTransaction:
    tx: dict[str, Any]
    kind: str | None
    """Conformance mode: the fraud kind the fraud topology must flag this transaction for,
    or None. Realistic mode: the kind of the attack it belongs to, or None."""
    attack: str | None = None
    """The id of the injected attack this transaction belongs to (both modes), or None."""


@dataclass
class GenerationStats:
    transactions: int = 0
    instances: Counter[str] = field(default_factory=Counter)
    labeled: Counter[str] = field(default_factory=Counter)
    pending: Counter[str] = field(default_factory=Counter)
    """Instances still waiting for an eligible card when generation ended."""
    episodes: Counter[str] = field(default_factory=Counter)
    """Legitimate look-alike episodes (realistic mode)."""


_Entry = tuple[int, int, int, Planned | None]
"""A heap entry: (time, sequence, card index, planned transaction or None for the card's
next ordinary turn)."""


class FraudDataGenerator:
    """The population (cards, merchants, blocked merchants, limits) and the transactions."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        self.realistic = self.config.mode == REALISTIC
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
        self.places = Places(self.merchants, tuple(sorted(self.blocked_merchants)), self.far_cities)
        # A card whose gaps average g ms makes 1000/g transactions per second; with the
        # extra gap's mean uniform in [a, b], a card makes ln((m+b)/(m+a))/(b-a) on average.
        low, high = (MIN_GAP_MS + x for x in EXTRA_GAP_MEAN_MS)
        per_card = 1000 * math.log(high / low) / (high - low)
        rates, legit = self.config.pattern_rates, self.config.legit_rates
        if self.realistic:
            extra = 8 * rates.get(VELOCITY, 0.0) + 4.5 * rates.get(SPEND_BURST, 0.0)
            extra += 2 * rates.get(IMPOSSIBLE_TRAVEL, 0.0) + 5.5 * legit.get(TRANSIT, 0.0)
        else:
            extra = 9 * rates.get(VELOCITY, 0.0) + 3.5 * rates.get(SPEND_BURST, 0.0)
        normal = max(1, math.ceil(self.config.rate / (1 + extra / 1000) / per_card))
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
        states = [CardState() for _ in self.cards]
        heap: list[_Entry] = []
        seq = 0
        fresh = deque(i for i, card in enumerate(self.cards) if card.fresh)
        for i, card in enumerate(self.cards):
            if not card.fresh:
                heap.append((self._first_time(rng, card), seq, i, None))
                seq += 1
        heapq.heapify(heap)
        rates = dict(cfg.pattern_rates)
        if self.realistic:
            rates |= cfg.legit_rates
        # Staggered, so that the kinds' instances do not all start at the same transaction.
        credit = {kind: i / len(rates) for i, kind in enumerate(sorted(rates))}
        due: Counter[str] = Counter()
        while stats.transactions < cfg.events and heap:
            now, _, index, planned = heapq.heappop(heap)
            card, state = self.cards[index], states[index]
            if planned is None and state.stopped:
                continue  # an attack took the card over: no more ordinary turns
            for kind, rate in rates.items():
                credit[kind] += rate / 1000
                if credit[kind] >= 1.0:
                    credit[kind] -= 1.0
                    due[kind] += 1
            for kind in (VELOCITY, SPEND_BURST):
                while due[kind] and fresh:
                    due[kind] -= 1
                    stats.instances[kind] += 1
                    attack = f"{kind}-{stats.instances[kind]:04d}"
                    target = fresh.popleft()
                    for offset, item in self._plan_fresh(rng, kind, target, attack):
                        heapq.heappush(heap, (now + offset, seq, target, item))
                        seq += 1
            if planned is None:
                planned, later = self._turn(rng, card, state, due, stats)
                for offset, item in later:
                    heapq.heappush(heap, (now + offset, seq, index, item))
                    seq += 1
                if not state.stopped:
                    heapq.heappush(heap, (now + self._gap(rng, card), seq, index, None))
                    seq += 1
            elif planned.last:
                state.stopped = True
            tx = self._transaction(rng, stats.transactions, card, start_ms + now, planned)
            state.count += 1
            stats.transactions += 1
            if planned.label is not None:
                stats.labeled[planned.label] += 1
            yield LabeledTransaction(tx, planned.label, planned.attack)
        stats.pending = +Counter({k: n for k, n in due.items() if k in KINDS})

    def _turn(
        self,
        rng: random.Random,
        card: Card,
        state: CardState,
        due: Counter[str],
        stats: GenerationStats,
    ) -> tuple[Planned, list[tuple[int, Planned]]]:
        """A normal card's turn: an attack or episode that is due, or an ordinary purchase."""
        if self.realistic:
            ids = {k: f"{k}-{stats.instances[k] + 1:04d}" for k in KINDS}
            (planned, later), taken = next_turn(rng, card, state, due, self.places, ids)
            if taken is not None:
                due[taken] -= 1
                if taken in KINDS:
                    stats.instances[taken] += 1
                else:
                    stats.episodes[taken] += 1
            return planned, later
        return conformance_turn(rng, card, state, due, stats.instances, self.places), []

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
        self, rng: random.Random, kind: str, index: int, attack: str
    ) -> list[tuple[int, Planned]]:
        """Plan a fresh card's burst: (offset in ms from now, transaction) pairs."""
        card = self.cards[index]
        if self.realistic:
            return fresh_attack(rng, kind, card, attack)
        return conformance_fresh_attack(rng, kind, card, attack)

    def _transaction(
        self, rng: random.Random, number: int, card: Card, ts: int, planned: Planned
    ) -> dict[str, Any]:
        city = planned.city
        if city is card.city:
            lat, lon = point_near(rng, card.lat, card.lon, TX_RADIUS_KM)
        else:
            lat, lon = point_near(rng, city.lat, city.lon, TX_RADIUS_KM)
        return {
            "id": f"tx-{number:08d}",
            "card": card.id,
            "amount": round_amount(planned.eur, city.currency),
            "currency": city.currency,
            "merchant": planned.merchant,
            "country": city.country,
            "lat": round(lat, 5),
            "lon": round(lon, 5),
            "ts": ts,
        }


if __name__ == "__main__":
    from streamer.demo.generator_cli import main

    sys.exit(main())
