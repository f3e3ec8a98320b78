"""Detection metrics of a run against the ground truth of injected attacks.

Definitions (also in ``docs/fraud.md``, "Reading the demo's summary"):

* **attack-level recall**: the share of injected attacks with at least one alert on one of
  their transactions;
* **time to detect**: from an attack's first transaction to its first alert, in event time
  (the alerted transaction's ``ts`` minus the first one's) and in wall time (when the alert
  was read minus when the first transaction was sent, which the demo does at its ``ts``);
* **false alerts per 1,000**: alerts on legitimate transactions per 1,000 legitimate
  transactions;
* **alerts per case**: alerts over the cases they were grouped into;
* **precision and recall over score thresholds**: at threshold ``t``, the transactions whose
  risk score is at least ``t`` are *flagged*. Transaction level: precision is the share of
  flagged transactions that belong to an attack, recall the share of attack transactions
  flagged. Attack level: flagged transactions of a card at most ``gap_ms`` apart form one
  *incident* (as alerts form a case); precision is the share of incidents that contain an
  attack transaction, recall the share of attacks with a flagged transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamer.demo.scoring import percentile
from streamer.demo.world import KINDS

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class Truth:
    """One transaction of the ground truth."""

    card: str
    ts: int
    kind: str | None
    attack: str | None


@dataclass(frozen=True, slots=True)
class AttackMetrics:
    """Attack-level figures of one pattern (or of all, ``kind="all"``)."""

    kind: str
    attacks: int
    detected: int
    event_ttd_ms: list[int] = field(default_factory=list)
    wall_ttd_ms: list[int] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.detected / self.attacks if self.attacks else 1.0

    def ttd(self, q: float, *, wall: bool = False) -> float:
        return percentile(sorted(self.wall_ttd_ms if wall else self.event_ttd_ms), q)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float
    tx_precision: float
    tx_recall: float
    attack_precision: float
    attack_recall: float
    flagged: int
    incidents: int


@dataclass(frozen=True)
class Detection:
    per_kind: dict[str, AttackMetrics]
    overall: AttackMetrics
    legit_transactions: int
    false_alerts: int
    false_reasons: Counter[str]
    """False alerts per reason code (an alert with two reasons counts for both)."""
    alerts: int
    cases: int
    fraud_cases: int
    """Cases holding at least one attack transaction."""
    curve: list[CurvePoint]

    @property
    def false_alerts_per_1000(self) -> float:
        if not self.legit_transactions:
            return 0.0
        return 1000 * self.false_alerts / self.legit_transactions

    @property
    def alerts_per_case(self) -> float:
        return self.alerts / self.cases if self.cases else 0.0


def attack_kind(attack: str) -> str:
    """The kind of an attack from its id (``velocity-0003``): in the conformance mode a
    transaction's ``kind`` is set only where a rule must flag it, the attack id always."""
    return attack.rsplit("-", 1)[0]


def truth_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Truth]:
    """Ground-truth rows (``id``, ``card``, ``ts``, ``kind``, ``attack``) by transaction id."""
    return {r["id"]: Truth(r["card"], int(r["ts"]), r.get("kind"), r.get("attack")) for r in rows}


def measure(
    truth: Mapping[str, Truth],
    alerts: Sequence[tuple[Mapping[str, Any], int | None]],
    risk_scores: Iterable[Mapping[str, Any]],
    cases: Iterable[Mapping[str, Any]],
    *,
    gap_ms: int,
    thresholds: Sequence[float] = THRESHOLDS,
) -> Detection:
    """The metrics of the module docstring. ``alerts`` are (alert, wall-clock ms it was
    read or None); ``cases`` the latest record of each case."""
    starts: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for row in truth.values():
        if row.attack is not None:
            starts[row.attack] = min(row.ts, starts.get(row.attack, row.ts))
            kinds[row.attack] = attack_kind(row.attack)
    first_alert: dict[str, tuple[int, int | None]] = {}
    false_reasons: Counter[str] = Counter()
    false_alerts = 0
    for alert, arrived in alerts:
        hit = truth.get(alert["tx_id"])
        if hit is None or hit.attack is None:
            false_alerts += 1
            false_reasons.update(alert.get("reasons", ()))
            continue
        attack = hit.attack
        event = hit.ts - starts[attack]
        wall = None if arrived is None else arrived - starts[attack]
        if attack not in first_alert or event < first_alert[attack][0]:
            first_alert[attack] = (event, wall)
    per_kind = {kind: _attack_metrics(kind, kinds, first_alert) for kind in KINDS}
    case_list = list(cases)
    fraud_cases = sum(
        1
        for case in case_list
        if any(truth.get(t, _LEGIT).attack for t in case.get("transactions", ()))
    )
    return Detection(
        per_kind=per_kind,
        overall=_attack_metrics(None, kinds, first_alert),
        legit_transactions=sum(1 for row in truth.values() if row.attack is None),
        false_alerts=false_alerts,
        false_reasons=false_reasons,
        alerts=len(alerts),
        cases=len(case_list),
        fraud_cases=fraud_cases,
        curve=pr_curve(truth, risk_scores, gap_ms=gap_ms, thresholds=thresholds),
    )


_LEGIT = Truth("", 0, None, None)


def _attack_metrics(
    kind: str | None, kinds: Mapping[str, str], first_alert: Mapping[str, tuple[int, int | None]]
) -> AttackMetrics:
    attacks = [a for a, k in kinds.items() if kind is None or k == kind]
    hits = [first_alert[a] for a in attacks if a in first_alert]
    return AttackMetrics(
        kind=kind or "all",
        attacks=len(attacks),
        detected=len(hits),
        event_ttd_ms=[event for event, _ in hits],
        wall_ttd_ms=[wall for _, wall in hits if wall is not None],
    )


def pr_curve(
    truth: Mapping[str, Truth],
    risk_scores: Iterable[Mapping[str, Any]],
    *,
    gap_ms: int,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[CurvePoint]:
    """Precision and recall at each threshold, at the transaction and attack level."""
    scored = [(float(r["score"]), truth[r["tx_id"]]) for r in risk_scores if r["tx_id"] in truth]
    attack_txs = sum(1 for row in truth.values() if row.attack is not None)
    attacks = {row.attack for row in truth.values() if row.attack is not None}
    points = []
    for t in thresholds:
        flagged = [row for score, row in scored if score >= t]
        true_tx = sum(1 for row in flagged if row.attack is not None)
        incidents = _incidents(flagged, gap_ms)
        true_incidents = sum(1 for rows in incidents if any(r.attack for r in rows))
        caught = {row.attack for row in flagged if row.attack is not None}
        points.append(
            CurvePoint(
                threshold=t,
                tx_precision=true_tx / len(flagged) if flagged else 1.0,
                tx_recall=true_tx / attack_txs if attack_txs else 1.0,
                attack_precision=true_incidents / len(incidents) if incidents else 1.0,
                attack_recall=len(caught) / len(attacks) if attacks else 1.0,
                flagged=len(flagged),
                incidents=len(incidents),
            )
        )
    return points


def _incidents(flagged: Iterable[Truth], gap_ms: int) -> list[list[Truth]]:
    """Flagged transactions of a card at most ``gap_ms`` apart, chained."""
    by_card: dict[str, list[Truth]] = defaultdict(list)
    for row in flagged:
        by_card[row.card].append(row)
    incidents: list[list[Truth]] = []
    for rows in by_card.values():
        rows.sort(key=lambda r: r.ts)
        current = [rows[0]]
        for row in rows[1:]:
            if row.ts - current[-1].ts <= gap_ms:
                current.append(row)
            else:
                incidents.append(current)
                current = [row]
        incidents.append(current)
    return incidents


def latest_cases(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The latest record of each case (``fraud-cases`` carries every update)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if record is not None:
            latest[record["case_id"]] = record
    return list(latest.values())
