"""Options and prompts shared by the operations commands (lag, replay, reset)."""

from __future__ import annotations

import argparse
import sys

from streamer.errors import ConfigError
from streamer.runtime.loader import load_topology
from streamer.topology.graph import Topology


def add_app_options(parser: argparse.ArgumentParser, *, topology_help: str) -> None:
    parser.add_argument("--app-id", required=True, help="the app id (consumer group id)")
    parser.add_argument("--bootstrap-servers", required=True, help="host:port[,host:port...]")
    parser.add_argument("--topology", metavar="FILE", help=topology_help)
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for the cluster to answer (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def topology_of(args: argparse.Namespace) -> Topology | None:
    return None if args.topology is None else load_topology(args.topology)


def confirm(args: argparse.Namespace, action: str) -> bool:
    """True with --yes, or when the user types the app id; never prompts without a tty."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        msg = f"{action} needs confirmation: pass --yes (or see what it would do with --dry-run)"
        raise ConfigError(msg)
    print(f"Type the app id ({args.app_id}) to {action}, anything else to cancel: ", end="")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    if answer != args.app_id:
        print("cancelled: nothing was changed")
        return False
    return True
