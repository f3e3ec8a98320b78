"""``streamer query``: read a running app's state store, through any of its workers.

The app's workers must serve queries (``streamer run --http-port``). The worker asked is
found in the group's description (each member publishes its URL in its client id), or
given with --url. The token, when the workers require one, comes from STREAMER_HTTP_TOKEN
or ``[run] http_token`` in the --config file, never from the command line.

    streamer query --app-id fraud --store card-velocity --key card-1
    streamer query --app-id fraud --store counts --prefix card-1 --limit 20
    streamer query --app-id fraud --store card-velocity --key card-1 --time-from 0

Prints the answer as JSON. Exit codes: 0 answered, 1 the server refused or could not
answer (404 unknown store, 400 bad key, 401 token, 503 restoring or moving: try again),
2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from streamer.cli._config import add_config_options, require_app_id, settings_of
from streamer.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "query",
        help="read a running app's state store by key, range, prefix or time span",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(
        parser,
        ["app_id", "bootstrap_servers"],
        helps={"app_id": "the app id (consumer group id)"},
    )
    parser.add_argument("--store", required=True, help="the state store's name")
    parser.add_argument("--key", help="the key to look up")
    parser.add_argument("--prefix", help="every key that starts with PREFIX (key-value stores)")
    parser.add_argument("--from", dest="start", help="range start, inclusive (key-value stores)")
    parser.add_argument("--to", dest="end", help="range end, exclusive (key-value stores)")
    parser.add_argument(
        "--time-from", type=int, help="window or session stores: from this time (ms)"
    )
    parser.add_argument("--time-to", type=int, help="window or session stores: to this time (ms)")
    parser.add_argument(
        "--encoding",
        default="text",
        choices=("text", "json", "base64", "hex"),
        help="how keys are given (default: text)",
    )
    parser.add_argument("--limit", type=int, default=100, help="rows per page (default 100)")
    parser.add_argument("--url", help="ask this worker instead of finding one in the group")
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="seconds to wait for an answer (default 15)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streamer.query import QueryClient, QueryError

    settings = settings_of(args)
    token = settings.values["http_token"]
    timeout = args.timeout
    if args.key is None and args.prefix is None and args.start is None and args.end is None:
        msg = "give --key, --prefix, or --from/--to"
        raise ConfigError(msg)
    if args.url is not None:
        client = QueryClient(args.url, token=token, timeout=timeout)
    else:
        client = QueryClient.for_app(
            require_app_id(settings),
            str(settings.require("bootstrap_servers")),
            config=settings.admin_settings(),
            token=token,
            timeout=timeout,
        )
    try:
        with client:
            answer = _ask(client, args)
    except QueryError as exc:
        print(f"streamer: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(answer, indent=2, ensure_ascii=False), flush=True)
    except BrokenPipeError:  # piped into head or less, which closed early
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing may write to the pipe
    return 0


def _ask(client: Any, args: argparse.Namespace) -> Any:
    if args.key is None:
        return client.range(
            args.store,
            start=args.start,
            end=args.end,
            prefix=args.prefix,
            limit=args.limit,
            encoding=args.encoding,
        )
    if args.time_from is None and args.time_to is None:
        return client.get(args.store, args.key, encoding=args.encoding)
    kinds = {s["name"]: s["kind"] for s in client.app()["topology"]["stores"]}
    span = (args.time_from or 0, args.time_to or int(time.time() * 1000))
    if kinds.get(args.store) == "session":
        return client.sessions(args.store, args.key, *span, encoding=args.encoding)
    return client.windows(args.store, args.key, *span, encoding=args.encoding)
