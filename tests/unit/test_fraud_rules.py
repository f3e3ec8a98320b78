"""The fraud topology's rules through the TopologyTestDriver, one rule at a time."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from typing import Any

import pytest

from streamer.testing import TopologyTestDriver
from topologies.fraud import (
    LOCATION_STORE,
    PROFILE_STORE,
    SPEND_STORE,
    VELOCITY_STORE,
    FraudConfig,
    build,
    haversine_km,
    score,
)

PARIS = (48.8566, 2.3522)
PARIS_SUBURB = (48.90, 2.45)  # about 9 km from PARIS
LONDON = (51.5074, -0.1278)
NEW_YORK = (40.7128, -74.0060)

_ids: Iterator[int] = iter(range(1_000_000))


def tx(
    card: str = "card-1",
    ts: int = 0,
    amount: float = 20.0,
    *,
    currency: str = "EUR",
    merchant: str = "grocer",
    where: tuple[float, float] = PARIS,
    country: str = "FR",
    tx_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": tx_id or f"tx-{next(_ids)}",
        "card": card,
        "amount": amount,
        "currency": currency,
        "merchant": merchant,
        "country": country,
        "lat": where[0],
        "lon": where[1],
        "ts": ts,
    }


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(build(FraudConfig())) as d:
        yield d


def pipe(d: TopologyTestDriver, *transactions: dict[str, Any]) -> None:
    for t in transactions:
        d.pipe("transactions", t["card"], t)


def alerts(d: TopologyTestDriver) -> list[dict[str, Any]]:
    return d.read_values("alerts")


def reasons_by_tx(d: TopologyTestDriver) -> dict[str, list[str]]:
    return {a["tx_id"]: a["reasons"] for a in alerts(d)}


# --- velocity ---------------------------------------------------------------------------------


def test_velocity_first_transaction_and_up_to_the_limit_do_not_alert(
    driver: TopologyTestDriver,
) -> None:
    pipe(driver, *(tx(ts=i * 1_000) for i in range(5)))
    assert alerts(driver) == []


def test_velocity_alerts_on_each_transaction_above_the_limit(driver: TopologyTestDriver) -> None:
    batch = [tx(ts=i * 1_000, amount=1.0) for i in range(7)]
    pipe(driver, *batch)
    got = alerts(driver)
    assert [a["tx_id"] for a in got] == [batch[5]["id"], batch[6]["id"]]
    assert got[0]["reasons"] == ["velocity"]
    assert got[0]["details"]["velocity"] == {"count": 6, "window_ms": 10_000}
    assert got[1]["details"]["velocity"]["count"] == 7
    assert got[0]["tx"] == batch[5]
    assert got[0]["card"] == "card-1"
    assert got[0]["score"] == pytest.approx(0.6)


def test_velocity_window_includes_both_ends(driver: TopologyTestDriver) -> None:
    # [t - 10 s, t]: a transaction exactly 10 s before counts, one 10.001 s before does not.
    pipe(driver, *(tx(ts=i * 2_000) for i in range(5)))  # 0, 2, 4, 6, 8 s
    pipe(driver, tx(ts=10_001))  # window [1 ms, 10.001 s]: 5 transactions
    assert alerts(driver) == []
    pipe(driver, *(tx(card="card-2", ts=20_000 + i * 2_000) for i in range(6)))
    # card-2: 20, 22, ..., 30 s; the last window [20 s, 30 s] holds all 6
    assert [a["details"]["velocity"]["count"] for a in alerts(driver)] == [6]


def test_velocity_counts_each_card_separately(driver: TopologyTestDriver) -> None:
    pipe(driver, *(tx(card=f"card-{i % 3}", ts=i * 100) for i in range(15)))
    assert alerts(driver) == []


def test_velocity_counts_transactions_with_the_same_timestamp(driver: TopologyTestDriver) -> None:
    pipe(driver, *(tx(ts=5_000) for _ in range(6)))
    assert [a["details"]["velocity"]["count"] for a in alerts(driver)] == [6]


def test_late_transactions_are_marked_and_left_out_of_the_windows(
    driver: TopologyTestDriver,
) -> None:
    pipe(driver, tx(card="other", ts=100_000))  # stream time 100 s; grace is 5 s
    on_time = [tx(ts=95_000 + i) for i in range(3)]  # exactly grace behind: on time
    late = [tx(ts=90_000 + i) for i in range(6)]
    pipe(driver, *on_time, *late)
    assert alerts(driver) == []  # 9 transactions in 10 s, but the 6 late ones do not count
    assert driver.counters()["fraud-late-transactions"] == 6
    rows = list(driver.store(VELOCITY_STORE).fetch_range("card-1", 0, 200_000))
    assert [start for start, _ in rows] == [95_000, 95_001, 95_002]


def test_late_transactions_are_still_judged_by_the_other_rules(
    driver: TopologyTestDriver,
) -> None:
    driver.pipe("blocked-merchants", "shady", {"reason": "test"})
    pipe(driver, tx(card="other", ts=100_000), tx(ts=1_000, merchant="shady"))
    (alert,) = alerts(driver)
    assert alert["reasons"] == ["blocked_merchant"]
    assert alert["late"] is True


def test_window_state_is_purged_as_stream_time_passes(driver: TopologyTestDriver) -> None:
    pipe(driver, *(tx(card=f"card-{i}", ts=1_000, amount=5.0) for i in range(20)))
    assert len(list(driver.store(VELOCITY_STORE).all())) == 20
    assert len(list(driver.store(SPEND_STORE).all())) == 20
    # Velocity keeps window + grace = 15 s, spend 60 + 5 = 65 s. Purges run every 10 s.
    pipe(driver, tx(card="late-comer", ts=30_000))
    assert [card for card, _, _ in driver.store(VELOCITY_STORE).all()] == ["late-comer"]
    assert len(list(driver.store(SPEND_STORE).all())) == 21
    pipe(driver, tx(card="late-comer", ts=70_000))
    assert len(list(driver.store(SPEND_STORE).all())) == 2


# --- spend burst ----------------------------------------------------------------------------------


def test_spend_burst_uses_the_cards_limit_from_the_table(driver: TopologyTestDriver) -> None:
    driver.pipe("card-limits", "card-1", {"limit": 500.0})
    first, second, third = tx(ts=0, amount=200), tx(ts=5_000, amount=300), tx(ts=9_000, amount=1)
    pipe(driver, first, second)  # exactly 500: not above the limit
    assert alerts(driver) == []
    pipe(driver, third)
    (alert,) = alerts(driver)
    assert alert["tx_id"] == third["id"]
    assert alert["reasons"] == ["spend_burst"]
    assert alert["details"]["spend_burst"] == {
        "total_eur": 501.0,
        "limit_eur": 500.0,
        "window_ms": 60_000,
    }


def test_spend_burst_default_limit_for_cards_without_a_row(driver: TopologyTestDriver) -> None:
    pipe(driver, tx(ts=0, amount=1_999), tx(card="card-2", ts=0, amount=2_000.5))
    assert [a["card"] for a in alerts(driver)] == ["card-2"]  # a first transaction can burst


def test_spend_burst_window_boundary(driver: TopologyTestDriver) -> None:
    driver.pipe("card-limits", "card-1", {"limit": 100})
    pipe(driver, tx(ts=0, amount=60), tx(ts=60_001, amount=60))  # 60.001 s apart: no overlap
    assert alerts(driver) == []
    pipe(driver, tx(ts=120_001, amount=41))  # [60.001 s, 120.001 s]: 60 + 41
    assert [a["details"]["spend_burst"]["total_eur"] for a in alerts(driver)] == [101.0]


def test_spend_burst_converts_currencies_to_eur(driver: TopologyTestDriver) -> None:
    driver.pipe("card-limits", "card-1", {"limit": 1_000})
    pipe(driver, tx(ts=0, amount=1_000, currency="USD"))  # 920 EUR
    assert alerts(driver) == []
    pipe(driver, tx(ts=1_000, amount=100, currency="GBP"))  # + 117 EUR
    assert alerts(driver)[0]["details"]["spend_burst"]["total_eur"] == pytest.approx(1_037.0)


def test_spend_limit_changed_while_running(driver: TopologyTestDriver) -> None:
    driver.pipe("card-limits", "card-1", {"limit": 100})
    pipe(driver, tx(ts=0, amount=150))
    assert len(alerts(driver)) == 1
    driver.pipe("card-limits", "card-1", {"limit": 1_000})
    pipe(driver, tx(ts=1_000, amount=150))
    assert alerts(driver) == []
    driver.pipe("card-limits", "card-1", None)  # back to the default limit, 2,000
    pipe(driver, tx(ts=2_000, amount=1_800))
    assert alerts(driver)[0]["details"]["spend_burst"]["limit_eur"] == 2_000.0


# --- amount anomaly ----------------------------------------------------------------------------


def test_amount_anomaly_needs_history(driver: TopologyTestDriver) -> None:
    # limits high enough that spend bursts stay out of the way
    driver.pipe("card-limits", "card-1", {"limit": 1e9})
    pipe(driver, tx(ts=0, amount=5_000))  # first transaction: no history, no alert
    pipe(driver, *(tx(ts=(i + 1) * 20_000, amount=20) for i in range(2)))
    pipe(driver, tx(ts=60_000, amount=50_000))  # 3 earlier transactions: not enough
    assert alerts(driver) == []


def test_amount_anomaly_fires_on_a_large_z_score(driver: TopologyTestDriver) -> None:
    driver.pipe("card-limits", "card-1", {"limit": 1e9})
    history = [20.0, 24.0, 18.0, 22.0, 21.0]
    pipe(driver, *(tx(ts=i * 20_000, amount=a) for i, a in enumerate(history)))
    small, big = tx(ts=200_000, amount=1.0), tx(ts=220_000, amount=400.0)
    pipe(driver, small, big)
    (alert,) = alerts(driver)
    assert alert["tx_id"] == big["id"]
    details = alert["details"]["amount_anomaly"]
    mean = statistics.mean([*history, 1.0])
    std = statistics.stdev([*history, 1.0])
    assert details["mean_eur"] == pytest.approx(mean, abs=0.01)
    assert details["std_eur"] == pytest.approx(std, abs=0.01)
    assert details["z"] == pytest.approx((400 - mean) / std, abs=0.01)
    assert details["history"] == 6


def test_amount_anomaly_std_floor_avoids_alerts_on_identical_amounts(
    driver: TopologyTestDriver,
) -> None:
    # std 0, so the floor 0.3 * 50 = 15 applies: 120 is z = 4.7, below 6; 150 is z = 6.7
    for card, amount in (("card-1", 120.0), ("card-2", 150.0)):
        driver.pipe("card-limits", card, {"limit": 1e9})
        pipe(driver, *(tx(card=card, ts=i * 20_000, amount=50.0) for i in range(6)))
        pipe(driver, tx(card=card, ts=200_000, amount=amount))
    (alert,) = alerts(driver)
    assert alert["card"] == "card-2"
    assert alert["details"]["amount_anomaly"]["z"] == pytest.approx(6.67, abs=0.01)


def test_amount_profile_is_welfords_running_mean_and_variance(
    driver: TopologyTestDriver,
) -> None:
    amounts = [12.5, 80.0, 33.3, 41.0, 7.25, 19.99]
    pipe(driver, *(tx(ts=i * 30_000, amount=a) for i, a in enumerate(amounts)))
    profile = driver.store(PROFILE_STORE).get("card-1")
    assert profile["n"] == len(amounts)
    assert profile["mean"] == pytest.approx(statistics.mean(amounts))
    assert profile["m2"] / (len(amounts) - 1) == pytest.approx(statistics.variance(amounts))


# --- impossible travel -------------------------------------------------------------------------


def test_haversine_distances() -> None:
    assert haversine_km(*PARIS, *PARIS) == 0.0
    assert haversine_km(*PARIS, *LONDON) == pytest.approx(343.5, abs=1.0)
    assert haversine_km(*PARIS, *NEW_YORK) == pytest.approx(5837, abs=5)
    assert haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0088)


def test_impossible_travel(driver: TopologyTestDriver) -> None:
    home, away = tx(ts=0, where=PARIS), tx(ts=60_000, where=NEW_YORK, country="US")
    pipe(driver, home, away)
    (alert,) = alerts(driver)
    assert alert["tx_id"] == away["id"]
    details = alert["details"]["impossible_travel"]
    assert details["km"] == pytest.approx(5837, abs=5)
    assert details["kmh"] == pytest.approx(5837 * 60, rel=0.01)
    assert details["previous_tx"] == home["id"]
    assert details["previous_country"] == "FR"


def test_travel_first_transaction_short_hops_and_plausible_speeds(
    driver: TopologyTestDriver,
) -> None:
    pipe(driver, tx(ts=0, where=NEW_YORK))  # first transaction of the card
    pipe(
        driver,
        tx(card="card-2", ts=0, where=PARIS),
        tx(card="card-2", ts=1_000, where=PARIS_SUBURB),
    )
    # Paris to London (344 km) in 30 minutes is 687 km/h: fast, but possible by plane
    pipe(driver, tx(card="card-3", ts=0), tx(card="card-3", ts=1_800_000, where=LONDON))
    assert alerts(driver) == []


def test_travel_at_the_same_instant_has_no_finite_speed(driver: TopologyTestDriver) -> None:
    pipe(driver, tx(ts=5_000, where=PARIS), tx(ts=5_000, where=LONDON))
    details = alerts(driver)[0]["details"]["impossible_travel"]
    assert details["kmh"] is None
    assert details["seconds"] == 0


def test_travel_keeps_the_latest_transaction_by_event_time(driver: TopologyTestDriver) -> None:
    latest = tx(ts=100_000, where=PARIS)
    pipe(driver, latest, tx(ts=98_000, where=PARIS_SUBURB))  # out of order, within grace
    assert driver.store(LOCATION_STORE).get("card-1")["id"] == latest["id"]


# --- blocked merchants ------------------------------------------------------------------------


def test_blocked_merchant_blocked_and_unblocked_mid_stream(driver: TopologyTestDriver) -> None:
    first = tx(ts=0, merchant="m-1")
    pipe(driver, first)
    assert alerts(driver) == []
    driver.pipe("blocked-merchants", "m-1", {"reason": "chargebacks"})
    blocked = tx(ts=20_000, merchant="m-1")
    pipe(driver, blocked)
    (alert,) = alerts(driver)
    assert alert["tx_id"] == blocked["id"]
    assert alert["details"]["blocked_merchant"] == {"merchant": "m-1", "reason": "chargebacks"}
    assert alert["score"] == pytest.approx(0.9)
    driver.pipe("blocked-merchants", "m-1", None)  # a tombstone unblocks
    pipe(driver, tx(ts=40_000, merchant="m-1"))
    assert alerts(driver) == []


# --- all rules together --------------------------------------------------------------------------


def test_one_alert_per_transaction_with_every_reason_that_fired(
    driver: TopologyTestDriver,
) -> None:
    driver.pipe("blocked-merchants", "shady", {"reason": "test"})
    driver.pipe("card-limits", "card-1", {"limit": 1_000})
    pipe(driver, *(tx(ts=i * 1_000, amount=10.0) for i in range(5)))
    worst = tx(ts=5_000, amount=5_000, merchant="shady", where=NEW_YORK, country="US")
    pipe(driver, worst)
    (alert,) = alerts(driver)
    assert alert["tx_id"] == worst["id"]
    assert alert["reasons"] == [
        "velocity",
        "spend_burst",
        "amount_anomaly",
        "impossible_travel",
        "blocked_merchant",
    ]
    assert set(alert["details"]) == set(alert["reasons"])
    (risk,) = [r for r in driver.read_values("risk-scores") if r["tx_id"] == worst["id"]]
    assert set(risk["contributions"]) == set(alert["reasons"])
    # travel at infinite speed and 5,000 EUR over a 1,000 EUR limit both saturate
    assert risk["contributions"]["impossible_travel"] == pytest.approx(0.9)
    assert risk["contributions"]["spend_burst"] == pytest.approx(0.85)
    assert alert["score"] == risk["score"] > 0.99
    assert score({}) == 0.0
    assert score({"velocity": 0.6, "blocked_merchant": 0.9}) == pytest.approx(0.96)


def test_invalid_transactions_go_to_the_invalid_topic(driver: TopologyTestDriver) -> None:
    bad = [
        ("card-1", {"card": "card-1"}),
        ("card-1", tx(currency="XXX")),
        ("card-9", tx(card="card-1")),
        ("card-1", {**tx(), "amount": "12"}),
        ("card-1", {**tx(), "lat": 123.0}),
        ("card-1", {**tx(), "ts": -5}),
        ("card-1", [1, 2, 3]),
    ]
    for key, value in bad:
        driver.pipe("transactions", key, value, timestamp=1)
    invalid = driver.read_values("transactions-invalid")
    assert [i["transaction"] for i in invalid] == [value for _, value in bad]
    errors = [i["error"] for i in invalid]
    assert "field 'id' must be a non-empty string" in errors[0]
    assert "unknown currency 'XXX'" in errors[1]
    assert "is not the card id" in errors[2]
    assert "field 'amount' must be a number" in errors[3]
    assert "out of range" in errors[4]
    assert "'ts' must be a non-negative integer" in errors[5]
    assert "not a JSON object" in errors[6]
    assert driver.counters()["fraud-invalid-transactions"] == len(bad)
    assert alerts(driver) == []


def test_thresholds_come_from_the_config() -> None:
    config = FraudConfig(velocity_max_transactions=2, weight_velocity=0.25)
    with TopologyTestDriver(build(config)) as d:
        pipe(d, *(tx(ts=i) for i in range(3)))
        (alert,) = alerts(d)
        assert alert["reasons"] == ["velocity"]
        assert alert["score"] == 0.25


def test_config_from_environment_variables() -> None:
    config = FraudConfig.from_env(
        {
            "FRAUD_VELOCITY_MAX_TRANSACTIONS": "8",
            "FRAUD_TRAVEL_MAX_SPEED_KMH": "1200.5",
            "FRAUD_ALERTS_TOPIC": "fraud-alerts",
            "FRAUD_FX_TO_EUR": "eur=1, usd=0.9",
            "UNRELATED": "x",
        }
    )
    assert config.velocity_max_transactions == 8
    assert config.travel_max_speed_kmh == 1200.5
    assert config.alerts_topic == "fraud-alerts"
    assert config.fx_to_eur == (("EUR", 1.0), ("USD", 0.9))
    assert config.grace_ms == FraudConfig().grace_ms
    with pytest.raises(ValueError, match="FRAUD_GRACE_MS='soon'"):
        FraudConfig.from_env({"FRAUD_GRACE_MS": "soon"})
    topology = build(FraudConfig.from_env({"FRAUD_TRANSACTIONS_TOPIC": "tx-in"}))
    assert {ref.name for ref in topology.source_topics()} == {"tx-in"}


# --- scores ------------------------------------------------------------------------------------


def test_contribution_rises_from_the_soft_start_through_the_weight_to_one() -> None:
    config = FraudConfig(score_soft_start=0.5, score_saturation=3.0, weight_velocity=0.6)
    assert config.contribution("velocity", 0.5) == 0.0
    assert config.contribution("velocity", 0.75) == pytest.approx(0.3)
    assert config.contribution("velocity", 1.0) == pytest.approx(0.6)
    assert config.contribution("velocity", 2.0) == pytest.approx(0.7)
    assert config.contribution("velocity", 3.0) == pytest.approx(0.8)  # (1 + 0.6) / 2
    assert config.contribution("velocity", math.inf) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="soft start"):
        FraudConfig(score_soft_start=1.0)


def test_transactions_near_a_threshold_get_a_score_without_an_alert(
    driver: TopologyTestDriver,
) -> None:
    # velocity ratio n / 6: the 4th and 5th transactions in 10 s score, the 6th alerts
    sent = [tx(ts=i * 1_000) for i in range(6)]
    pipe(driver, *sent)
    risks = {r["tx_id"]: r for r in driver.read_values("risk-scores")}
    assert sorted(risks) == sorted(t["id"] for t in sent[3:])
    assert risks[sent[3]["id"]]["contributions"] == {"velocity": pytest.approx(0.1)}
    assert risks[sent[4]["id"]]["score"] == pytest.approx(0.35)
    assert risks[sent[4]["id"]]["reasons"] == []
    assert risks[sent[5]["id"]]["score"] == pytest.approx(0.6)
    assert [a["tx_id"] for a in alerts(driver)] == [sent[5]["id"]]


def test_only_the_configured_rules_run() -> None:
    with TopologyTestDriver(build(FraudConfig(rules="blocked_merchant"))) as d:
        d.pipe("blocked-merchants", "shady", {"reason": "test"})
        pipe(d, *(tx(ts=i) for i in range(9)), tx(ts=20, merchant="shady"))
        assert [a["reasons"] for a in alerts(d)] == [["blocked_merchant"]]
    with TopologyTestDriver(build(FraudConfig(rules=""))) as d:
        pipe(d, *(tx(ts=i) for i in range(9)))
        assert alerts(d) == []
        assert d.output_topics() == []
    with pytest.raises(ValueError, match="unknown rules"):
        FraudConfig(rules="velocity,telepathy")


# --- cases -------------------------------------------------------------------------------------


def cases(d: TopologyTestDriver) -> list[dict[str, Any]]:
    return d.read_values("fraud-cases")


def test_alerts_of_a_card_within_the_gap_form_one_case() -> None:
    config = FraudConfig(case_gap_ms=20_000)
    with TopologyTestDriver(build(config)) as d:
        burst = [tx(ts=i * 500) for i in range(8)]  # alerts on the 6th, 7th and 8th
        pipe(d, *burst)
        updates = cases(d)
        assert [c["status"] for c in updates] == ["open"] * 3
        case = updates[-1]
        assert case["case_id"] == f"card-1@{burst[5]['ts']}"
        assert case["alerts"] == 3
        assert case["reasons"] == ["velocity"]
        assert case["first_alert"] == {"tx_id": burst[5]["id"], "ts": burst[5]["ts"]}
        assert case["last_alert"] == {"tx_id": burst[7]["id"], "ts": burst[7]["ts"]}
        assert case["transactions"] == [t["id"] for t in burst[5:]]
        assert case["closes_after"] == burst[7]["ts"] + 20_000
        # Another card's transaction moves stream time past the gap and grace; the cases
        # step sees alerts only, and notices at its next wall-clock check (every gap / 8).
        pipe(d, tx(card="card-2", ts=burst[7]["ts"] + 20_000 + config.grace_ms + 1))
        assert cases(d) == []
        d.advance_wall_clock(config.case_gap_ms // 8)
        (closed,) = cases(d)
        assert closed == {**case, "status": "closed"}
        # A new burst after the gap is a new case.
        later = [tx(ts=60_000 + i * 500) for i in range(6)]
        pipe(d, *later)
        (fresh,) = cases(d)
        assert fresh["case_id"] == f"card-1@{later[5]['ts']}"
        assert fresh["alerts"] == 1


def test_a_case_on_a_quiet_partition_closes_by_the_wall_clock() -> None:
    config = FraudConfig(case_gap_ms=8_000)
    with TopologyTestDriver(build(config)) as d:
        d.pipe("blocked-merchants", "shady", {"reason": "test"})
        pipe(d, tx(ts=1_000, merchant="shady"))
        assert [c["status"] for c in cases(d)] == ["open"]
        d.advance_wall_clock(config.case_gap_ms + config.grace_ms + 2_000)
        assert [c["status"] for c in cases(d)] == ["closed"]
