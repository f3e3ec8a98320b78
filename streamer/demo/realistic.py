"""The realistic traffic mode: attacks of varying strength, and legitimate episodes that
look like fraud to some rule.

:class:`~streamer.demo.generator.FraudDataGenerator` calls these functions to plan a turn of
a card; they return what the card does now and what it plans for later (offsets in ms from
now). Every number here is documented in ``docs/fraud.md`` ("The realistic mode").

Attacks (the ground truth labels every transaction of one with its kind and attack id):

``velocity``
    Card testing on a fresh card: 4-12 tiny purchases (0.5-3 EUR) 0.3-3 s apart. Slow or
    short ones stay within the velocity limit.
``spend_burst``
    Bust-out on a fresh card: 3-6 purchases of 25-50 % of its limit, 2-15 s apart.
``amount_anomaly``
    One purchase of 2-15 times the card's typical amount (a card with at least 4 earlier
    transactions); the card goes on as before.
``impossible_travel``
    The card's next purchase is in a city at least 1,500 km away, followed by 1-3 more there
    (2-6 times its typical amount, 1-4 s apart); the card is blocked after.
``blocked_merchant``
    One purchase at a merchant of the ``blocked-merchants`` table; the card goes on.

Legitimate episodes, on ordinary cards (never labelled):

``transit``
    4-9 taps of 1.5-4 EUR at the city's transit operator, 0.6-2.5 s apart, interleaved with
    the card's other purchases: looks like card testing.
``big_purchase``
    One purchase of 3-15 times the card's typical amount: looks like an amount anomaly.
``travel_booking``
    One purchase at an online merchant (a hotel, an airline) registered in a city 1,500 km
    or more away, located there; the next purchase is at home again: two hops that look
    like impossible travel.
``traveller``
    The card's purchases move to a city 1,500 km or more away and stay there. The demo
    compresses time (a card pays every few seconds), so the trip looks like impossible
    travel, as a real trip does when the last purchase at home posts late.
``spending_shift``
    The card's typical amount is multiplied by 2-4 from now on (a new household, a new
    job): its first larger purchases look like amount anomalies until its profile adapts.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from streamer.demo.world import (
    AMOUNT_ANOMALY,
    ANOMALY_MIN_HISTORY,
    BIG_PURCHASE,
    BLOCKED_MERCHANT,
    IMPOSSIBLE_TRAVEL,
    LEGIT_KINDS,
    SPENDING_SHIFT,
    TRANSIT,
    TRAVEL_BOOKING,
    TRAVELLER,
    VELOCITY,
    Card,
    City,
)

NORMAL_SPREAD_SIGMA = 0.35
"""Legitimate amounts are the typical amount times ``exp(N(0, sigma))``."""


def default_legit_rates() -> dict[str, float]:
    """Legitimate episodes per 1,000 transactions, by kind."""
    return {
        TRANSIT: 3.0,
        BIG_PURCHASE: 3.0,
        TRAVEL_BOOKING: 1.5,
        TRAVELLER: 1.0,
        SPENDING_SHIFT: 1.0,
    }


@dataclass(frozen=True, slots=True)
class Planned:
    """One transaction a card will make: its amount (EUR), where, and which attack (if
    any) it belongs to, with the label the ground truth gives it."""

    label: str | None
    eur: float
    merchant: str
    city: City
    attack: str | None = None
    last: bool = False
    """The card makes no transaction after this one (fresh cards, blocked cards)."""


@dataclass
class CardState:
    count: int = 0
    anomaly_done: bool = False
    stopped: bool = False
    shift: float = 1.0
    """Multiplies the card's typical amount (a spending shift)."""
    away: City | None = None
    """The city a traveller moved to; None at home."""
    plan: deque[Planned] = field(default_factory=deque)
    """Conformance mode: a fresh card's planned purchases, in order."""


@dataclass(frozen=True)
class Places:
    """The generator's merchants: per city, the blocked ones, and the far cities."""

    merchants: Mapping[str, tuple[str, ...]]
    blocked: tuple[str, ...]
    far_cities: Mapping[str, tuple[City, ...]]


Turn = tuple[Planned, list[tuple[int, Planned]]]
"""What a card does now, and what it plans (offset in ms from now, transaction)."""


def normal_amount(rng: random.Random, card: Card, state: CardState) -> float:
    return card.typical_eur * state.shift * math.exp(rng.gauss(0.0, NORMAL_SPREAD_SIGMA))


def fresh_attack(
    rng: random.Random, kind: str, card: Card, attack: str
) -> list[tuple[int, Planned]]:
    """A card-testing or bust-out attack on a fresh card."""
    plan: list[tuple[int, Planned]] = []
    t = rng.uniform(0, 1_000)
    n = rng.randint(4, 12) if kind == VELOCITY else rng.randint(3, 6)
    for i in range(n):
        if kind == VELOCITY:
            eur, gap = rng.uniform(0.5, 3.0), rng.uniform(300, 3_000)
        else:
            eur, gap = card.limit_eur * rng.uniform(0.25, 0.5), rng.uniform(2_000, 15_000)
        merchant = rng.choice(card.merchants)
        plan.append((int(t), Planned(kind, eur, merchant, card.city, attack, last=i == n - 1)))
        t += gap
    return plan


def next_turn(
    rng: random.Random,
    card: Card,
    state: CardState,
    due: dict[str, int],
    places: Places,
    attack_ids: Mapping[str, str],
) -> tuple[Turn, str | None]:
    """The card's turn: an attack or legitimate episode that is due and that this card can
    take, else an ordinary purchase. Returns the turn and the kind it took (or None); the
    caller decrements ``due`` for it. ``attack_ids`` names the attack of each kind, should
    one be taken."""
    home = state.away or card.city
    ordinary = Planned(
        None, normal_amount(rng, card, state), _merchant(rng, card, state, places), home
    )
    if due.get(IMPOSSIBLE_TRAVEL) and state.count >= 1 and state.away is None:
        state.stopped = True
        city = rng.choice(places.far_cities[card.city.name])
        attack_id = attack_ids[IMPOSSIBLE_TRAVEL]
        merchant = rng.choice(places.merchants[city.name])
        first = Planned(IMPOSSIBLE_TRAVEL, ordinary.eur, merchant, city, attack_id)
        plan, t = [], 0
        follow = rng.randint(1, 3)
        for i in range(follow):
            t += int(rng.uniform(1_000, 4_000))
            eur = card.typical_eur * state.shift * rng.uniform(2, 6)
            merchant = rng.choice(places.merchants[city.name])
            plan.append(
                (
                    t,
                    Planned(
                        IMPOSSIBLE_TRAVEL, eur, merchant, city, attack_id, last=i == follow - 1
                    ),
                )
            )
        return (first, plan), IMPOSSIBLE_TRAVEL
    if due.get(AMOUNT_ANOMALY) and state.count >= ANOMALY_MIN_HISTORY and not state.anomaly_done:
        state.anomaly_done = True
        eur = card.typical_eur * state.shift * rng.uniform(2, 15)
        anomaly = Planned(AMOUNT_ANOMALY, eur, ordinary.merchant, home, attack_ids[AMOUNT_ANOMALY])
        return (anomaly, []), AMOUNT_ANOMALY
    if due.get(BLOCKED_MERCHANT):
        merchant = rng.choice(places.blocked)
        blocked = Planned(
            BLOCKED_MERCHANT, ordinary.eur, merchant, home, attack_ids[BLOCKED_MERCHANT]
        )
        return (blocked, []), BLOCKED_MERCHANT
    for kind in LEGIT_KINDS:
        if due.get(kind) and state.count >= 1 and not (kind == TRAVELLER and state.away):
            return _legit(rng, kind, card, state, places, ordinary), kind
    return (ordinary, []), None


def _merchant(rng: random.Random, card: Card, state: CardState, places: Places) -> str:
    if state.away is not None:
        return rng.choice(places.merchants[state.away.name])
    return rng.choice(card.merchants)


def _legit(
    rng: random.Random, kind: str, card: Card, state: CardState, places: Places, ordinary: Planned
) -> Turn:
    home = ordinary.city
    if kind == TRANSIT:
        transit = f"transit-{home.name.lower().replace(' ', '-')}"
        taps = rng.randint(4, 9)
        plan, t = [], 0
        for _ in range(taps - 1):
            t += int(rng.uniform(600, 2_500))
            plan.append((t, Planned(None, rng.uniform(1.5, 4.0), transit, home)))
        return Planned(None, rng.uniform(1.5, 4.0), transit, home), plan
    if kind == BIG_PURCHASE:
        eur = card.typical_eur * state.shift * rng.uniform(3, 15)
        return Planned(None, eur, ordinary.merchant, home), []
    if kind == TRAVEL_BOOKING:
        city = rng.choice(places.far_cities[home.name])
        merchant = f"online-{city.name.lower().replace(' ', '-')}"
        return Planned(None, card.typical_eur * rng.uniform(1, 6), merchant, city), []
    if kind == TRAVELLER:
        state.away = rng.choice(places.far_cities[card.city.name])
        merchant = rng.choice(places.merchants[state.away.name])
        return Planned(None, ordinary.eur, merchant, state.away), []
    if kind == SPENDING_SHIFT:
        state.shift *= rng.uniform(2, 4)
        return Planned(None, normal_amount(rng, card, state), ordinary.merchant, home), []
    return ordinary, []
