"""What each fraud rule costs: the fraud topology with one rule at a time, in memory.

``python -m streamer.demo.rule_cost [--events 20000] [--repeat 3]`` generates the demo's
realistic transactions, then pipes them through the
:class:`~streamer.testing.TopologyTestDriver` (4 partitions, in-memory stores, no broker)
with ``FraudConfig(rules=...)`` set to no rule, to each rule alone, and to every rule, in
turn, ``--repeat`` times over. For each it reports the best of its runs in transactions per
second of one core, and microseconds per transaction; a rule's cost is its time per
transaction minus that of no rule (which still screens, scores and writes every output,
cases included). The figures are CPU time of the topology's own code and its stores, without
Kafka, serialization to the broker or commits, so they rank the rules rather than predict a
worker's throughput (see ``streamer demo --fast`` for that).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

from streamer.demo.generator import FraudDataGenerator, GeneratorConfig
from streamer.testing import TopologyTestDriver

START = 1_700_000_000_000


def _fraud() -> Any:
    """The fraud topology's module, shipped as ``streamer.examples`` (imported on use: a
    source tree that is not installed has no ``streamer.examples``)."""
    return importlib.import_module("streamer.examples.fraud")


def seconds_for(rules: str, generator: FraudDataGenerator, txs: list[dict[str, Any]]) -> float:
    """Wall time to pipe ``txs`` through the topology with ``rules``, tables preloaded."""
    fraud = _fraud()
    topology = fraud.build(fraud.FraudConfig(rules=rules))
    with TopologyTestDriver(topology, partitions={"transactions": 4}) as d:
        for merchant, row in generator.blocked_merchants.items():
            d.pipe("blocked-merchants", merchant, row)
        for card, row in generator.card_limits():
            d.pipe("card-limits", card, row)
        began = time.perf_counter()
        for tx in txs:
            d.pipe("transactions", tx["card"], tx, timestamp=tx["ts"])
        return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamer.demo.rule_cost", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    generator = FraudDataGenerator(GeneratorConfig(seed=args.seed, events=args.events))
    txs = [item.tx for item in generator.transactions(START)]
    reasons = _fraud().REASONS
    variants = [("no rule", ""), *((r, r) for r in reasons), ("all rules", ",".join(reasons))]
    print(f"{len(txs):,} realistic transactions (seed {args.seed}), best of {args.repeat} runs")
    print(f"{'rules':<18} {'tx/s':>8} {'us/tx':>7} {'rule cost us/tx':>16}")
    # Round-robin, so that a slow spell of a shared machine does not fall on one variant.
    best = dict.fromkeys((label for label, _ in variants), float("inf"))
    for _ in range(args.repeat):
        for label, rules in variants:
            best[label] = min(best[label], seconds_for(rules, generator, txs))
    base = None
    for label, _rules in variants:
        per_tx = best[label] / len(txs) * 1e6
        base = per_tx if base is None else base
        cost = "" if label == "no rule" else f"{per_tx - base:+.1f}"
        print(f"{label:<18} {len(txs) / best[label]:>8,.0f} {per_tx:>7.1f} {cost:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
