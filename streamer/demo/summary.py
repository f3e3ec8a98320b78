"""What a demo run measured, and the report printed at its end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamer.demo.generator import GenerationStats
from streamer.demo.scoring import Score, percentile
from streamer.demo.world import KINDS


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


def print_summary(
    say: Callable[[str], None], r: DemoResult, out: Path, *, seed: int, processes: int
) -> None:
    """Report the run: throughput, alerts by reason, precision and recall per injected
    pattern, alert latency, and where the files are."""
    s = r.score
    say("")
    say(f"==> summary (seed {seed}, {processes} workers, exactly-once)")
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
    if r.stats.pending:
        waiting = ", ".join(f"{k} {n}" for k, n in r.stats.pending.items())
        say(f"  not injected: no eligible card before the end ({waiting})")
    say("  (labelled: transactions a correct rule must flag; see streamer/demo/generator.py)")
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
    say(f"  files         {out}/ground-truth.jsonl, {out}/alerts.jsonl, {out}/logs/")
    if any(code not in (0, None) for code in r.worker_exit_codes) or None in r.worker_exit_codes:
        say(f"  workers       exit codes {r.worker_exit_codes} (see {out}/logs/)")
