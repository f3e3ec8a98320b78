"""The installed package: ``streamer --version``, the one version source, and the example
topologies shipped as ``streamer.examples``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

import streamer
from streamer.cli.main import main
from streamer.demo.run import fraud_topology_path
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


def test_the_demo_loads_the_fraud_topology_shipped_as_streamer_examples() -> None:
    if importlib.util.find_spec("streamer.examples") is None:
        # The checkout's streamer/ shadows an installed wheel (noxfile.py checks the wheel).
        pytest.skip("streamer comes from the checkout, where only an install maps topologies/")
    # In an editable install, the shipped module is the repository's file itself.
    path = fraud_topology_path()
    assert path.resolve() == (ROOT / "topologies" / "fraud.py").resolve()
    import streamer.examples.fraud as fraud

    assert sorted(p.name for p in fraud.SCHEMAS_DIR.glob("*.avsc")) == sorted(
        p.name for p in (ROOT / "topologies" / "schemas").glob("*.avsc")
    )
