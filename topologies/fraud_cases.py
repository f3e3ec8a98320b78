"""The fraud topology's steps after the rules: the risk score, alerts, and cases.

:mod:`fraud` (``topologies/fraud.py``) documents the score and the cases and wires these
steps up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from streamer import SessionWindows
from streamer.serde import JsonSerde, StringSerde

if TYPE_CHECKING:
    from topologies.fraud import FraudConfig


def score(contributions: Mapping[str, float]) -> float:
    """The risk score: ``1 - prod(1 - contribution)`` over the rules' contributions."""
    keep = 1.0
    for share in contributions.values():
        keep *= 1.0 - share
    return round(1.0 - keep, 4)


def scored(verdict: dict[str, Any]) -> dict[str, Any]:
    return {**verdict, "score": score(verdict["contributions"])}


def to_alert(verdict: dict[str, Any]) -> dict[str, Any]:
    tx = verdict["tx"]
    return {
        "tx_id": tx["id"],
        "card": tx["card"],
        "score": verdict["score"],
        "reasons": verdict["reasons"],
        "details": verdict["details"],
        "late": verdict["late"],
        "tx": tx,
    }


def to_risk_score(verdict: dict[str, Any]) -> dict[str, Any]:
    """What ``risk-scores`` carries for a transaction with a risk score above zero."""
    tx = verdict["tx"]
    return {
        "tx_id": tx["id"],
        "card": tx["card"],
        "ts": tx["ts"],
        "score": verdict["score"],
        "contributions": verdict["contributions"],
        "reasons": verdict["reasons"],
    }


# --- cases ---------------------------------------------------------------------------------


def _new_case() -> dict[str, Any]:
    return {"alerts": 0, "score": 0.0, "reasons": [], "first": None, "last": None, "txs": []}


def _case_adder(config: FraudConfig) -> Any:
    def add(_card: Any, alert: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
        point = [alert["tx"]["ts"], alert["tx_id"]]
        return _merge_cases(
            config,
            case,
            {
                "alerts": 1,
                "score": alert["score"],
                "reasons": alert["reasons"],
                "first": point,
                "last": point,
                "txs": [alert["tx_id"]],
            },
        )

    return add


def _merge_cases(config: FraudConfig, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two cases of one card as one: first and last alert by event time, reasons in rule
    order, the highest score, at most ``case_max_transactions`` transaction ids."""
    firsts = [p for p in (a["first"], b["first"]) if p is not None]
    lasts = [p for p in (a["last"], b["last"]) if p is not None]
    reasons = set(a["reasons"]) | set(b["reasons"])
    return {
        "alerts": a["alerts"] + b["alerts"],
        "score": max(a["score"], b["score"]),
        "reasons": [r for r in config.enabled_rules() if r in reasons],
        "first": min(firsts) if firsts else None,
        "last": max(lasts) if lasts else None,
        "txs": (a["txs"] + b["txs"])[: config.case_max_transactions],
    }


def _case_record(config: FraudConfig, card: str, case: dict[str, Any], status: str) -> Any:
    first_ts, first_tx = case["first"]
    last_ts, last_tx = case["last"]
    return {
        "case_id": f"{card}@{first_ts}",
        "card": card,
        "status": status,
        "alerts": case["alerts"],
        "score": case["score"],
        "reasons": case["reasons"],
        "first_alert": {"tx_id": first_tx, "ts": first_ts},
        "last_alert": {"tx_id": last_tx, "ts": last_ts},
        "closes_after": last_ts + config.case_gap_ms,
        "transactions": case["txs"],
    }


def add_cases(cfg: FraudConfig, alerts: Any) -> None:
    """Group ``alerts`` into cases by a session window per card; see the module docstring."""
    text, json = StringSerde(), JsonSerde()
    windows = SessionWindows(gap=cfg.case_gap_ms, grace=cfg.grace_ms)
    grouped = alerts.group_by_key()
    adder, merger = _case_adder(cfg), (lambda _card, a, b: _merge_cases(cfg, a, b))
    for status, emit, idle in (
        ("open", "update", None),
        ("closed", "final", max(1_000, cfg.case_gap_ms // 4)),
    ):
        (
            grouped.windowed_by(windows)
            .aggregate(
                _new_case,
                adder,
                merger=merger,
                name=f"fraud-cases-{status}",
                emit=emit,
                idle_close_ms=idle,
            )
            .to_stream(name=f"fraud-cases-{status}-stream")
            .filter(lambda _w, case: case is not None, name=f"fraud-cases-{status}-live")
            .map(
                lambda w, case, status=status: (w.key, _case_record(cfg, w.key, case, status)),
                name=f"fraud-cases-{status}-record",
            )
            .to(cfg.cases_topic, key_serde=text, value_serde=json, name=f"fraud-cases-{status}-out")
        )
