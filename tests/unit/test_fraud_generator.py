"""The fraud data generator: determinism, rates, the normal envelope, labels, scoring."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streamer.demo import world
from streamer.demo.generator import (
    FraudDataGenerator,
    GenerationStats,
    GeneratorConfig,
    LabeledTransaction,
)
from streamer.demo.ground_truth import read_ground_truth, write_ground_truth
from streamer.demo.scoring import percentile, score_alerts
from streamer.demo.world import KINDS
from streamer.testing import TopologyTestDriver
from topologies.fraud import FraudConfig, build, haversine_km

START = 1_700_000_000_000


def generate(**overrides: Any) -> tuple[list[LabeledTransaction], GenerationStats]:
    stats = GenerationStats()
    overrides.setdefault("mode", world.CONFORMANCE)
    items = list(FraudDataGenerator(GeneratorConfig(**overrides)).transactions(START, stats))
    return items, stats


@pytest.fixture(scope="module")
def sample() -> tuple[list[LabeledTransaction], GenerationStats]:
    return generate(seed=11, events=12_000, rate=400.0)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, _ = generate(seed=3, events=3_000)
    again, _ = generate(seed=3, events=3_000)
    other, _ = generate(seed=4, events=3_000)
    dump = [json.dumps(i.tx) + str(i.kind) for i in first]
    assert dump == [json.dumps(i.tx) + str(i.kind) for i in again]
    assert dump != [json.dumps(i.tx) + str(i.kind) for i in other]
    limits = list(FraudDataGenerator(GeneratorConfig(seed=3)).card_limits())
    assert limits == list(FraudDataGenerator(GeneratorConfig(seed=3)).card_limits())


def test_count_order_ids_and_rate(sample: tuple[list[LabeledTransaction], GenerationStats]) -> None:
    items, stats = sample
    assert len(items) == stats.transactions == 12_000
    times = [i.tx["ts"] for i in items]
    assert times == sorted(times)
    assert times[0] >= START
    assert len({i.tx["id"] for i in items}) == len(items)
    rate = len(items) / ((times[-1] - times[0]) / 1000)
    assert rate == pytest.approx(400, rel=0.05)


def test_patterns_are_injected_at_their_rates(
    sample: tuple[list[LabeledTransaction], GenerationStats],
) -> None:
    items, stats = sample
    for kind in KINDS:
        # 1.5 per 1,000 transactions; instances waiting for an eligible card are pending
        assert stats.instances[kind] + stats.pending[kind] in (17, 18), kind
        assert stats.instances[kind] >= 16, kind
    labeled = defaultdict(int)
    for item in items:
        if item.kind is not None:
            labeled[item.kind] += 1
    assert dict(labeled) == dict(stats.labeled)
    for kind in (world.AMOUNT_ANOMALY, world.IMPOSSIBLE_TRAVEL, world.BLOCKED_MERCHANT):
        assert labeled[kind] == stats.instances[kind]
    # bursts label their transactions past the limit: 3-5 for velocity, 1-2 for spend
    assert 3 * stats.instances[world.VELOCITY] - 5 <= labeled[world.VELOCITY]
    assert labeled[world.VELOCITY] <= 5 * stats.instances[world.VELOCITY]
    assert stats.instances[world.SPEND_BURST] - 2 <= labeled[world.SPEND_BURST]
    assert labeled[world.SPEND_BURST] <= 2 * stats.instances[world.SPEND_BURST]


def test_pattern_rates_are_configurable() -> None:
    rates = {world.VELOCITY: 0.0, world.SPEND_BURST: 0.0, world.BLOCKED_MERCHANT: 10.0}
    rates |= {world.AMOUNT_ANOMALY: 0.0, world.IMPOSSIBLE_TRAVEL: 0.0}
    items, stats = generate(seed=5, events=2_000, pattern_rates=rates)
    assert dict(stats.instances) == {world.BLOCKED_MERCHANT: 20}
    assert sum(1 for i in items if i.kind is not None) == 20
    with pytest.raises(ValueError, match="unknown pattern kinds"):
        GeneratorConfig(pattern_rates={"phishing": 1.0})


def test_normal_cards_stay_inside_the_envelope(
    sample: tuple[list[LabeledTransaction], GenerationStats],
) -> None:
    items, _ = sample
    generator = FraudDataGenerator(
        GeneratorConfig(seed=11, events=12_000, rate=400.0, mode=world.CONFORMANCE)
    )
    cards = {card.id: card for card in generator.cards}
    by_card: dict[str, list[LabeledTransaction]] = defaultdict(list)
    for item in items:
        by_card[item.tx["card"]].append(item)
    checked = 0
    for card_id, history in by_card.items():
        card = cards[card_id]
        if card.fresh or any(i.kind is not None for i in history):
            continue
        checked += 1
        for previous, item in itertools.pairwise(history):
            assert item.tx["ts"] - previous.tx["ts"] >= world.MIN_GAP_MS
            km = haversine_km(
                previous.tx["lat"], previous.tx["lon"], item.tx["lat"], item.tx["lon"]
            )
            assert km <= 2 * world.TX_RADIUS_KM
        for item in history:
            eur = item.tx["amount"] * world.FX_TO_EUR[item.tx["currency"]]
            assert 0.69 * card.typical_eur <= eur <= 1.31 * card.typical_eur
            assert item.tx["merchant"] in card.merchants
            assert item.tx["merchant"] not in generator.blocked_merchants
            assert item.tx["currency"] == card.city.currency
    assert checked > 1_000


def test_generator_is_built_for_the_topologys_default_thresholds() -> None:
    config = FraudConfig()
    assert dict(config.fx_to_eur) == dict(world.FX_TO_EUR)
    assert config.velocity_max_transactions == world.VELOCITY_MAX_TRANSACTIONS
    assert config.anomaly_min_history == world.ANOMALY_MIN_HISTORY
    assert world.TRAVEL_MIN_KM > config.travel_min_distance_km > 2 * world.TX_RADIUS_KM
    assert set(KINDS) == {"velocity", "spend_burst", "amount_anomaly"} | {
        "impossible_travel",
        "blocked_merchant",
    }
    # at most ceil(window / min gap) + 1 normal transactions fit in a window
    in_velocity_window = config.velocity_window_ms // world.MIN_GAP_MS + 1
    assert in_velocity_window <= config.velocity_max_transactions
    in_spend_window = config.spend_window_ms // world.MIN_GAP_MS + 1
    anomaly_max = 20
    assert in_spend_window * world.AMOUNT_SPREAD[1] + anomaly_max < world.LIMIT_MULTIPLE


def test_every_label_is_detected_and_nothing_else_through_the_driver() -> None:
    generator = FraudDataGenerator(
        GeneratorConfig(seed=23, events=8_000, rate=300.0, mode=world.CONFORMANCE)
    )
    stats = GenerationStats()
    items = list(generator.transactions(START, stats))
    with TopologyTestDriver(build(FraudConfig()), partitions={"transactions": 4}) as driver:
        for merchant, row in generator.blocked_merchants.items():
            driver.pipe("blocked-merchants", merchant, row)
        for card, row in generator.card_limits():
            driver.pipe("card-limits", card, row)
        for item in items:
            driver.pipe("transactions", item.tx["card"], item.tx, timestamp=item.tx["ts"])
        alerts = driver.read_values("alerts")
        assert driver.read_values("transactions-invalid") == []
        assert "fraud-late-transactions" not in driver.counters()
    score = score_alerts({i.tx["id"]: i.kind for i in items}, alerts)
    assert score.duplicate_alerts == 0
    assert score.unknown_transactions == 0
    for kind in KINDS:
        pattern = score.patterns[kind]
        assert pattern.labelled > 0, kind
        assert (pattern.false_positives, pattern.false_negatives) == (0, 0), kind
    assert all(len(combo) == 1 for combo in score.combinations)


def test_ground_truth_round_trip(tmp_path: Path) -> None:
    labels = [
        {"id": "tx-1", "card": "c-1", "ts": 5, "kind": None, "attack": None},
        {"id": "tx-2", "card": "c-2", "ts": 6, "kind": "velocity", "attack": "velocity-0001"},
    ]
    path = tmp_path / "truth" / "ground-truth.jsonl"
    assert write_ground_truth(path, labels) == 2
    assert read_ground_truth(path) == labels


def test_scoring_counts_hits_misses_false_alarms_and_duplicates() -> None:
    truth = {"a": "velocity", "b": "velocity", "c": None, "d": "blocked_merchant"}
    alerts = [
        {"tx_id": "a", "reasons": ["velocity"]},
        {"tx_id": "a", "reasons": ["velocity"]},
        {"tx_id": "c", "reasons": ["velocity", "blocked_merchant"]},
        {"tx_id": "zz", "reasons": ["spend_burst"]},
    ]
    score = score_alerts(truth, alerts)
    velocity = score.patterns["velocity"]
    assert (velocity.labelled, velocity.alerted, velocity.true_positives) == (2, 2, 1)
    assert (velocity.false_positives, velocity.false_negatives) == (1, 1)
    assert velocity.precision == 0.5
    assert velocity.recall == 0.5
    blocked = score.patterns["blocked_merchant"]
    assert (blocked.precision, blocked.recall) == (0.0, 0.0)
    assert score.patterns["amount_anomaly"].precision == 1.0  # nothing alerted, nothing labelled
    assert score.duplicate_alerts == 1
    assert score.unknown_transactions == 1
    assert score.alerts == 4
    assert score.alerted_transactions == 3
    assert score.reasons["velocity"] == 3


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 95) == 7
    assert math.isnan(percentile([], 50))


# --- the realistic mode ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def realistic() -> tuple[list[LabeledTransaction], GenerationStats]:
    stats = GenerationStats()
    config = GeneratorConfig(seed=13, events=12_000, rate=400.0)
    assert config.mode == world.REALISTIC  # the default
    return list(FraudDataGenerator(config).transactions(START, stats)), stats


def test_realistic_mode_labels_every_transaction_of_an_attack(
    realistic: tuple[list[LabeledTransaction], GenerationStats],
) -> None:
    items, stats = realistic
    assert len(items) == 12_000
    times = [i.tx["ts"] for i in items]
    assert times == sorted(times)
    by_attack: dict[str, list[LabeledTransaction]] = defaultdict(list)
    for item in items:
        assert (item.kind is None) == (item.attack is None)
        if item.attack is not None:
            assert item.attack.startswith(f"{item.kind}-")
            by_attack[item.attack].append(item)
    for kind in KINDS:
        attacks = [a for a in by_attack if a.startswith(f"{kind}-")]
        # an attack planned just before the end may have no transaction yet
        assert stats.instances[kind] - 2 <= len(attacks) <= stats.instances[kind], kind
        assert len(attacks) >= 15, kind
    for attack, txs in by_attack.items():
        assert len({t.tx["card"] for t in txs}) == 1, attack
        if txs[-1].tx["ts"] > times[-1] - 60_000:
            continue  # it may have been cut short by the end of the data
        if attack.startswith(("amount_anomaly-", "blocked_merchant-")):
            assert len(txs) == 1
        if attack.startswith("impossible_travel-"):
            assert 2 <= len(txs) <= 4
        if attack.startswith("velocity-"):
            assert 4 <= len(txs) <= 12


def test_realistic_mode_injects_look_alike_episodes_at_their_rates(
    realistic: tuple[list[LabeledTransaction], GenerationStats],
) -> None:
    items, stats = realistic
    rates = GeneratorConfig().legit_rates
    for kind in world.LEGIT_KINDS:
        expected = rates[kind] * len(items) / 1000
        assert expected - 2 <= stats.episodes[kind] <= expected + 1, kind
    taps = [i for i in items if i.tx["merchant"].startswith("transit-")]
    assert len(taps) >= 4 * stats.episodes[world.TRANSIT] - 10
    assert all(i.kind is None for i in taps)
    online = [i for i in items if i.tx["merchant"].startswith("online-")]
    assert len(online) == stats.episodes[world.TRAVEL_BOOKING]
    none, _ = generate(
        seed=13, events=3_000, mode=world.REALISTIC, legit_rates=dict.fromkeys(world.LEGIT_KINDS, 0)
    )
    assert not [i for i in none if i.tx["merchant"].startswith(("transit-", "online-"))]
    with pytest.raises(ValueError, match="unknown legitimate episode kinds"):
        GeneratorConfig(legit_rates={"lottery": 1.0})
    with pytest.raises(ValueError, match="mode must be one of"):
        GeneratorConfig(mode="chaos")
