"""The configuration model: precedence, checks, the [kafka*] tables, AppConfig from it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from streamer.errors import ConfigError
from streamer.runtime.client_config import (
    admin_config,
    group_consumer_config,
    producer_config,
    restore_consumer_config,
)
from streamer.runtime.config import AppConfig, Guarantee, check_app_id
from streamer.runtime.settings import OPTIONS, read_file, resolve

FILE = {
    "app": {
        "app_id": "fraud",
        "bootstrap_servers": "file:9092",
        "commit_interval_ms": 500,
        "guarantee": "at-least-once",
    },
    "run": {"processes": 3},
    "kafka": {
        "security.protocol": "SASL_SSL",
        "sasl.password": "file-secret",
        "linger.ms": 1,
        "consumer": {"fetch.min.bytes": 10},
        "producer": {"linger.ms": 20},
        "admin": {"request.timeout.ms": 5000},
    },
}


def test_each_setting_takes_flag_over_environment_over_file_over_default() -> None:
    environ = {"STREAMER_COMMIT_INTERVAL_MS": "250", "STREAMER_PROCESSES": "4"}
    settings = resolve(FILE, environ, {"processes": 5}, path=Path("streamer.toml"))
    assert settings.values["processes"] == 5
    assert settings.origins["processes"] == "--processes"
    assert settings.values["commit_interval_ms"] == 250
    assert settings.origins["commit_interval_ms"] == "STREAMER_COMMIT_INTERVAL_MS"
    assert settings.values["guarantee"] == "at-least-once"
    assert settings.origins["guarantee"] == "file"
    assert settings.values["max_batch"] == 1000
    assert settings.origins["max_batch"] == "default"
    without_flag = resolve(FILE, environ, {})
    assert without_flag.values["processes"] == 4
    assert resolve(FILE, {}, {}).values["processes"] == 3
    assert resolve({}, {}, {}).values["processes"] == 1


def test_kafka_keys_take_the_same_precedence_and_role_tables_win_over_kafka() -> None:
    environ = {
        "STREAMER_KAFKA__SASL_PASSWORD": "env-secret",
        "STREAMER_KAFKA_PRODUCER__LINGER_MS": "30",
        "STREAMER_KAFKA_BACKEND": "testcontainers",  # not a setting: ignored
        "STREAMER_CACHE_DIR": "/tmp",
    }
    flags = [("kafka", "sasl.password", "flag-secret"), ("admin", "client.rack", "r1")]
    settings = resolve(FILE, environ, {}, flags)
    assert settings.kafka["kafka"]["sasl.password"] == "flag-secret"
    assert settings.kafka_origins[("kafka", "sasl.password")] == "--kafka"
    assert settings.kafka["producer"]["linger.ms"] == "30"
    assert settings.kafka_origins[("producer", "linger.ms")] == "STREAMER_KAFKA_PRODUCER__LINGER_MS"
    assert settings.admin_settings() == {
        "security.protocol": "SASL_SSL",
        "sasl.password": "flag-secret",
        "linger.ms": 1,
        "request.timeout.ms": 5000,
        "client.rack": "r1",
    }
    config = settings.app_config()
    assert config.guarantee is Guarantee.AT_LEAST_ONCE
    assert producer_config(config, {})["linger.ms"] == "30"  # [kafka.producer] over [kafka]
    assert group_consumer_config(config, "consumer", {})["fetch.min.bytes"] == 10


def test_every_client_gets_the_kafka_table_and_its_role_table() -> None:
    config = resolve(FILE, {}, {}).app_config()
    clients = {
        "producer": producer_config(config, {}),
        "group consumer": group_consumer_config(config, "consumer", {}),
        "restore consumer": restore_consumer_config(config),
        "admin": admin_config(config),
    }
    for name, conf in clients.items():
        assert conf["security.protocol"] == "SASL_SSL", name
        assert conf["sasl.password"] == "file-secret", name
    assert clients["restore consumer"]["fetch.min.bytes"] == 10
    assert clients["restore consumer"]["isolation.level"] == "read_committed"
    assert clients["admin"]["request.timeout.ms"] == 5000
    assert "fetch.min.bytes" not in clients["admin"]


@pytest.mark.parametrize(
    ("document", "environ", "message"),
    [
        (
            {"app": {"commit_interval_ms": "fast"}},
            {},
            'streamer.toml: [app] commit_interval_ms must be an integer, got "fast"',
        ),
        (
            {"app": {"comit_interval_ms": 5}},
            {},
            "streamer.toml: unknown key [app] comit_interval_ms (did you mean commit_interval_ms?)",
        ),
        ({"apps": {}}, {}, "streamer.toml: unknown table [apps] (did you mean app?)"),
        ({"processes": 2}, {}, "streamer.toml: unknown key processes"),
        ({"run": {"processes": 0}}, {}, "streamer.toml: [run] processes must be at least 1, got 0"),
        ({"run": {"processes": True}}, {}, "[run] processes must be an integer, got True"),
        ({"app": {"static_membership": "yes"}}, {}, "must be a boolean"),
        ({"app": {"guarantee": "maybe-once"}}, {}, "must be one of exactly-once, at-least-once"),
        ({"kafka": {"linger.ms": [1]}}, {}, "[kafka] linger.ms must be a string, number or"),
        ({"kafka": {"consumers": {"a": 1}}}, {}, "unknown table [kafka.consumers]"),
        (
            {"kafka": {"producer": {"transactional.id": "x"}}},
            {},
            "streamer.toml: [kafka.producer] transactional.id cannot be set",
        ),
        ({}, {"STREAMER_MAX_BATCH": "lots"}, 'STREAMER_MAX_BATCH must be an integer, got "lots"'),
        ({}, {"STREAMER_LOG_PAYLOADS": "perhaps"}, "STREAMER_LOG_PAYLOADS must be true or false"),
        ({}, {"STREAMER_KAFKA__GROUP_ID": "x"}, "STREAMER_KAFKA__GROUP_ID: [kafka] group.id"),
        ({}, {"STREAMER_APP_ID": "../x"}, "STREAMER_APP_ID: app id '../x' must be"),
    ],
)
def test_bad_keys_and_values_are_refused_naming_the_key(
    document: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        resolve(document, environ, {}, path=Path("streamer.toml"))
    assert message in str(refused.value)


@pytest.mark.parametrize("app_id", ["../x", "/tmp/x", "..", ".", "a/b", "", "x" * 201, "é"])
def test_the_app_id_rule_refuses_paths_and_dots(app_id: str) -> None:
    with pytest.raises(ConfigError, match="must be 1-200 characters"):
        check_app_id(app_id)
    with pytest.raises(ConfigError, match="--app-id: app id"):
        resolve({}, {}, {"app_id": app_id})
    with pytest.raises(ConfigError):
        AppConfig(app_id, "kafka:9092")


def test_the_app_id_rule_accepts_kafka_group_ids() -> None:
    for app_id in ("fraud", "fraud-v2", "a.b_c", "...", "x" * 200):
        assert check_app_id(app_id) == app_id


def test_required_settings_say_how_to_set_them() -> None:
    with pytest.raises(ConfigError) as missing:
        resolve({}, {}, {}).app_config()
    assert str(missing.value) == (
        "app_id is required: set --app-id, STREAMER_APP_ID or [app] app_id"
    )


def test_the_file_is_read_as_toml(tmp_path: Path) -> None:
    path = tmp_path / "streamer.toml"
    path.write_text('[app]\napp_id = "orders"\n[kafka]\n"sasl.password" = "p"\n')
    assert read_file(path)["kafka"] == {"sasl.password": "p"}
    path.write_text("[app\n")
    with pytest.raises(ConfigError, match=r"streamer.toml: not valid TOML"):
        read_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_file(tmp_path / "missing.toml")


def test_app_config_fields_come_from_the_app_table() -> None:
    document = {
        "app": {
            "app_id": "orders",
            "bootstrap_servers": "k:9092",
            "replication_factor": 3,
            "log_payloads": True,
            "state_dir": "/var/lib/streamer",
            "internal_topic_prefix": "orders-v1",
        }
    }
    config = resolve(document, {}, {}).app_config()
    assert config.internal_replication_factor == 3
    assert config.log_payloads is True
    assert config.state_dir == Path("/var/lib/streamer")
    assert config.prefix == "orders-v1"


def test_every_option_has_one_name_for_file_variable_and_flag() -> None:
    for option in OPTIONS:
        assert option.env == "STREAMER_" + option.name.upper()
        assert option.flag_name == "--" + option.name.replace("_", "-")
        assert option.table in ("app", "run")


def test_secrets_never_show_in_the_app_config_repr() -> None:
    config = AppConfig(
        "orders",
        "k:9092",
        kafka_config={"sasl.password": "hunter2", "sasl.username": "u"},
        producer_config={"ssl.key.pem": "-----BEGIN PRIVATE KEY-----"},
        admin_config={"sasl.oauthbearer.client.secret": "s"},
    )
    text = repr(config)
    assert "hunter2" not in text
    assert "BEGIN PRIVATE" not in text
    assert "'s'" not in text
    assert "'sasl.username': 'u'" in text


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_documented_examples_are_valid_configurations() -> None:
    example = resolve(read_file(DOCS / "examples" / "streamer.toml"), {}, {})
    assert example.kafka["kafka"]["sasl.mechanism"] == "SCRAM-SHA-512"
    assert example.app_config().kafka_config["security.protocol"] == "SASL_SSL"
    page = (DOCS / "operations.md").read_text()
    (block,) = re.findall(r"^```toml\n(.*?)^```", page, re.S | re.M)
    assert resolve(tomllib.loads(block), {}, {}).values == example.values


def test_the_configuration_table_lists_every_setting_once() -> None:
    page = (DOCS / "operations.md").read_text()
    section = page.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for option in OPTIONS:
        rows = [
            line
            for line in section.splitlines()
            if line.startswith(f"| `[{option.table}] {option.name}` |")
        ]
        assert len(rows) == 1, option.name
        assert f"`{option.env}`" in rows[0]
        if option.flag:
            assert option.flag_name.removeprefix("--") in rows[0]
