"""Scores fraud alerts against the generator's ground truth, and summarises latencies."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamer.demo.world import KINDS


@dataclass(frozen=True, slots=True)
class PatternScore:
    """How the alerts of one reason code compare with the transactions labelled with it.

    ``true_positives``: labelled transactions alerted with this reason; ``false_positives``:
    alerts with this reason on transactions not labelled with it; ``false_negatives``:
    labelled transactions without an alert giving this reason.
    """

    kind: str
    labelled: int
    alerted: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """1.0 when nothing was alerted (no false alarm was raised)."""
        return self.true_positives / self.alerted if self.alerted else 1.0

    @property
    def recall(self) -> float:
        """1.0 when nothing was labelled (nothing was missed)."""
        return self.true_positives / self.labelled if self.labelled else 1.0


@dataclass(frozen=True)
class Score:
    patterns: dict[str, PatternScore]
    alerts: int
    alerted_transactions: int
    duplicate_alerts: int
    """Alerts beyond the first for one transaction (exactly-once means zero)."""
    unknown_transactions: int
    """Alerts for transaction ids the ground truth does not know."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Alerts per reason code (an alert with two reasons counts for both)."""
    combinations: Counter[tuple[str, ...]] = field(default_factory=Counter)


def score_alerts(truth: Mapping[str, str | None], alerts: Iterable[Mapping[str, Any]]) -> Score:
    """Compare ``alerts`` (values of the alerts topic) with ``truth`` (tx id -> kind)."""
    flagged: dict[str, set[str]] = {kind: set() for kind in KINDS}
    per_tx: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    combinations: Counter[tuple[str, ...]] = Counter()
    count = 0
    for alert in alerts:
        count += 1
        tx_id = str(alert["tx_id"])
        per_tx[tx_id] += 1
        codes = tuple(alert["reasons"])
        combinations[codes] += 1
        for reason in codes:
            reasons[reason] += 1
            flagged.setdefault(reason, set()).add(tx_id)
    labelled: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for tx_id, kind in truth.items():
        if kind is not None:
            labelled.setdefault(kind, set()).add(tx_id)
    patterns = {}
    for kind in sorted(set(flagged) | set(labelled), key=_kind_order):
        hits = flagged[kind] & labelled[kind]
        patterns[kind] = PatternScore(
            kind=kind,
            labelled=len(labelled[kind]),
            alerted=len(flagged[kind]),
            true_positives=len(hits),
            false_positives=len(flagged[kind] - labelled[kind]),
            false_negatives=len(labelled[kind] - flagged[kind]),
        )
    return Score(
        patterns=patterns,
        alerts=count,
        alerted_transactions=len(per_tx),
        duplicate_alerts=sum(n - 1 for n in per_tx.values()),
        unknown_transactions=sum(1 for tx_id in per_tx if tx_id not in truth),
        reasons=reasons,
        combinations=combinations,
    )


def _kind_order(kind: str) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
