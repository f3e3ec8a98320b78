"""Detection metrics against injected attacks: recall, time to detect, false alerts, cases,
precision and recall over score thresholds."""

from __future__ import annotations

import math

import pytest

from streamer.demo.detection import Truth, latest_cases, measure, pr_curve

TRUTH = {
    # card-1: a card-testing attack of three transactions, caught on the third
    "a1": Truth("card-1", 1_000, "velocity", "velocity-0001"),
    "a2": Truth("card-1", 1_500, "velocity", "velocity-0001"),
    "a3": Truth("card-1", 2_000, "velocity", "velocity-0001"),
    # card-2: a blocked-merchant attack, caught at once
    "b1": Truth("card-2", 5_000, "blocked_merchant", "blocked_merchant-0001"),
    # card-3: a missed amount anomaly
    "c1": Truth("card-3", 7_000, "amount_anomaly", "amount_anomaly-0001"),
    # card-5: a bust-out labelled as in the conformance mode: only where a rule must flag
    "d1": Truth("card-5", 8_000, None, "spend_burst-0001"),
    "d2": Truth("card-5", 9_000, "spend_burst", "spend_burst-0001"),
    # legitimate transactions, one of them alerted twice over (transit taps)
    **{f"l{i}": Truth("card-4", 10_000 + i * 100, None, None) for i in range(8)},
}


def alert(tx_id: str, *reasons: str) -> dict[str, object]:
    return {"tx_id": tx_id, "reasons": list(reasons)}


def test_attack_recall_time_to_detect_and_false_alerts() -> None:
    alerts = [
        (alert("a3", "velocity"), 2_100),
        (alert("b1", "blocked_merchant"), 5_050),
        (alert("l6", "velocity"), 10_700),
        (alert("l7", "velocity"), 10_800),
    ]
    cases = [
        {"case_id": "card-1@2000", "transactions": ["a3"]},
        {"case_id": "card-2@5000", "transactions": ["b1"]},
        {"case_id": "card-4@10600", "transactions": ["l6", "l7"]},
    ]
    alerts.append((alert("d2", "spend_burst"), 9_200))
    d = measure(TRUTH, alerts, [], cases, gap_ms=1_000)
    assert (d.overall.attacks, d.overall.detected) == (4, 3)
    assert d.overall.recall == pytest.approx(3 / 4)
    velocity = d.per_kind["velocity"]
    assert velocity.event_ttd_ms == [1_000]  # a1 at 1000, first alert on a3 at 2000
    assert velocity.wall_ttd_ms == [1_100]  # read at 2100
    assert d.per_kind["blocked_merchant"].event_ttd_ms == [0]
    assert d.per_kind["amount_anomaly"].recall == 0.0
    assert math.isnan(d.per_kind["amount_anomaly"].ttd(50))
    # the attack starts at its first transaction, labelled or not
    assert d.per_kind["spend_burst"].event_ttd_ms == [1_000]
    assert d.per_kind["spend_burst"].wall_ttd_ms == [1_200]
    assert d.per_kind["impossible_travel"].recall == 1.0  # none injected: nothing missed
    assert d.legit_transactions == 8
    assert d.false_alerts == 2
    assert d.false_alerts_per_1000 == 250.0
    assert d.false_reasons == {"velocity": 2}
    assert (d.cases, d.fraud_cases, d.alerts) == (3, 2, 5)
    assert d.alerts_per_case == pytest.approx(5 / 3)


def test_precision_and_recall_over_thresholds() -> None:
    scores = [
        {"tx_id": "a2", "score": 0.3},
        {"tx_id": "a3", "score": 0.8},
        {"tx_id": "b1", "score": 0.9},
        {"tx_id": "l1", "score": 0.3},
        {"tx_id": "l2", "score": 0.5},
        {"tx_id": "l5", "score": 0.6},
        {"tx_id": "zz", "score": 0.9},  # unknown to the truth: ignored
    ]
    low, mid, high = pr_curve(TRUTH, scores, gap_ms=200, thresholds=(0.3, 0.6, 0.85))
    # >= 0.3: a2, a3, b1, l1, l2, l5. Incidents (gap 200 ms): a2 and a3 are 500 ms apart
    # (two), b1 (one), l1 and l2 are 100 ms apart (one), l5 is 300 ms after l2 (one).
    assert low.flagged == 6
    assert low.tx_precision == pytest.approx(3 / 6)
    assert low.tx_recall == pytest.approx(3 / 7)
    assert low.incidents == 5
    assert low.attack_precision == pytest.approx(3 / 5)
    assert low.attack_recall == pytest.approx(2 / 4)
    # >= 0.6: a3, b1, l5
    assert (mid.flagged, mid.incidents) == (3, 3)
    assert mid.attack_precision == pytest.approx(2 / 3)
    # >= 0.85: b1 only
    assert (high.flagged, high.tx_precision, high.attack_precision) == (1, 1.0, 1.0)
    assert high.attack_recall == pytest.approx(1 / 4)


def test_latest_cases_keeps_the_last_record_of_each_case() -> None:
    records = [
        {"case_id": "x", "alerts": 1, "status": "open"},
        {"case_id": "y", "alerts": 1, "status": "open"},
        {"case_id": "x", "alerts": 2, "status": "open"},
        {"case_id": "x", "alerts": 2, "status": "closed"},
    ]
    assert latest_cases(records) == [records[3], records[1]]
