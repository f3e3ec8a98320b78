"""``streamer --version`` and the package's one version source."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

import streamer
from streamer.cli.main import main
from streamer.testing.kafka.jars import kafka_version

ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_the_package_librdkafka_and_broker_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"streamer {streamer.__version__}"
    assert re.fullmatch(
        r"librdkafka \d+\.\d+\.\d+\S* \(confluent-kafka \d+\.\d+\.\d+\S*\)", lines[1]
    )
    assert lines[2].startswith(f"Kafka broker {kafka_version()} ")
    assert re.fullmatch(r"Kafka broker \d+\.\d+\.\d+ .*", lines[2])
    assert lines[3].startswith("Python 3.")


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|(a|b|rc)\d+)?", streamer.__version__)
    assert importlib.metadata.version("streamer") == streamer.__version__
