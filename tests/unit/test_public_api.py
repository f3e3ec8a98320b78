"""The public API: ``streamer.__all__`` resolves, and ``import streamer`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import streamer

HEAVY = ("rocksdict", "confluent_kafka", "prometheus_client", "opentelemetry")


@pytest.mark.parametrize("name", streamer.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(streamer, name) is not None


def test_all_has_no_duplicates() -> None:
    assert len(set(streamer.__all__)) == len(streamer.__all__)


def test_dir_lists_the_lazy_names() -> None:
    assert set(streamer.__all__) <= set(dir(streamer))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = streamer.no_such_name  # type: ignore[attr-defined]


def test_the_public_groups_are_exported() -> None:
    expected = {
        "StreamsBuilder",
        "Stream",
        "Table",
        "StringSerde",
        "JsonSerde",
        "RegistryAvroSerde",
        "StreamerError",
        "TopologyError",
        "ProcessingError",
        "AppConfig",
        "Guarantee",
        "ErrorPolicy",
        "run",
    }
    assert expected <= set(streamer.__all__)


def test_run_is_the_runtime_function() -> None:
    from streamer.runtime.app import run

    assert streamer.run is run


def test_import_streamer_loads_no_heavy_module() -> None:
    code = (
        "import json, sys\n"
        "import streamer\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def test_star_import_gives_every_name() -> None:
    namespace: dict[str, object] = {}
    exec("from streamer import *", namespace)
    assert set(streamer.__all__) <= set(namespace)
