"""KafkaClientFactory hands every client its tables: a key librdkafka refuses, put in one
role's table, fails exactly the clients of that role, with one line naming the key and no
secret value. No broker: librdkafka checks settings when a client is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamer.errors import ConfigError
from streamer.runtime.clients import KafkaClientFactory
from streamer.runtime.config import AppConfig

SECRET = "hunter2-e61a"


def _ignore(_partitions: Any) -> None:
    return None


def _builders(factory: KafkaClientFactory) -> dict[str, Callable[[], Any]]:
    return {
        "admin": factory.admin,
        "producer": factory.producer,
        "restore consumer": factory.restore_consumer,
        "group consumer": lambda: factory.group_consumer(
            on_assigned=_ignore, on_revoked=_ignore, on_lost=_ignore
        ),
    }


@pytest.mark.parametrize(
    ("table", "refused"),
    [
        ("kafka_config", {"admin", "producer", "restore consumer", "group consumer"}),
        ("consumer_config", {"restore consumer", "group consumer"}),
        ("producer_config", {"producer"}),
        ("admin_config", {"admin"}),
    ],
)
def test_each_table_reaches_exactly_its_clients(table: str, refused: set[str]) -> None:
    tables: dict[str, dict[str, str]] = {"kafka_config": {"sasl.password": SECRET}}
    tables.setdefault(table, {})["no.such.setting"] = "1"
    config = AppConfig("orders", "127.0.0.1:9", **tables)  # type: ignore[arg-type]
    for role, build in _builders(KafkaClientFactory(config)).items():
        if role not in refused:
            client = build()
            if hasattr(client, "close"):
                client.close()
            continue
        with pytest.raises(ConfigError) as failed:
            build()
        assert str(failed.value) == (
            f"librdkafka refused the {role} client's settings: "
            'No such configuration property: "no.such.setting"'
        )


def test_a_refused_secret_value_is_blanked_out() -> None:
    config = AppConfig("orders", "127.0.0.1:9", producer_config={"security.protocol": SECRET})
    with pytest.raises(ConfigError) as refused:
        KafkaClientFactory(config).producer()
    assert "security.protocol" in str(refused.value)
    config = AppConfig(
        "orders", "127.0.0.1:9", admin_config={"ssl.key.pem": SECRET, "security.protocol": "SSL"}
    )
    with pytest.raises(ConfigError) as refused:
        KafkaClientFactory(config).admin()
    assert "ssl.key.pem" in str(refused.value)
    assert SECRET not in str(refused.value)
