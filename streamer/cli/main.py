"""The streamer command line.

Each command group lives in its own module, which exposes ``register(subparsers)``. A
command's handler returns the process exit code.

``streamer --version`` prints the versions of the package, of librdkafka (the Kafka client
library) and of the Kafka broker that the test harness and ``streamer broker up`` run.

A failure is printed as one line, ``streamer: error: ...``, without a stack trace: errors
derived from :class:`streamer.errors.StreamerError` (bad settings, an unloadable topology,
an unsafe operation, a cluster that does not answer) exit 2, anything else 1. With
``-v``/``--verbose`` (before or after the command), logs go down to DEBUG and the
traceback is printed before that line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import platform
import sys
import traceback
from collections.abc import Sequence

from streamer.errors import StreamerError

COMMAND_MODULES = (
    "streamer.cli.broker",
    "streamer.cli.demo",
    "streamer.cli.run",
    "streamer.cli.describe",
    "streamer.cli.lag",
    "streamer.cli.query",
    "streamer.cli.replay",
    "streamer.cli.reset",
    "streamer.cli.config",
)
VERBOSE_HELP = "log at DEBUG level and print the traceback of a failure"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Stream processing for Apache Kafka in Python."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument(
        "--version",
        action=_PrintVersion,
        help="print the versions of streamer, librdkafka and the test harness's Kafka broker",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for command in subparsers.choices.values():
        # SUPPRESS: a command's own -v only sets True, never hides one given before it.
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    return parser


def version_text() -> str:
    """The lines ``streamer --version`` prints. Imports the Kafka client only when called."""
    from streamer import __version__
    from streamer.kafka.versions import confluent_kafka_version, librdkafka_version
    from streamer.testing.kafka.jars import kafka_version

    return "\n".join(
        [
            f"streamer {__version__}",
            f"librdkafka {librdkafka_version()} (confluent-kafka {confluent_kafka_version()})",
            f"Kafka broker {kafka_version()} (test harness and `streamer broker up`)",
            f"Python {platform.python_version()}",
        ]
    )


class _PrintVersion(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0, like argparse's own version action,
    but without loading the Kafka client for every other command."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(version_text())
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(args.verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        print(f"streamer: error: {one_line(exc, verbose)}", file=sys.stderr)
        return 2 if isinstance(exc, StreamerError) else 1
    return code


def one_line(exc: BaseException, verbose: bool) -> str:
    """The error as one line: a streamer error's message; another error's type too."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, StreamerError):
        return text
    hint = "" if verbose else " (run with -v for the traceback)"
    return f"unexpected {type(exc).__name__}: {text}{hint}"


if __name__ == "__main__":
    sys.exit(main())
