"""The librdkafka settings of a worker's clients, derived from its :class:`AppConfig`.

Each function returns the fixed settings first, then ``extra`` (metrics statistics
callbacks), then the user's ``producer_config`` / ``consumer_config``, so the user's keys
always win. docs/runtime.md lists the fixed settings and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamer.runtime.config import AppConfig


def producer_config(config: AppConfig, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The output producer: idempotent, ``acks=all``, transactional under exactly-once."""
    conf: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "partitioner": "murmur2_random",
        "client.id": f"{config.app_id}-{config.slot}-producer",
    }
    if config.exactly_once:
        conf["transactional.id"] = config.transactional_id
        conf["transaction.timeout.ms"] = 60_000
    return {**conf, **extra, **config.producer_config}


def group_consumer_config(
    config: AppConfig, group_protocol: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The group member: manual commits, ``read_committed``, KIP-848 with the range assignor
    (``consumer``) or the classic protocol with cooperative-sticky (``classic``)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "group.id": config.app_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "client.id": f"{config.app_id}-{config.slot}",
        "max.poll.interval.ms": 300_000,
    }
    if group_protocol == "consumer":
        conf["group.protocol"] = "consumer"
        conf["group.remote.assignor"] = "range"
    else:
        conf["partition.assignment.strategy"] = "cooperative-sticky"
        conf["session.timeout.ms"] = 10_000
    if config.static_membership:
        conf["group.instance.id"] = f"{config.app_id}-{config.slot}"
    return {**conf, **extra, **config.consumer_config}


def restore_consumer_config(config: AppConfig) -> dict[str, Any]:
    """Changelog restore and global tables: assigned partitions, committed data only."""
    return {
        "bootstrap.servers": config.bootstrap_servers,
        "isolation.level": "read_committed",
        "fetch.max.bytes": 16 << 20,
    }
