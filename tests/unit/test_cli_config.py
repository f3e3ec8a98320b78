"""The command line's configuration: config show, the app-id rule in every command, one-line
errors (tracebacks with -v). No broker: every case here fails or finishes before one is
needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamer.cli.main import main as cli
from streamer.runtime.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = str(ROOT / "topologies" / "card_velocity.py")
SECRET = "fake-password-31d9"
NOWHERE = "127.0.0.1:9"  # nothing listens: a command that tried to connect would time out

CONFIG = f"""
[app]
app_id = "fraud"
bootstrap_servers = "file:9093"
commit_interval_ms = 200

[run]
processes = 3

[kafka]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "fraud"
"sasl.password" = "{SECRET}"

[kafka.producer]
"linger.ms" = 20
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STREAMER_* setting of the machine running the tests leaks into them."""
    names = {o.env for o in OPTIONS} | {"STREAMER_CONFIG"}
    for name in os.environ:
        if name in names or (name.startswith("STREAMER_KAFKA") and "__" in name):
            monkeypatch.delenv(name)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "streamer.toml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    return path


def test_config_show_prints_the_effective_settings_with_secrets_redacted(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMER_COMMIT_INTERVAL_MS", "50")
    monkeypatch.setenv("STREAMER_KAFKA__SSL_KEY_PASSWORD", "another-secret")
    args = ["config", "show", "--config", str(config_file), "--processes", "2"]
    assert cli([*args, "--kafka-consumer", "fetch.min.bytes=1024"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "another-secret" not in out + err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert 'app_id = "fraud" # file' in lines
    assert "commit_interval_ms = 50 # STREAMER_COMMIT_INTERVAL_MS" in lines
    assert "processes = 2 # --processes" in lines
    assert 'guarantee = "exactly-once" # default' in lines
    assert '"sasl.password" = "***" # file' in lines
    assert '"ssl.key.password" = "***" # STREAMER_KAFKA__SSL_KEY_PASSWORD' in lines
    assert '"fetch.min.bytes" = "1024" # --kafka-consumer' in lines
    assert '"linger.ms" = 20 # file' in lines


def test_config_show_is_a_valid_config_file(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["config", "show", "--config", str(config_file)]) == 0
    shown = tmp_path / "shown.toml"
    shown.write_text(capsys.readouterr().out)
    assert cli(["config", "show", "--config", str(shown)]) == 0
    assert '"sasl.password" = "***"' in capsys.readouterr().out


COMMANDS = {
    "run": ["run", TOPOLOGY, "--bootstrap-servers", NOWHERE],
    "lag": ["lag", "--bootstrap-servers", NOWHERE, "--timeout", "1"],
    "replay": ["replay", "--bootstrap-servers", NOWHERE, "--from", "earliest", "--yes"],
    "reset": ["reset", "--bootstrap-servers", NOWHERE, "--yes", "--timeout", "1"],
    "describe": ["describe", TOPOLOGY],
    "config show": ["config", "show"],
}


@pytest.mark.parametrize("app_id", ["../x", "/tmp/x", ".."])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_an_app_id_that_is_a_path_and_touches_nothing(
    command: str, app_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    (state / "x").mkdir(parents=True)
    (tmp_path / "x").mkdir()
    args = [*COMMANDS[command], "--app-id", app_id]
    if command in ("replay", "reset"):
        args += ["--state-dir", str(state)]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err == (
        f"streamer: error: --app-id: app id {app_id!r} must be 1-200 characters from "
        "[a-zA-Z0-9._-], and not '.' or '..'\n"
    )
    assert (state / "x").is_dir()
    assert (tmp_path / "x").is_dir()


@pytest.mark.parametrize("command", ["lag", "replay", "reset"])
def test_the_app_id_rule_holds_for_ids_from_a_file_or_the_environment(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "streamer.toml"
    path.write_text('[app]\napp_id = ".."\n')
    assert cli([*COMMANDS[command], "--config", str(path)]) == 2
    assert "app id '..' must be" in capsys.readouterr().err
    monkeypatch.setenv("STREAMER_APP_ID", "../etc")
    assert cli(COMMANDS[command]) == 2
    assert "STREAMER_APP_ID: app id '../etc' must be" in capsys.readouterr().err


def test_a_setting_librdkafka_refuses_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["lag", "--app-id", "fraud", "--bootstrap-servers", NOWHERE]
    assert cli([*args, "--kafka-admin", "no.such.setting=1"]) == 2
    assert capsys.readouterr().err == (
        "streamer: error: librdkafka refused the admin client's settings: "
        'No such configuration property: "no.such.setting"\n'
    )


def test_a_managed_setting_is_refused_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["lag", "--app-id", "fraud", "--bootstrap-servers", NOWHERE]
    assert cli([*args, "--kafka", "isolation.level=read_uncommitted"]) == 2
    assert capsys.readouterr().err == (
        "streamer: error: --kafka: [kafka] isolation.level cannot be set: every consumer of "
        "streamer reads committed data only\n"
    )


def test_failures_are_one_line_and_tracebacks_need_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(["describe", "no/such/file.py"]) == 2
    assert capsys.readouterr().err == (
        "streamer: error: topology file 'no/such/file.py' does not exist\n"
    )
    for verbose in (["-v", "describe", "no/such/file.py"], ["describe", "no/such/file.py", "-v"]):
        assert cli(verbose) == 2
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):")
        assert err.endswith("streamer: error: topology file 'no/such/file.py' does not exist\n")


def test_run_flags_and_file_reach_the_app_config(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}

    class Recorder:
        def __init__(self, spec: str, config: object, **options: object) -> None:
            seen.update(spec=spec, config=config, **options)

        def run(self) -> int:
            return 0

    monkeypatch.setattr("streamer.cli.run.Supervisor", Recorder)
    args = ["run", TOPOLOGY, "--config", str(config_file), "--log-payloads", "-v"]
    assert cli([*args, "--kafka-producer", "linger.ms=5", "--no-static-membership"]) == 0
    config = seen["config"]
    assert config.app_id == "fraud"
    assert config.commit_interval_ms == 200
    assert config.log_payloads is True  # type: ignore[attr-defined]
    assert config.kafka_config["sasl.password"] == SECRET  # type: ignore[attr-defined]
    assert config.producer_config == {"linger.ms": "5"}  # type: ignore[attr-defined]
    assert seen["processes"] == 3
    assert seen["verbose"] is True
