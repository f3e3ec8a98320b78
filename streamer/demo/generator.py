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

import argparse
import heapq
import json
import math
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VELOCITY = "velocity"
SPEND_BURST = "spend_burst"
AMOUNT_ANOMALY = "amount_anomaly"
IMPOSSIBLE_TRAVEL = "impossible_travel"
BLOCKED_MERCHANT = "blocked_merchant"
KINDS = (VELOCITY, SPEND_BURST, AMOUNT_ANOMALY, IMPOSSIBLE_TRAVEL, BLOCKED_MERCHANT)
"""Fraud kinds; the same strings as the fraud topology's reason codes."""

FX_TO_EUR: Mapping[str, float] = {
    "EUR": 1.0,
    "USD": 0.92,
    "GBP": 1.17,
    "CHF": 1.05,
    "CAD": 0.68,
    "JPY": 0.0062,
    "AUD": 0.61,
    "SGD": 0.69,
    "AED": 0.25,
    "BRL": 0.17,
}
"""EUR per unit; the fraud topology's default conversion table."""

# Normal behaviour (see the module docstring for why these values).
MIN_GAP_MS = 3_000
EXTRA_GAP_MEAN_MS = (2_000, 10_000)
MAX_GAP_MS = 60_000
TYPICAL_EUR = (10.0, 80.0)
AMOUNT_SPREAD = (0.7, 1.3)
HOME_RADIUS_KM = 20.0
TX_RADIUS_KM = 10.0
LIMIT_MULTIPLE = 60.0
MERCHANTS_PER_CITY = 40
BLOCKED_MERCHANTS = 20
# Thresholds of the fraud topology that pattern labels depend on (its defaults).
VELOCITY_MAX_TRANSACTIONS = 5
ANOMALY_MIN_HISTORY = 4
TRAVEL_MIN_KM = 1_500.0


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    currency: str
    lat: float
    lon: float


CITIES: tuple[City, ...] = (
    City("Paris", "FR", "EUR", 48.8566, 2.3522),
    City("Berlin", "DE", "EUR", 52.5200, 13.4050),
    City("Madrid", "ES", "EUR", 40.4168, -3.7038),
    City("Rome", "IT", "EUR", 41.9028, 12.4964),
    City("Amsterdam", "NL", "EUR", 52.3676, 4.9041),
    City("Vienna", "AT", "EUR", 48.2082, 16.3738),
    City("Lisbon", "PT", "EUR", 38.7223, -9.1393),
    City("London", "GB", "GBP", 51.5074, -0.1278),
    City("Manchester", "GB", "GBP", 53.4808, -2.2426),
    City("Zurich", "CH", "CHF", 47.3769, 8.5417),
    City("New York", "US", "USD", 40.7128, -74.0060),
    City("Chicago", "US", "USD", 41.8781, -87.6298),
    City("San Francisco", "US", "USD", 37.7749, -122.4194),
    City("Toronto", "CA", "CAD", 43.6532, -79.3832),
    City("Tokyo", "JP", "JPY", 35.6762, 139.6503),
    City("Osaka", "JP", "JPY", 34.6937, 135.5023),
    City("Sydney", "AU", "AUD", -33.8688, 151.2093),
    City("Singapore", "SG", "SGD", 1.3521, 103.8198),
    City("Dubai", "AE", "AED", 25.2048, 55.2708),
    City("Sao Paulo", "BR", "BRL", -23.5505, -46.6333),
)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


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
class Card:
    id: str
    city: City
    lat: float
    lon: float
    typical_eur: float
    extra_gap_mean_ms: float
    merchants: tuple[str, ...]
    limit_eur: float
    fresh: bool
    """Reserved for a fresh-card pattern: no normal transactions."""


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


def _point_near(
    rng: random.Random, lat: float, lon: float, radius_km: float
) -> tuple[float, float]:
    r = radius_km * math.sqrt(rng.random())
    theta = rng.uniform(0, 2 * math.pi)
    dlat = r * math.cos(theta) / 111.32
    dlon = r * math.sin(theta) / (111.32 * max(0.1, math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def _round_amount(eur: float, currency: str) -> float:
    local = eur / FX_TO_EUR[currency]
    return float(round(local)) if currency == "JPY" else round(local, 2)


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
        lat, lon = _point_near(rng, city.lat, city.lon, HOME_RADIUS_KM)
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
            lat, lon = _point_near(rng, card.lat, card.lon, TX_RADIUS_KM)
        else:
            lat, lon = _point_near(rng, city.lat, city.lon, TX_RADIUS_KM)
        return {
            "id": f"tx-{number:08d}",
            "card": card.id,
            "amount": _round_amount(eur, city.currency),
            "currency": city.currency,
            "merchant": merchant,
            "country": city.country,
            "lat": round(lat, 5),
            "lon": round(lon, 5),
            "ts": ts,
        }


# --- ground truth ----------------------------------------------------------------------------


def write_ground_truth(path: Path, labeled: Iterable[tuple[str, str | None]]) -> int:
    """Write ``{"id": ..., "kind": ...}`` lines (kind None for legitimate transactions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as out:
        for tx_id, kind in labeled:
            out.write(json.dumps({"id": tx_id, "kind": kind}) + "\n")
            count += 1
    return count


def read_ground_truth(path: Path) -> dict[str, str | None]:
    truth: dict[str, str | None] = {}
    with path.open() as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                truth[row["id"]] = row["kind"]
    return truth


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m streamer.demo.generator``: produce to a running cluster (e.g. for
    ``streamer run topologies/fraud.py``), or write the transactions as JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m streamer.demo.generator", description=__doc__)
    parser.add_argument("--events", type=int, default=GeneratorConfig.events)
    parser.add_argument("--rate", type=float, default=GeneratorConfig.rate, help="per second")
    parser.add_argument("--seed", type=int, default=GeneratorConfig.seed)
    parser.add_argument("--bootstrap-servers", help="produce here; else print JSON lines")
    parser.add_argument("--topic", default="transactions")
    parser.add_argument("--blocked-merchants-topic", default="blocked-merchants")
    parser.add_argument("--card-limits-topic", default="card-limits")
    parser.add_argument("--truth", type=Path, help="write the ground truth here")
    parser.add_argument(
        "--fast", action="store_true", help="produce as fast as possible, not in real time"
    )
    args = parser.parse_args(argv)
    generator = FraudDataGenerator(
        GeneratorConfig(seed=args.seed, events=args.events, rate=args.rate)
    )
    stats = GenerationStats()
    start_ms = int(time.time() * 1000) + 1_000
    labels: list[tuple[str, str | None]] = []
    records = generator.transactions(start_ms, stats)
    if args.bootstrap_servers is None:
        for item in records:
            labels.append((item.tx["id"], item.kind))
            sys.stdout.write(json.dumps(item.tx) + "\n")
    else:
        from streamer.kafka.clients import produce, produce_paced

        servers = args.bootstrap_servers
        produce(
            servers,
            args.blocked_merchants_topic,
            (
                (m.encode(), json.dumps(row).encode())
                for m, row in generator.blocked_merchants.items()
            ),
        )
        produce(
            servers,
            args.card_limits_topic,
            ((c.encode(), json.dumps(row).encode()) for c, row in generator.card_limits()),
        )

        def paced() -> Iterator[tuple[int | None, bytes, bytes]]:
            for item in records:
                labels.append((item.tx["id"], item.kind))
                due = None if args.fast else item.tx["ts"]
                yield due, item.tx["card"].encode(), json.dumps(item.tx).encode()

        def progress(sent: int) -> None:
            print(f"\rproduced {sent:,}/{args.events:,}", end="", file=sys.stderr, flush=True)

        produce_paced(servers, args.topic, paced(), on_progress=progress)
        print(file=sys.stderr)
    if args.truth is not None:
        write_ground_truth(args.truth, labels)
    print(
        f"{stats.transactions:,} transactions; patterns "
        + ", ".join(f"{k} {stats.instances[k]} ({stats.labeled[k]} tx)" for k in KINDS),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
