"""``streamer reset``: remove an app's offsets, internal topics and local state.

While no worker of the app runs (the command refuses otherwise): deletes the consumer
group named by the app id (its committed offsets), the app's repartition, changelog and
dead-letter topics, and <state-dir>/<app-id> on this host. Input and output topics stay.
Asks for confirmation unless --yes; --dry-run shows what it would remove.

Without --topology, internal topics are matched by name: <app-id>-*-repartition,
<app-id>-*-changelog and <app-id>-dlq (leaving out topics of a consumer group whose id
extends the app id, such as <app-id>-v2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from streamer.cli._ops import add_app_options, confirm, target_of, topology_of
from streamer.ops.reset import execute_reset, plan_reset
from streamer.runtime.settings import OPTION

DEFAULT_STATE_DIR: Path = OPTION["state_dir"].default


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reset",
        help="remove an app's offsets, internal topics and local state",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_options(
        parser,
        topology_help="the app's topology, for exact topic names",
        state_dir_help="root of local state on this host",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = target_of(args, state_dir_default=DEFAULT_STATE_DIR)  # checked before anything
    topology = topology_of(args)
    cluster = target.cluster(args.timeout)
    state_dir = target.state_dir or DEFAULT_STATE_DIR
    plan = plan_reset(cluster, target.app_id, state_dir=state_dir, topology=topology)
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **plan.to_json()}, indent=2))
    else:
        print(plan.format())
    if plan.empty:
        if not args.json:
            print("\nnothing to reset")
        return 0
    if args.dry_run:
        if not args.json:
            print("\ndry run: nothing was changed")
        return 0
    if not confirm(args, target.app_id, "reset"):
        return 1
    execute_reset(cluster, plan)
    if not args.json:
        print(f"\nreset done: app {target.app_id} starts from nothing next time.")
    return 0
