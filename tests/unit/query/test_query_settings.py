"""The query server's settings: ports and URLs per process, the token kept secret, and
clear errors before any worker starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamer.cli.main import main as cli
from streamer.runtime.launch import WorkerOptions
from streamer.runtime.supervisor import Supervisor

TOPOLOGY = str(Path(__file__).resolve().parents[3] / "topologies" / "card_velocity.py")
TOKEN = "query-token-not-for-logs"


def test_the_token_comes_from_the_environment_and_never_shows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    class Recorder:
        def __init__(self, spec: str, config: object, **options: Any) -> None:
            seen.update(options)

        def run(self) -> int:
            return 0

    monkeypatch.setattr("streamer.cli.run.Supervisor", Recorder)
    monkeypatch.setenv("STREAMER_HTTP_TOKEN", TOKEN)
    common = ["--app-id", "a", "--bootstrap-servers", "127.0.0.1:9092", "--http-port", "8080"]
    assert cli(["run", TOPOLOGY, *common, "--advertised-url", "http://h.example:9000"]) == 0
    http: WorkerOptions = seen["http"]
    assert (http.http_port, http.http_address, http.http_token) == (8080, "127.0.0.1", TOKEN)
    assert TOKEN not in repr(http)
    assert cli(["config", "show", *common]) == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    assert 'http_token = "***"' in " ".join(out.split())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--http-port", "65535", "--processes", "2"], "http port (--http-port) must leave room"),
        (["--http-port", "8080", "--advertised-url", "h:1"], "advertised URL must be"),
    ],
)
def test_bad_query_settings_stop_before_any_worker(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--app-id", "a", "--bootstrap-servers", "127.0.0.1:9092"]
    assert cli(["run", TOPOLOGY, *common, *flags]) == 2
    assert message in capsys.readouterr().err


def test_each_process_gets_its_own_port_and_url() -> None:
    from streamer.runtime.config import AppConfig

    launched: list[WorkerOptions] = []

    def launcher(config: AppConfig, options: WorkerOptions, status_fd: int) -> Any:
        launched.append(options)
        raise SystemExit  # stop after recording

    supervisor = Supervisor(
        TOPOLOGY,
        AppConfig("a", "127.0.0.1:9092"),
        processes=2,
        http=WorkerOptions(http_port=8080, advertised_url="http://h:9000", http_token="t"),
        launcher=launcher,
    )
    for child in supervisor.children:
        with pytest.raises(SystemExit):
            supervisor._spawn(child)
    assert [(o.http_port, o.advertised_url) for o in launched] == [
        (8080, "http://h:9000"),
        (8081, "http://h:9001"),
    ]
    assert all(o.http_token == "t" for o in launched)
