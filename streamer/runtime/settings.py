"""One configuration model for every command: defaults, a TOML file, environment, flags.

Precedence, setting by setting: **flag > environment > file > default**. The file is the
one ``--config`` (or ``STREAMER_CONFIG``) names, read with :mod:`tomllib`:

* ``[app]``: the app's settings (:data:`OPTIONS` with table ``app``), which become an
  :class:`~streamer.runtime.config.AppConfig`;
* ``[run]``: how ``streamer run`` supervises its worker processes;
* ``[kafka]``: librdkafka settings for every client, and ``[kafka.consumer]``,
  ``[kafka.producer]``, ``[kafka.admin]`` over it per role. Their keys are passed through
  (librdkafka checks them when a client is built); settings streamer manages are refused.

Each option ``name`` is also the variable ``STREAMER_<NAME>`` and, when it has one, the flag
``--<name-with-dashes>``. librdkafka settings come from ``STREAMER_KAFKA__<KEY>`` (and
``STREAMER_KAFKA_CONSUMER__<KEY>``, ...), the key upper-cased with ``.`` written ``_``, and
from ``--kafka KEY=VALUE`` (and ``--kafka-consumer``, ...). Other ``STREAMER_*`` variables
are not settings and are ignored.

Everything here is pure: :func:`resolve` takes the parsed file, the environment and the
flags, and returns :class:`Settings` or raises :class:`ConfigError` naming the key and where
it came from. Only :func:`read_file` touches the disk.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError
from streamer.runtime.client_config import ROLE_TABLES, check_user_settings
from streamer.runtime.config import (
    REDACTED,
    AppConfig,
    ErrorPolicy,
    Guarantee,
    check_app_id,
    is_secret,
)


@dataclass(frozen=True)
class Option:
    """One setting: ``[table] name``, ``STREAMER_<NAME>`` and maybe ``--<name>``."""

    name: str
    table: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    flag: bool = True

    @property
    def env(self) -> str:
        return f"STREAMER_{self.name.upper()}"

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("app_id", "app", str, None, "consumer group id, transactional.id prefix, state dir"),
    Option("bootstrap_servers", "app", str, None, "host:port[,host:port...]"),
    Option(
        "guarantee",
        "app",
        str,
        Guarantee.EXACTLY_ONCE.value,
        "processing guarantee",
        choices=tuple(g.value for g in Guarantee),
    ),
    Option("state_dir", "app", Path, Path("var/state"), "root of local state"),
    Option("instance_prefix", "app", str, "", "prefix of this host's worker slots"),
    Option("commit_interval_ms", "app", int, None, "ms between commits", minimum=1),
    Option(
        "error_policy",
        "app",
        str,
        ErrorPolicy.FAIL.value,
        "what happens to a record that fails",
        choices=tuple(p.value for p in ErrorPolicy),
    ),
    Option("static_membership", "app", bool, False, "set group.instance.id per slot"),
    Option("replication_factor", "app", int, 1, "replicas of internal topics", minimum=1),
    Option(
        "standby_replicas",
        "app",
        int,
        0,
        "warm copies of each task's stores on other hosts",
        minimum=0,
    ),
    Option("log_payloads", "app", bool, False, "error logs may show record keys and values"),
    Option("internal_topic_prefix", "app", str, None, "prefix of internal topics", flag=False),
    Option("max_batch", "app", int, 1000, "records per poll", minimum=1, flag=False),
    Option("poll_timeout_ms", "app", int, 10, "poll wait, ms", minimum=0, flag=False),
    Option("restore_batch", "app", int, 10_000, "restored records per step", minimum=1, flag=False),
    Option(
        "repartition_purge_interval_ms",
        "app",
        int,
        30_000,
        "how often committed repartition records are deleted, ms",
        minimum=1,
        flag=False,
    ),
    Option("processes", "run", int, 1, "worker processes on this host", minimum=1),
    Option(
        "group_protocol",
        "run",
        str,
        "consumer",
        "consumer group protocol",
        choices=("consumer", "classic"),
    ),
    Option("max_restarts", "run", int, 5, "give up after this many failures", minimum=1),
    Option("metrics_port", "run", int, None, "first Prometheus port", minimum=1),
    Option("metrics_address", "run", str, "0.0.0.0", "address of the metrics servers"),
    Option("http_port", "run", int, None, "first query and console port", minimum=1),
    Option("http_address", "run", str, "127.0.0.1", "address of the query servers"),
    Option("advertised_url", "run", str, None, "URL other members reach worker 0's server at"),
    Option("http_token", "run", str, None, "bearer token the query servers require", flag=False),
)
OPTION: Mapping[str, Option] = {o.name: o for o in OPTIONS}
TABLES = ("app", "run")
ROLES = tuple(ROLE_TABLES)  # "kafka" (every client), "consumer", "producer", "admin"
_APP_FIELDS = {"replication_factor": "internal_replication_factor"}
_APP_ENUMS: Mapping[str, type] = {"guarantee": Guarantee, "error_policy": ErrorPolicy}


def env_prefix(role: str) -> str:
    """``STREAMER_KAFKA__`` for ``[kafka]``, ``STREAMER_KAFKA_CONSUMER__`` for its role."""
    return "STREAMER_KAFKA__" if role == "kafka" else f"STREAMER_KAFKA_{role.upper()}__"


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one command.

    ``values`` has every option (its default when unset) and ``origins`` where each came
    from: ``default``, ``file``, a variable name or a flag. ``kafka`` has the user's
    librdkafka settings per role (``kafka``, ``consumer``, ``producer``, ``admin``), each
    resolved by the same precedence, and ``kafka_origins`` where each key came from.
    """

    values: Mapping[str, Any]
    origins: Mapping[str, str]
    kafka: Mapping[str, Mapping[str, Any]] = field(repr=False)  # may hold secrets
    kafka_origins: Mapping[tuple[str, str], str] = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self) -> str:
        values = {
            k: REDACTED if is_secret(k) and v is not None else v for k, v in self.values.items()
        }
        return f"Settings(values={values!r}, origins={self.origins!r}, path={self.path!r})"

    def given(self, name: str) -> bool:
        return self.origins[name] != "default"

    def require(self, name: str) -> Any:
        """The value of ``name``; a :class:`ConfigError` saying how to set it when unset."""
        value = self.values[name]
        if value is None:
            option = OPTION[name]
            where = f"{option.flag_name}, " if option.flag else ""
            msg = f"{name} is required: set {where}{option.env} or [{option.table}] {name}"
            raise ConfigError(msg)
        return value

    def admin_settings(self) -> dict[str, Any]:
        """The user's settings of an admin client: ``[kafka]``, then ``[kafka.admin]``."""
        return {**self.kafka["kafka"], **self.kafka["admin"]}

    def app_config(self) -> AppConfig:
        """The :class:`AppConfig` these settings describe (app id and servers required)."""
        self.require("app_id")
        self.require("bootstrap_servers")
        kwargs: dict[str, Any] = {}
        for option in OPTIONS:
            if option.table != "app":
                continue
            value = self.values[option.name]
            enum = _APP_ENUMS.get(option.name)
            kwargs[_APP_FIELDS.get(option.name, option.name)] = (
                enum(value) if enum is not None else value
            )
        return AppConfig(
            **kwargs,
            kafka_config=dict(self.kafka["kafka"]),
            consumer_config=dict(self.kafka["consumer"]),
            producer_config=dict(self.kafka["producer"]),
            admin_config=dict(self.kafka["admin"]),
        )


def read_file(path: Path) -> dict[str, Any]:
    """The TOML document at ``path``; a :class:`ConfigError` if unreadable or not TOML."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        msg = f"config file {str(path)!r} does not exist"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cannot read config file {str(path)!r}: {exc.strerror}"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ConfigError(msg) from None


def resolve(
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
    kafka_flags: Sequence[tuple[str, str, str]] = (),
    *,
    path: Path | None = None,
) -> Settings:
    """Merge defaults, ``document`` (a parsed file), ``environ`` and ``flags``.

    ``flags`` holds only the options given on the command line, already typed (by name);
    ``kafka_flags`` holds ``(role, key, value)`` triples. A bad value or an unknown key
    raises :class:`ConfigError` naming the key and its source.
    """
    label = str(path) if path is not None else "config file"
    tables, kafka_file = _split_document(document, label)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option in OPTIONS:
        value, origin = option.default, "default"
        if option.name in tables[option.table]:
            where = f"{label}: [{option.table}] {option.name}"
            value, origin = _from_file(option, tables[option.table][option.name], where), "file"
        if option.env in environ:
            value, origin = _from_text(option, environ[option.env], option.env), option.env
        if option.name in flags:
            value, origin = flags[option.name], option.flag_name
            _check_minimum(option, value, option.flag_name)
        values[option.name], origins[option.name] = value, origin
    if values["app_id"] is not None:
        try:
            check_app_id(values["app_id"])
        except ConfigError as exc:
            msg = f"{origins['app_id']}: {exc}" if origins["app_id"] != "default" else str(exc)
            raise ConfigError(msg) from None
    kafka, kafka_origins = _kafka_settings(kafka_file, environ, kafka_flags)
    for (role, key), origin in sorted(kafka_origins.items()):
        try:
            check_user_settings(role, {key: None})
        except ConfigError as exc:
            msg = f"{label if origin == 'file' else origin}: {exc}"
            raise ConfigError(msg) from None
    return Settings(values, origins, kafka, kafka_origins, path)


def _split_document(
    document: Mapping[str, Any], label: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The ``[app]``/``[run]`` tables and the ``[kafka*]`` tables, keys checked."""
    tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
    kafka: dict[str, dict[str, Any]] = {role: {} for role in ROLES}
    for name, table in document.items():
        if not isinstance(table, dict):
            msg = f"{label}: unknown key {name} (settings go in [app], [run] or [kafka])"
            raise ConfigError(msg)
        if name == "kafka":
            _split_kafka(table, kafka, label)
            continue
        if name not in tables:
            msg = f"{label}: unknown table [{name}]{_suggest(name, (*TABLES, 'kafka'))}"
            raise ConfigError(msg)
        known = [o.name for o in OPTIONS if o.table == name]
        for key in table:
            if key not in known:
                msg = f"{label}: unknown key [{name}] {key}{_suggest(key, known)}"
                raise ConfigError(msg)
        tables[name] = dict(table)
    return tables, kafka


def _split_kafka(table: Mapping[str, Any], kafka: dict[str, dict[str, Any]], label: str) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in ROLES or key == "kafka":
                roles = ("consumer", "producer", "admin")
                msg = f"{label}: unknown table [kafka.{key}]{_suggest(key, roles)}"
                raise ConfigError(msg)
            for inner, inner_value in value.items():
                kafka[key][inner] = _kafka_value(inner_value, f"{label}: [kafka.{key}] {inner}")
        else:
            kafka["kafka"][key] = _kafka_value(value, f"{label}: [kafka] {key}")


def _kafka_value(value: Any, where: str) -> str | int | float | bool:
    if isinstance(value, (str, int, float, bool)):
        return value
    msg = f"{where} must be a string, number or boolean, got {type(value).__name__}"
    raise ConfigError(msg)


def _kafka_settings(
    kafka_file: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    kafka_flags: Sequence[tuple[str, str, str]],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """Per role: file, then ``STREAMER_KAFKA_<ROLE>__<KEY>`` variables, then flags."""
    kafka: dict[str, dict[str, Any]] = {role: dict(kafka_file[role]) for role in ROLES}
    origins = {(role, key): "file" for role in ROLES for key in kafka[role]}
    for name in sorted(environ):
        for role in ROLES:
            prefix = env_prefix(role)
            if name.startswith(prefix) and len(name) > len(prefix):
                key = name[len(prefix) :].lower().replace("_", ".")
                kafka[role][key], origins[(role, key)] = environ[name], name
    for role, key, value in kafka_flags:
        flag = "--kafka" if role == "kafka" else f"--kafka-{role}"
        kafka[role][key], origins[(role, key)] = value, flag
    return kafka, origins


def _from_file(option: Option, value: Any, where: str) -> Any:
    expected = {str: "a string", int: "an integer", bool: "a boolean", Path: "a string"}
    ok = isinstance(value, str if option.kind is Path else option.kind)
    if option.kind is int and isinstance(value, bool):
        ok = False
    if not ok:
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        msg = f"{where} must be {expected[option.kind]}, got {shown}"
        raise ConfigError(msg)
    return _checked(option, Path(value) if option.kind is Path else value, where)


def _from_text(option: Option, text: str, where: str) -> Any:
    """A variable's text as the option's type."""
    if option.kind is int:
        try:
            return _checked(option, int(text), where)
        except ValueError:
            msg = f'{where} must be an integer, got "{text}"'
            raise ConfigError(msg) from None
    if option.kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        msg = f'{where} must be true or false, got "{text}"'
        raise ConfigError(msg)
    return _checked(option, Path(text) if option.kind is Path else text, where)


def _checked(option: Option, value: Any, where: str) -> Any:
    if option.choices and value not in option.choices:
        msg = f'{where} must be one of {", ".join(option.choices)}, got "{value}"'
        raise ConfigError(msg)
    _check_minimum(option, value, where)
    return value


def _check_minimum(option: Option, value: Any, where: str) -> None:
    if option.minimum is not None and value is not None and value < option.minimum:
        msg = f"{where} must be at least {option.minimum}, got {value}"
        raise ConfigError(msg)


def _suggest(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def secret_keys(settings: Settings) -> list[tuple[str, str]]:
    """``(role, key)`` of every secret librdkafka setting, for warnings and redaction."""
    return [(role, key) for role in ROLES for key in settings.kafka[role] if is_secret(key)]
