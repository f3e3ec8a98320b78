"""``streamer demo``: the README's main job, real-time card fraud detection.

Starts a local Kafka broker (from Maven-resolved jars), runs the fraud-detection topology
(``topologies/fraud.py``) as a group of worker processes with exactly-once processing, and
feeds it synthetic card transactions in real time, with known fraud attacks injected among
legitimate traffic that partly looks like fraud. Shows alerts as they arrive, with
throughput and consumer lag; ends with alerts by reason, cases, detection metrics against
the generator's ground truth (attack-level recall, time to detect, false alerts per 1,000,
alerts per case, precision and recall over risk-score thresholds), and the latency from
each transaction's timestamp to its alert. Stops everything it started. Prints the URL of
the web console (docs/console.md); with --console it keeps running after the traffic, until
Ctrl-C, so the state stays there to look up.

With --fast it measures throughput instead: the fraud topology's sustained records/s under
exactly-once is reported for 1 and 2 workers, each group reading transactions produced once
all its workers own partitions.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from streamer.demo.run import DemoOptions, run_demo
from streamer.demo.world import MODES

FAST_EVENTS = 100_000


def register(subparsers: Any) -> None:
    defaults = DemoOptions()
    parser = subparsers.add_parser(
        "demo",
        help="real-time fraud detection on a local broker, scored against ground truth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_traffic_arguments(parser, defaults)
    _add_run_arguments(parser, defaults)
    parser.set_defaults(handler=run)


def _add_traffic_arguments(parser: argparse.ArgumentParser, defaults: DemoOptions) -> None:
    """What the generated traffic is: how much, how fast, which seed and mode."""
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"transactions to generate (default {defaults.events:,}, {FAST_EVENTS:,} with --fast)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help=f"transactions per second (default {defaults.rate:,.0f})",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="generator seed (default %(default)s)"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=defaults.mode,
        help="realistic: legitimate traffic that overlaps with fraud; conformance: legitimate "
        "traffic inside every threshold, so the rules flag exactly the labelled transactions "
        "(default %(default)s)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser, defaults: DemoOptions) -> None:
    """How the demo runs and what it shows: workers, outputs, cases, --fast, the console."""
    parser.add_argument(
        "--processes",
        type=int,
        default=defaults.processes,
        help="worker processes (default %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=defaults.out_dir,
        help="where the ground truth, alerts and worker logs go (default %(default)s)",
    )
    parser.add_argument(
        "--case-gap",
        type=float,
        default=defaults.case_gap_ms / 1000,
        help="seconds of event time after a card's last alert before its case closes "
        "(default %(default)g)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="measure instead: the fraud topology's sustained records/s under exactly-once "
        "with 1 and 2 workers, on transactions produced as fast as the producer goes",
    )
    parser.add_argument(
        "--alert-lines",
        type=int,
        default=defaults.alert_lines_per_second,
        help="alerts printed per second at most; 0 prints none (default %(default)s)",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="keep running after the traffic, with the web console up, until Ctrl-C",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=8080,
        help="the console's port; worker i listens on PORT+i (default %(default)s, another "
        "when taken)",
    )


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        # The steps are printed; the broker harness's own INFO lines would only repeat them.
        logging.getLogger("streamer.testing.kafka").setLevel(logging.WARNING)
    if args.events is None:
        args.events = FAST_EVENTS if args.fast else DemoOptions.events
    if args.events < 1 or args.rate <= 0 or args.processes < 1 or args.case_gap <= 0:
        print("streamer: error: --events, --rate, --processes and --case-gap must be positive")
        return 2
    options = DemoOptions(
        events=args.events,
        rate=args.rate,
        seed=args.seed,
        processes=args.processes,
        out_dir=args.out,
        alert_lines_per_second=max(0, args.alert_lines),
        mode=args.mode,
        case_gap_ms=round(args.case_gap * 1000),
        http_port=args.http_port,
        console=args.console,
    )
    if args.fast:
        from streamer.demo.fast import run_fast

        return 0 if run_fast(options) else 1
    result = run_demo(options)
    failed_workers = any(code != 0 for code in result.worker_exit_codes)
    return 0 if result.caught_up and not failed_workers else 1
