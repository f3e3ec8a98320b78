"""``streamer lag``: per-partition consumer lag of an app, with the member owning each one.

For each partition the app's group reads (those with committed offsets, those assigned to
its members, and with --topology every partition of its input and repartition topics):
the committed offset, the end offset (last stable offset), the lag and the owner
(client id and host). Then the lag per topic and in total. --watch refreshes until Ctrl-C;
with --json, each refresh prints one JSON object on one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from streamer.cli._ops import add_app_options, target_of, topology_of
from streamer.ops.lag import collect_lag


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lag",
        help="show an app's consumer lag per partition, with owners",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_options(
        parser, topology_help="the app's topology: also list partitions it has not read yet"
    )
    parser.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until interrupted",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.watch is not None and args.watch <= 0:
        print("streamer: error: --watch needs a positive number of seconds", file=sys.stderr)
        return 2
    target = target_of(args)  # the app id is checked before anything is read
    topology = topology_of(args)
    cluster = target.cluster(args.timeout)
    clear = args.watch is not None and not args.json and sys.stdout.isatty()
    try:
        while True:
            report = collect_lag(cluster, target.app_id, topology)
            if args.json:
                text = json.dumps(report.to_json(), indent=None if args.watch else 2)
            else:
                text = report.format()
            if clear:
                sys.stdout.write("\x1b[H\x1b[2J")
            print(text, flush=True)
            if args.watch is None:
                return 0
            if not args.json and not clear:
                print(flush=True)
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # piped into head or less, which closed early
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing may write to the pipe
        return 0
