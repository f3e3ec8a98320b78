"""``streamer run``: run a topology as a worker group on this host."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from streamer.runtime.config import AppConfig, ErrorPolicy, Guarantee
from streamer.runtime.loader import load_topology
from streamer.runtime.supervisor import Supervisor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a topology as a group of worker processes",
        description=(
            "Run TOPOLOGY (a .py file or module, optionally :name) as N worker processes in "
            "the consumer group named by the app id. Run the same command on another host "
            "(with another --instance-prefix) to join the group."
        ),
    )
    parser.add_argument("topology", help="path/to/file.py or package.module[:name]")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument(
        "--guarantee",
        choices=[g.value for g in Guarantee],
        default=Guarantee.EXACTLY_ONCE.value,
    )
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--state-dir", type=Path, default=Path("var/state"))
    parser.add_argument(
        "--error-policy", choices=[p.value for p in ErrorPolicy], default=ErrorPolicy.FAIL.value
    )
    parser.add_argument("--commit-interval-ms", type=int, default=None)
    parser.add_argument("--instance-prefix", default="", help="unique per host, e.g. host-a-")
    parser.add_argument("--static-membership", action="store_true")
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=1,
        metavar="N",
        help="replicas of the internal topics the workers create (default 1)",
    )
    parser.add_argument(
        "--group-protocol",
        choices=["consumer", "classic"],
        default="consumer",
        help="consumer: KIP-848 with the range assignor (co-partitioned joins); "
        "classic: cooperative-sticky",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="give up (exit 1) when a worker fails this many times in a row (default 5)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics: worker process i listens on PORT+i (default: off)",
    )
    parser.add_argument(
        "--metrics-address",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="address the metrics servers bind to (default %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.replication_factor < 1:
        print("streamer: error: --replication-factor must be at least 1", file=sys.stderr)
        return 2
    load_topology(args.topology)  # fail fast, in the parent, on a broken topology
    config = AppConfig(
        app_id=args.app_id,
        bootstrap_servers=args.bootstrap_servers,
        guarantee=Guarantee(args.guarantee),
        state_dir=args.state_dir,
        error_policy=ErrorPolicy(args.error_policy),
        commit_interval_ms=args.commit_interval_ms,
        instance_prefix=args.instance_prefix,
        static_membership=args.static_membership,
        internal_replication_factor=args.replication_factor,
    )
    if args.processes < 1:
        print("streamer: error: --processes must be at least 1", file=sys.stderr)
        return 2
    if args.metrics_port is not None and not 0 < args.metrics_port <= 65535 - args.processes:
        print(
            f"streamer: error: --metrics-port must leave room for {args.processes} ports "
            "(1 to 65535)",
            file=sys.stderr,
        )
        return 2
    return Supervisor(
        args.topology,
        config,
        processes=args.processes,
        group_protocol=args.group_protocol,
        max_failures=args.max_restarts,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
    ).run()
