"""The generator's conformance mode: attacks that a correct rule must flag, exactly.

Legitimate behaviour stays inside every threshold (see :mod:`streamer.demo.generator`), and
each attack labels exactly the transactions that its rule's specification flags. Both
functions draw from ``rng`` in a fixed order: the same seed gives the same data.
"""

from __future__ import annotations

import random
from collections import Counter

from streamer.demo.realistic import CardState, Places, Planned
from streamer.demo.world import (
    AMOUNT_ANOMALY,
    AMOUNT_SPREAD,
    ANOMALY_MIN_HISTORY,
    BLOCKED_MERCHANT,
    IMPOSSIBLE_TRAVEL,
    SPEND_BURST,
    VELOCITY,
    VELOCITY_MAX_TRANSACTIONS,
    Card,
)

_SINGLE_TRANSACTION_KINDS = (IMPOSSIBLE_TRAVEL, AMOUNT_ANOMALY, BLOCKED_MERCHANT)


def conformance_fresh_attack(
    rng: random.Random, kind: str, card: Card, attack: str
) -> list[tuple[int, Planned]]:
    """A fresh card's burst (``velocity`` or ``spend_burst``): (offset in ms from now,
    transaction) pairs, labelled where the rule must fire."""
    plan: list[tuple[int, Planned]] = []
    t = rng.uniform(0, 1_000)
    if kind == VELOCITY:
        n = rng.randint(8, 10)
        for i in range(1, n + 1):
            label = VELOCITY if i > VELOCITY_MAX_TRANSACTIONS else None
            merchant = rng.choice(card.merchants)
            item = Planned(label, rng.uniform(0.5, 3.0), merchant, card.city, attack, i == n)
            plan.append((int(t), item))
            t += rng.uniform(200, 800)
        return plan
    n = rng.randint(3, 4)
    total = 0.0
    for i in range(n):
        eur = card.limit_eur * rng.uniform(0.40, 0.45)
        total += eur
        label = SPEND_BURST if total > card.limit_eur else None
        merchant = rng.choice(card.merchants)
        plan.append((int(t), Planned(label, eur, merchant, card.city, attack, i == n - 1)))
        t += rng.uniform(2_000, 6_000)
    return plan


def conformance_turn(
    rng: random.Random,
    card: Card,
    state: CardState,
    due: Counter[str],
    instances: Counter[str],
    places: Places,
) -> Planned:
    """A normal card's turn: a single-transaction attack that is due and that this card
    can take (taking it from ``due`` and counting it in ``instances``), else an ordinary
    purchase within the card's envelope."""
    amount = card.typical_eur * rng.uniform(*AMOUNT_SPREAD)
    for kind in _SINGLE_TRANSACTION_KINDS:
        eligible = {
            IMPOSSIBLE_TRAVEL: state.count >= 1,
            AMOUNT_ANOMALY: state.count >= ANOMALY_MIN_HISTORY and not state.anomaly_done,
            BLOCKED_MERCHANT: True,
        }[kind]
        if not (due[kind] and eligible):
            continue
        due[kind] -= 1
        instances[kind] += 1
        attack = f"{kind}-{instances[kind]:04d}"
        if kind == IMPOSSIBLE_TRAVEL:
            state.stopped = True
            city = rng.choice(places.far_cities[card.city.name])
            merchant = rng.choice(places.merchants[city.name])
            return Planned(kind, amount, merchant, city, attack)
        if kind == AMOUNT_ANOMALY:
            state.anomaly_done = True
            eur = card.typical_eur * rng.uniform(12, 20)
            return Planned(kind, eur, rng.choice(card.merchants), card.city, attack)
        merchant = rng.choice(places.blocked)
        return Planned(kind, amount, merchant, card.city, attack)
    return Planned(None, amount, rng.choice(card.merchants), card.city)
