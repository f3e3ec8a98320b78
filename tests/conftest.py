"""The project's own tests load the harness plugins explicitly (they are not auto-registered
by installing the package): real-Kafka fixtures and schema-registry fixtures."""

pytest_plugins = [
    "streamer.testing.kafka.pytest_plugin",
    "streamer.testing.registry_plugin",
]
