"""The generator's command line, run as ``python -m streamer.demo.generator``.

Without ``--bootstrap-servers`` it writes the transactions to stdout as JSON lines; with it,
it produces the ``blocked-merchants`` and ``card-limits`` tables, then the transactions,
each at its event time unless ``--fast``. ``--truth`` writes the ground truth file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamer.demo import generator
from streamer.demo.generator import (
    FraudDataGenerator,
    GenerationStats,
    GeneratorConfig,
    LabeledTransaction,
)
from streamer.demo.ground_truth import write_ground_truth
from streamer.demo.world import KINDS, MODES


def main(argv: list[str] | None = None) -> int:
    """``python -m streamer.demo.generator``: produce to a running cluster (e.g. for
    ``streamer run topologies/fraud.py``), or write the transactions as JSON lines."""
    args = _parse_args(argv)
    data = FraudDataGenerator(
        GeneratorConfig(seed=args.seed, events=args.events, rate=args.rate, mode=args.mode)
    )
    stats = GenerationStats()
    start_ms = int(time.time() * 1000) + 1_000
    labels: list[dict[str, Any]] = []
    records = data.transactions(start_ms, stats)
    if args.bootstrap_servers is None:
        for item in records:
            labels.append(_truth_row(item))
            sys.stdout.write(json.dumps(item.tx) + "\n")
    else:
        _produce_to_kafka(args, data, records, labels)
    if args.truth is not None:
        write_ground_truth(args.truth, labels)
    print(
        f"{stats.transactions:,} transactions; patterns "
        + ", ".join(f"{k} {stats.instances[k]} ({stats.labeled[k]} tx)" for k in KINDS),
        file=sys.stderr,
    )
    return 0


def _truth_row(item: LabeledTransaction) -> dict[str, Any]:
    tx = item.tx
    return {
        "id": tx["id"],
        "card": tx["card"],
        "ts": tx["ts"],
        "kind": item.kind,
        "attack": item.attack,
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m streamer.demo.generator", description=generator.__doc__
    )
    parser.add_argument("--events", type=int, default=GeneratorConfig.events)
    parser.add_argument("--rate", type=float, default=GeneratorConfig.rate, help="per second")
    parser.add_argument("--seed", type=int, default=GeneratorConfig.seed)
    parser.add_argument("--mode", choices=MODES, default=GeneratorConfig.mode)
    parser.add_argument("--bootstrap-servers", help="produce here; else print JSON lines")
    parser.add_argument("--topic", default="transactions")
    parser.add_argument("--blocked-merchants-topic", default="blocked-merchants")
    parser.add_argument("--card-limits-topic", default="card-limits")
    parser.add_argument("--truth", type=Path, help="write the ground truth here")
    parser.add_argument(
        "--fast", action="store_true", help="produce as fast as possible, not in real time"
    )
    return parser.parse_args(argv)


def _produce_to_kafka(
    args: argparse.Namespace,
    data: FraudDataGenerator,
    records: Iterator[LabeledTransaction],
    labels: list[dict[str, Any]],
) -> None:
    """Produce the reference tables, then the transactions (in real time unless ``--fast``),
    appending each transaction's label to ``labels`` as it is sent."""
    from streamer.kafka.clients import produce, produce_paced

    servers = args.bootstrap_servers
    produce(
        servers,
        args.blocked_merchants_topic,
        ((m.encode(), json.dumps(row).encode()) for m, row in data.blocked_merchants.items()),
    )
    produce(
        servers,
        args.card_limits_topic,
        ((c.encode(), json.dumps(row).encode()) for c, row in data.card_limits()),
    )

    def paced() -> Iterator[tuple[int | None, bytes, bytes]]:
        for item in records:
            labels.append(_truth_row(item))
            due = None if args.fast else item.tx["ts"]
            yield due, item.tx["card"].encode(), json.dumps(item.tx).encode()

    def progress(sent: int) -> None:
        print(f"\rproduced {sent:,}/{args.events:,}", end="", file=sys.stderr, flush=True)

    produce_paced(servers, args.topic, paced(), on_progress=progress)
    print(file=sys.stderr)
