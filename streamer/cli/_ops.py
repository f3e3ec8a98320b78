"""Options and prompts shared by the operations commands (lag, replay, reset)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.cli._config import add_config_options, require_app_id, settings_of
from streamer.errors import ConfigError
from streamer.ops.apps import Cluster
from streamer.runtime.loader import load_topology
from streamer.topology.graph import Topology


def add_app_options(
    parser: argparse.ArgumentParser, *, topology_help: str, state_dir_help: str | None = None
) -> None:
    """The app's settings (``--config``, ``--app-id``, ``--bootstrap-servers``, with
    ``state_dir_help`` also ``--state-dir``, the ``--kafka*`` flags), then the options of
    every operations command."""
    names = ["app_id", "bootstrap_servers"]
    helps = {"app_id": "the app id (consumer group id)"}
    if state_dir_help is not None:
        names.append("state_dir")
        helps["state_dir"] = state_dir_help
    add_config_options(parser, names, helps=helps)
    parser.add_argument("--topology", metavar="FILE", help=topology_help)
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for the cluster to answer (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


@dataclass(frozen=True)
class OpsTarget:
    """The app an operations command acts on, from its settings. ``app_id`` has passed the
    app-id rule, so nothing derived from it (group, topics, state path) escapes its place.
    ``admin_config`` (``[kafka]`` then ``[kafka.admin]``) may hold secrets: never print it."""

    app_id: str
    bootstrap_servers: str
    admin_config: dict[str, Any] = field(repr=False)
    state_dir: Path | None

    def cluster(self, timeout: float) -> Cluster:
        return Cluster(self.bootstrap_servers, timeout=timeout, config=self.admin_config)


def target_of(args: argparse.Namespace, *, state_dir_default: Path | None = None) -> OpsTarget:
    """Resolve and check the command's settings before anything is read or changed.

    ``state_dir`` is the setting when it was given (flag, variable or file), else
    ``state_dir_default``."""
    settings = settings_of(args)
    app_id = require_app_id(settings)
    bootstrap = str(settings.require("bootstrap_servers"))
    state_dir = settings.values["state_dir"] if settings.given("state_dir") else state_dir_default
    return OpsTarget(app_id, bootstrap, settings.admin_settings(), state_dir)


def topology_of(args: argparse.Namespace) -> Topology | None:
    return None if args.topology is None else load_topology(args.topology)


def confirm(args: argparse.Namespace, app_id: str, action: str) -> bool:
    """True with --yes, or when the user types the app id; never prompts without a tty."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        msg = f"{action} needs confirmation: pass --yes (or see what it would do with --dry-run)"
        raise ConfigError(msg)
    print(f"Type the app id ({app_id}) to {action}, anything else to cancel: ", end="")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    if answer != app_id:
        print("cancelled: nothing was changed")
        return False
    return True
