"""The worker's client settings: fixed ones, then metrics, then the user's, which win."""

from __future__ import annotations

from streamer.runtime.client_config import (
    group_consumer_config,
    producer_config,
    restore_consumer_config,
)
from streamer.runtime.config import AppConfig, Guarantee


def _config(**overrides: object) -> AppConfig:
    return AppConfig(app_id="orders", bootstrap_servers="127.0.0.1:9092", **overrides)  # type: ignore[arg-type]


def test_exactly_once_producer_is_transactional_per_slot() -> None:
    conf = producer_config(_config(instance=2, instance_prefix="a-"), {})
    assert conf["transactional.id"] == "orders-a-2"
    assert conf["enable.idempotence"] is True
    alo = producer_config(_config(guarantee=Guarantee.AT_LEAST_ONCE), {})
    assert "transactional.id" not in alo


def test_user_settings_win_over_fixed_and_metrics_settings() -> None:
    config = _config(producer_config={"linger.ms": 50}, consumer_config={"fetch.min.bytes": 9})
    assert producer_config(config, {"linger.ms": 1, "statistics.interval.ms": 5})["linger.ms"] == 50
    consumer = group_consumer_config(config, "consumer", {"fetch.min.bytes": 1})
    assert consumer["fetch.min.bytes"] == 9


def test_group_protocols_and_static_membership() -> None:
    modern = group_consumer_config(_config(static_membership=True), "consumer", {})
    assert (modern["group.protocol"], modern["group.remote.assignor"]) == ("consumer", "range")
    assert modern["group.instance.id"] == "orders-0"
    assert modern["isolation.level"] == "read_committed"
    classic = group_consumer_config(_config(), "classic", {})
    assert classic["partition.assignment.strategy"] == "cooperative-sticky"
    assert "group.protocol" not in classic
    assert "group.instance.id" not in classic


def test_restore_consumer_reads_committed_data_only() -> None:
    assert restore_consumer_config(_config())["isolation.level"] == "read_committed"
