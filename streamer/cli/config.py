"""``streamer config show``: print the effective configuration, secrets redacted.

Takes the same --config file, STREAMER_* variables and flags as ``streamer run`` and prints
what a command would use, as TOML, each setting followed by where it came from (a flag, a
variable, the file or the default). The value of every secret librdkafka setting
(sasl.password, ssl.key.password, ssl.key.pem, any key containing "password" or "secret",
...) is printed as "***". The output is a valid config file.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.cli._config import add_config_options, settings_of
from streamer.cli.run import HELP, RUN_OPTIONS
from streamer.runtime.config import REDACTED, is_secret
from streamer.runtime.settings import OPTIONS, ROLES, TABLES, Settings

UNSET = {
    "app_id": "required by run, lag, replay and reset",
    "bootstrap_servers": "required by run, lag, replay and reset",
    "commit_interval_ms": "100 under exactly-once, 1000 under at-least-once",
    "internal_topic_prefix": "the app id",
    "metrics_port": "no metrics served",
    "http_port": "no query server",
    "advertised_url": "http://<http-address>:<http-port + i>",
    "http_token": "no token: anyone who reaches the port may read",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the effective configuration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="config_action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print the effective configuration (TOML, secrets redacted)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(show, RUN_OPTIONS, helps=HELP)
    show.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(render(settings_of(args)), end="")
    return 0


def render(settings: Settings) -> str:
    """``settings`` as TOML, with the origin of each value as a comment."""
    lines = ["# effective configuration; precedence: flag > environment > file > default"]
    if settings.path is not None:
        lines.append(f"# file: {settings.path}")
    for table in TABLES:
        rows: list[tuple[str, str]] = []
        for option in OPTIONS:
            if option.table != table:
                continue
            value = settings.values[option.name]
            if value is None:
                rows.append((f"# {option.name} is not set", UNSET.get(option.name, "")))
            else:
                shown = REDACTED if is_secret(option.name) else value
                rows.append((f"{option.name} = {_toml(shown)}", settings.origins[option.name]))
        lines += ["", f"[{table}]", *_aligned(rows)]
    for role in ROLES:
        values: Mapping[str, Any] = settings.kafka[role]
        rows = []
        for key in sorted(values):
            shown = REDACTED if is_secret(key) else values[key]
            origin = settings.kafka_origins.get((role, key), "")
            rows.append((f"{_key(key)} = {_toml(shown)}", origin))
        header = "[kafka]" if role == "kafka" else f"[kafka.{role}]"
        if rows or role == "kafka":
            lines += ["", header, *_aligned(rows)]
    return "\n".join(lines) + "\n"


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    width = max((len(text) for text, _ in rows), default=0)
    return [f"{text:<{width}}  # {note}" if note else text for text, note in rows]


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(str(value), ensure_ascii=False)
