"""The configuration options every command shares: ``--config``, setting flags, ``--kafka``.

Flags are declared from :data:`streamer.runtime.settings.OPTIONS`, so a flag, its variable
and its file key always have the same name. Each flag records that it was given (in the
namespace's :data:`GIVEN` set): only given flags override the environment and the file,
while ``args.<name>`` still holds the default for code that reads it directly.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError
from streamer.runtime.settings import OPTION, ROLES, Settings, read_file, resolve, secret_keys

GIVEN = "_given_settings"
KAFKA_FLAGS = "_kafka_settings"
log = logging.getLogger("streamer.config")


def _mark_given(namespace: argparse.Namespace, dest: str) -> None:
    given: set[str] = set(getattr(namespace, GIVEN, set()))
    given.add(dest)
    setattr(namespace, GIVEN, given)


class _Store(argparse.Action):
    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        setattr(namespace, self.dest, values)
        _mark_given(namespace, self.dest)


class _Switch(argparse.BooleanOptionalAction):
    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        super().__call__(parser, namespace, values, option)
        _mark_given(namespace, self.dest)


class _KafkaSetting(argparse.Action):
    """``KEY=VALUE`` for the role named by ``const``, appended in order."""

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        key, sep, value = str(values).partition("=")
        if not sep or not key:
            parser.error(f"{option} takes KEY=VALUE, got {values!r}")
        settings = list(getattr(namespace, KAFKA_FLAGS, []))
        settings.append((self.const, key.strip(), value))
        setattr(namespace, KAFKA_FLAGS, settings)


def add_config_options(
    parser: argparse.ArgumentParser,
    names: Sequence[str],
    *,
    kafka: bool = True,
    helps: dict[str, str] | None = None,
) -> None:
    """``--config``, a flag per option in ``names`` and, with ``kafka``, the ``--kafka*``
    flags. ``helps`` replaces an option's help text for this command."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        action=_Store,
        metavar="FILE",
        help="TOML configuration file (default: $STREAMER_CONFIG); flags win over "
        "STREAMER_* variables, which win over the file",
    )
    for name in names:
        option = OPTION[name]
        text = (helps or {}).get(name, option.help)
        if option.kind is bool:
            parser.add_argument(
                option.flag_name, dest=name, action=_Switch, default=option.default, help=text
            )
            continue
        default = option.default
        parser.add_argument(
            option.flag_name,
            dest=name,
            action=_Store,
            type=option.kind,
            default=default,
            choices=option.choices or None,
            metavar=None if option.choices else name.split("_")[-1].upper(),
            help=f"{text} (default: {default})" if default not in (None, "") else text,
        )
    if kafka:
        for role in ROLES:
            flag = "--kafka" if role == "kafka" else f"--kafka-{role}"
            table = "[kafka]" if role == "kafka" else f"[kafka.{role}]"
            parser.add_argument(
                flag,
                action=_KafkaSetting,
                const=role,
                metavar="KEY=VALUE",
                help=f"a librdkafka setting of the {table} table (repeatable)",
            )


def settings_of(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """The command's effective settings: its flags over ``STREAMER_*`` over the file."""
    env = dict(os.environ if environ is None else environ)
    path: Path | None = getattr(args, "config", None) if "config" in given(args) else None
    if path is None and env.get("STREAMER_CONFIG"):
        path = Path(env["STREAMER_CONFIG"])
    document = read_file(path) if path is not None else {}
    flags = {name: getattr(args, name) for name in given(args) if name in OPTION}
    settings = resolve(document, env, flags, getattr(args, KAFKA_FLAGS, []), path=path)
    if path is not None and secret_keys(settings):
        _warn_if_readable(path)
    return settings


def given(args: argparse.Namespace) -> set[str]:
    """The destinations of the flags given on the command line."""
    return set(getattr(args, GIVEN, set()))


def _warn_if_readable(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s holds secrets but others may read it (mode %o): chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )


def require_app_id(settings: Settings) -> str:
    """The app id, which :func:`resolve` has checked against the app-id rule."""
    app_id = settings.require("app_id")
    if not isinstance(app_id, str):
        msg = "app id must be a string"
        raise ConfigError(msg)
    return app_id
