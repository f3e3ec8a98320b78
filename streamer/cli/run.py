"""``streamer run``: run a topology as a worker group on this host."""

from __future__ import annotations

import argparse
from typing import Any

from streamer.cli._config import add_config_options, settings_of
from streamer.errors import ConfigError
from streamer.runtime.launch import WorkerOptions, worker_url
from streamer.runtime.loader import load_topology
from streamer.runtime.settings import OPTIONS, Settings
from streamer.runtime.supervisor import Supervisor

RUN_OPTIONS = tuple(o.name for o in OPTIONS if o.flag)
"""Every setting with a flag: the app's and the supervisor's."""

HELP = {
    "app_id": "consumer group id, transactional.id prefix and state directory name",
    "commit_interval_ms": "ms between commits (default: 100 under exactly-once, 1000 under "
    "at-least-once)",
    "instance_prefix": "prefix of this host's worker slots, unique per host, e.g. host-a-",
    "group_protocol": "consumer: KIP-848 with the range assignor (co-partitioned joins); "
    "classic: cooperative-sticky",
    "max_restarts": "give up (exit 1) when a worker fails this many times in a row",
    "metrics_port": "serve Prometheus metrics: worker process i listens on PORT+i",
    "log_payloads": "error logs may show record keys and values (default: only where the "
    "record is)",
    "http_port": "serve interactive queries and the web console: worker process i listens "
    "on PORT+i (token: STREAMER_HTTP_TOKEN or [run] http_token; docs/queries.md)",
    "http_address": "address the query servers bind (127.0.0.1: this host only)",
    "advertised_url": "the URL other members reach worker 0's query server at; worker i "
    "advertises its port + i (default: http://<http-address>:<port>)",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a topology as a group of worker processes",
        description=(
            "Run TOPOLOGY (a .py file or module, optionally :name) as N worker processes in "
            "the consumer group named by the app id. Run the same command on another host "
            "(with another --instance-prefix) to join the group. Settings come from flags, "
            "then STREAMER_* variables, then the --config file (docs/operations.md)."
        ),
    )
    parser.add_argument("topology", help="path/to/file.py or package.module[:name]")
    add_config_options(parser, RUN_OPTIONS, helps=HELP)
    parser.set_defaults(handler=run)


def check_run_settings(settings: Settings) -> None:
    """What only ``streamer run`` needs: room for one metrics and one query port per
    process, a valid advertised URL, and the query extra when queries are served."""
    processes = settings.values["processes"]
    for name in ("metrics_port", "http_port"):
        port = settings.values[name]
        if port is not None and not 0 < port <= 65535 - processes:
            msg = (
                f"{name.replace('_', ' ')} ({settings.origins[name]}) must leave room for "
                f"{processes} ports (1 to 65535), got {port}"
            )
            raise ConfigError(msg)
    if settings.values["http_port"] is not None:
        from streamer.query.server import require_query_extra

        require_query_extra()
        http = http_options(settings)
        for i in range(processes):
            worker_url(http.advertised_url, http.http_address, 1 + i, i)


def http_options(settings: Settings) -> WorkerOptions:
    """The query server settings every worker process gets (ports and URLs per process
    are the supervisor's)."""
    values = settings.values
    return WorkerOptions(
        http_port=values["http_port"],
        http_address=values["http_address"],
        advertised_url=values["advertised_url"],
        http_token=values["http_token"],
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    config = settings.app_config()  # the app id and every value are checked here
    check_run_settings(settings)
    load_topology(args.topology)  # fail fast, in the parent, on a broken topology
    values = settings.values
    return Supervisor(
        args.topology,
        config,
        processes=values["processes"],
        group_protocol=values["group_protocol"],
        max_failures=values["max_restarts"],
        metrics_port=values["metrics_port"],
        metrics_address=values["metrics_address"],
        http=http_options(settings),
        verbose=bool(getattr(args, "verbose", False)),
    ).run()
