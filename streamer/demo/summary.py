"""What a demo run measured, and the report printed at its end."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamer.demo.detection import Detection
from streamer.demo.generator import GenerationStats
from streamer.demo.scoring import Score, percentile
from streamer.demo.world import CONFORMANCE, KINDS


@dataclass
class DemoResult:
    """What a run measured. ``score`` and ``latencies_ms`` are filled in once the run has
    stopped; ``processed`` counts the transactions the group committed."""

    produced: int
    processed: int
    produce_seconds: float
    process_seconds: float
    score: Score
    latencies_ms: list[int]
    stats: GenerationStats
    peak_processed_per_second: float
    max_lag: int
    caught_up: bool
    worker_exit_codes: list[int | None] = field(default_factory=list)
    detection: Detection | None = None


def print_summary(
    say: Callable[[str], None],
    r: DemoResult,
    out: Path,
    *,
    seed: int,
    processes: int,
    mode: str = CONFORMANCE,
) -> None:
    """Report the run: throughput, alerts by reason and cases, then detection against the
    injected attacks (and, in the conformance mode, precision and recall of each rule against
    the transactions it must flag), alert latency, and where the files are."""
    s = r.score
    say("")
    say(f"==> summary (seed {seed}, {mode} traffic, {processes} workers, exactly-once)")
    say(
        f"  transactions  {r.produced:,} sent in {r.produce_seconds:.1f} s "
        f"({r.produced / max(r.produce_seconds, 1e-9):,.0f}/s); {r.processed:,} processed"
        + ("" if r.caught_up else " (the workers had NOT caught up)")
    )
    say(
        f"  throughput    {r.processed / r.process_seconds:,.0f}/s processed on average, "
        f"{r.peak_processed_per_second:,.0f}/s in the busiest second; "
        f"consumer lag at most {r.max_lag:,} transactions"
    )
    by_reason = " | ".join(f"{k} {s.reasons[k]}" for k in KINDS if s.reasons[k])
    say(
        f"  alerts        {s.alerts:,} on {s.alerted_transactions:,} transactions, "
        f"{s.duplicate_alerts} duplicates, {s.unknown_transactions} for unknown transactions"
    )
    say(f"    by reason   {by_reason or 'none'}")
    multi = sum(n for combo, n in s.combinations.items() if len(combo) > 1)
    if multi:
        say(f"    {multi} alerts carry more than one reason")
    if r.detection is not None:
        _print_detection(say, r.detection, r.stats)
    if mode == CONFORMANCE:
        _print_conformance(say, r)
    say("")
    lat = r.latencies_ms
    if lat:
        say(
            f"  latency       transaction ts -> alert read here, {len(lat):,} alerts: "
            f"p50 {percentile(lat, 50):,.0f} ms, p95 {percentile(lat, 95):,.0f} ms, "
            f"p99 {percentile(lat, 99):,.0f} ms, max {lat[-1]:,} ms"
        )
    else:
        say("  latency       no alerts, no latency to report")
    say(
        f"  files         {out}/ground-truth.jsonl, alerts.jsonl, risk-scores.jsonl, "
        "cases.jsonl, logs/"
    )
    if any(code not in (0, None) for code in r.worker_exit_codes) or None in r.worker_exit_codes:
        say(f"  workers       exit codes {r.worker_exit_codes} (see {out}/logs/)")


def _seconds(ms: float) -> str:
    return "-" if math.isnan(ms) else f"{ms / 1000:.1f} s"


def _print_detection(say: Callable[[str], None], d: Detection, stats: GenerationStats) -> None:
    say(
        f"  cases         {d.cases:,} from {d.alerts:,} alerts ({d.alerts_per_case:.2f} alerts "
        f"per case); {d.fraud_cases:,} hold an attack's transactions, "
        f"{d.overall.attacks:,} attacks were injected"
    )
    say("")
    say(
        f"  {'attacks':<18} {'injected':>8} {'caught':>7} {'recall':>7}   "
        f"{'time to detect: event p50':>25} {'p95':>7} {'wall p50':>9} {'p95':>7}"
    )
    for m in [*d.per_kind.values(), d.overall]:
        say(
            f"  {m.kind:<18} {m.attacks:>8} {m.detected:>7} {m.recall:>7.3f}   "
            f"{_seconds(m.ttd(50)):>25} {_seconds(m.ttd(95)):>7} "
            f"{_seconds(m.ttd(50, wall=True)):>9} {_seconds(m.ttd(95, wall=True)):>7}"
        )
    if stats.pending:
        waiting = ", ".join(f"{k} {n}" for k, n in stats.pending.items())
        say(f"  not injected: no eligible card before the end ({waiting})")
    reasons = ", ".join(f"{k} {d.false_reasons[k]}" for k in KINDS if d.false_reasons[k])
    say(
        f"  false alerts  {d.false_alerts:,} on {d.legit_transactions:,} legitimate transactions: "
        f"{d.false_alerts_per_1000:.2f} per 1,000" + (f" ({reasons})" if reasons else "")
    )
    if stats.episodes:
        episodes = ", ".join(f"{k} {n}" for k, n in sorted(stats.episodes.items()))
        say(f"    look-alike episodes injected: {episodes}")
    say("")
    say("  risk score   transactions                  attacks (incidents: a card's flagged")
    say("  at least     flagged precision  recall     transactions within the case gap)")
    say(f"  {'':12} {'':7} {'':9} {'':7}    incidents precision  recall")
    for p in d.curve:
        say(
            f"  {p.threshold:<12.2f} {p.flagged:>7,} {p.tx_precision:>9.3f} {p.tx_recall:>7.3f}"
            f"    {p.incidents:>9,} {p.attack_precision:>9.3f} {p.attack_recall:>7.3f}"
        )


def _print_conformance(say: Callable[[str], None], r: DemoResult) -> None:
    s = r.score
    say("")
    say(
        f"  {'pattern':<18} {'injected':>8} {'labelled':>8} {'alerted':>8} "
        f"{'missed':>7} {'false':>6} {'precision':>9} {'recall':>7}"
    )
    for kind in KINDS:
        p = s.patterns[kind]
        precision = f"{p.precision:.3f}" if p.alerted else "-"
        recall = f"{p.recall:.3f}" if p.labelled else "-"
        say(
            f"  {kind:<18} {r.stats.instances[kind]:>8} {p.labelled:>8} {p.alerted:>8} "
            f"{p.false_negatives:>7} {p.false_positives:>6} {precision:>9} {recall:>7}"
        )
    say("  (labelled: transactions a correct rule must flag; see streamer/demo/generator.py)")
