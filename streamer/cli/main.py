"""The ``streamer`` command line.

Each command group lives in its own module, which exposes ``register(subparsers)``. A
command's handler returns the process exit code. Errors derived from
:class:`streamer.errors.StreamerError` are printed as one line, without a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from streamer.errors import StreamerError

COMMAND_MODULES = (
    "streamer.cli.broker",
    "streamer.cli.demo",
    "streamer.cli.run",
    "streamer.cli.describe",
    "streamer.cli.lag",
    "streamer.cli.replay",
    "streamer.cli.reset",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Stream processing for Apache Kafka in Python."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    import importlib

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except StreamerError as exc:
        print(f"streamer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
