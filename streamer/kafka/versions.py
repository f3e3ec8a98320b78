"""The Kafka client library streamer runs on: confluent-kafka and the librdkafka inside it."""

from __future__ import annotations

import confluent_kafka


def librdkafka_version() -> str:
    """The version of librdkafka that confluent-kafka loaded, such as ``2.12.1``."""
    return str(confluent_kafka.libversion()[0])


def confluent_kafka_version() -> str:
    """The version of the confluent-kafka Python package, such as ``2.12.1``."""
    return str(confluent_kafka.__version__)
