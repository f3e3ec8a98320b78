"""The fraud generator's world: cities, currencies, fraud kinds, cards and the limits that
keep normal behaviour inside the fraud topology's thresholds.

Pure data and geometry; :mod:`streamer.demo.generator` explains why each value is what it
is and draws the population and its transactions from it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

VELOCITY = "velocity"
SPEND_BURST = "spend_burst"
AMOUNT_ANOMALY = "amount_anomaly"
IMPOSSIBLE_TRAVEL = "impossible_travel"
BLOCKED_MERCHANT = "blocked_merchant"
KINDS = (VELOCITY, SPEND_BURST, AMOUNT_ANOMALY, IMPOSSIBLE_TRAVEL, BLOCKED_MERCHANT)
"""Fraud kinds; the same strings as the fraud topology's reason codes."""

REALISTIC = "realistic"
CONFORMANCE = "conformance"
MODES = (REALISTIC, CONFORMANCE)
"""Traffic modes: legitimate behaviour that overlaps with fraud (the demo's default), or
legitimate behaviour that stays inside every threshold (rules must flag exactly the
labelled transactions)."""

TRANSIT = "transit"
BIG_PURCHASE = "big_purchase"
TRAVEL_BOOKING = "travel_booking"
TRAVELLER = "traveller"
SPENDING_SHIFT = "spending_shift"
LEGIT_KINDS = (TRANSIT, BIG_PURCHASE, TRAVEL_BOOKING, TRAVELLER, SPENDING_SHIFT)
"""Legitimate episodes of the realistic mode that look like fraud to some rule."""

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
    """The great-circle distance between two points, in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def point_near(rng: random.Random, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
    """A uniformly random point within ``radius_km`` of ``(lat, lon)`` (flat-earth offsets)."""
    r = radius_km * math.sqrt(rng.random())
    theta = rng.uniform(0, 2 * math.pi)
    dlat = r * math.cos(theta) / 111.32
    dlon = r * math.sin(theta) / (111.32 * max(0.1, math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def round_amount(eur: float, currency: str) -> float:
    """``eur`` in ``currency``, rounded as that currency is (whole yen, else cents)."""
    local = eur / FX_TO_EUR[currency]
    return float(round(local)) if currency == "JPY" else round(local, 2)


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
