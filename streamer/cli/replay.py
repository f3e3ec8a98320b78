"""``streamer replay``: reprocess an app's input from a point in time, state included.

While no worker of the app runs (the command refuses otherwise): sets the group's offsets
on the input topics to the first record at or after --from (``earliest``: the log start),
sets the offsets of its repartition topics to their ends, deletes its changelog topics and
creates them again empty, and with --state-dir deletes <state-dir>/<app-id> on this host.
Every other host that ran the app must delete its own <state-dir>/<app-id> before starting
workers again. --dry-run prints every offset and topic it would change and changes nothing.

Without --topology, the input topics are the topics the group committed offsets for, and
internal topics are matched by name (<app-id>-*-repartition, <app-id>-*-changelog).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from streamer.cli._ops import add_app_options, confirm, target_of, topology_of
from streamer.ops.replay import execute_replay, parse_start, plan_replay


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="reprocess an app's input from a time, rebuilding its state",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_options(
        parser,
        topology_help="the app's topology, for exact topic names",
        state_dir_help="also delete <state-dir>/<app-id> on this host (default: keep it, and warn)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="earliest|TIME",
        help="'earliest' or an ISO-8601 time with a UTC offset, e.g. 2024-06-01T12:00:00Z",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = target_of(args)  # the app id is checked before anything is read or changed
    start = parse_start(args.start)
    topology = topology_of(args)
    cluster = target.cluster(args.timeout)
    plan = plan_replay(cluster, target.app_id, start, topology=topology, state_dir=target.state_dir)
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **plan.to_json()}, indent=2))
    else:
        print(plan.format())
    if args.dry_run:
        if not args.json:
            print("\ndry run: nothing was changed")
        return 0
    if not confirm(args, target.app_id, "replay"):
        return 1
    execute_replay(cluster, plan)
    if not args.json:
        print(
            f"\nreplay prepared: {len(plan.offsets)} offsets set, "
            f"{len(plan.changelogs)} changelog topics recreated"
            + (f", {plan.state_path} deleted" if plan.state_path else "")
        )
        print("start the workers again to reprocess.")
    return 0
