"""The schema registry harness without starting anything: paths, markers, the external URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.errors import KafkaHarnessError
from streamer.testing import registry as harness


def test_the_distribution_is_cached_per_version(tmp_path: Path) -> None:
    target = harness.registry_dir_for(cache_dir=tmp_path)
    assert target == tmp_path / "apicurio-registry" / harness.APICURIO_VERSION


def test_a_completed_download_is_not_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = harness.registry_dir_for(cache_dir=tmp_path)
    target.mkdir(parents=True)
    (target / harness.MARKER_NAME).write_text(harness.ARTIFACT + "\n")

    def no_maven() -> str:
        raise AssertionError("Maven must not run for a complete download")

    monkeypatch.setattr(harness, "find_mvn", no_maven)
    assert harness.resolve_registry(cache_dir=tmp_path) == target


def test_an_external_registry_is_used_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(harness.URL_ENV, "http://127.0.0.1:8081/")
    registry = harness.registry_for_tests()
    assert isinstance(registry, harness.ExternalSchemaRegistry)
    assert registry.start().url == "http://127.0.0.1:8081"
    monkeypatch.delenv(harness.URL_ENV)
    assert isinstance(harness.registry_for_tests(), harness.LocalSchemaRegistry)


def test_a_registry_that_was_not_started_has_no_url() -> None:
    with pytest.raises(KafkaHarnessError, match="has not been started"):
        _ = harness.LocalSchemaRegistry().url
    assert harness.LocalSchemaRegistry(port=8081).url.endswith(":8081/apis/ccompat/v7")
