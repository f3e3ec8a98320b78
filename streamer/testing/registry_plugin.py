"""pytest fixtures for tests against a real schema registry (``pip install "streamer[testing]"``).

Not registered on install: load it with
``pytest_plugins = ["streamer.testing.registry_plugin"]`` in a top-level conftest.py.

``schema_registry``  session-wide Apicurio Registry (Confluent-compatible API), or the one
                     at ``STREAMER_SCHEMA_REGISTRY_URL``; its ``url`` is the API root
``registry_client``  a fresh :class:`~streamer.serde.SchemaRegistryClient` (empty caches)
                     on it, per test

Tests using them get the ``registry`` marker. See :mod:`streamer.testing.registry`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamer.serde.registry import SchemaRegistryClient
from streamer.testing.registry import (
    ExternalSchemaRegistry,
    LocalSchemaRegistry,
    registry_for_tests,
)

FIXTURES = frozenset({"schema_registry", "registry_client"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "registry: needs a schema registry (started by the harness)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if set(getattr(item, "fixturenames", ())) & FIXTURES:
            item.add_marker(pytest.mark.registry)


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[LocalSchemaRegistry | ExternalSchemaRegistry]:
    """A schema registry shared by the whole test session."""
    registry = registry_for_tests()
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
        registry.cleanup()


@pytest.fixture
def registry_client(
    schema_registry: LocalSchemaRegistry | ExternalSchemaRegistry,
) -> SchemaRegistryClient:
    return SchemaRegistryClient(schema_registry.url)
