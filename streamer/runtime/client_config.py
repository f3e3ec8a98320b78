"""The librdkafka settings of every client streamer creates, from an :class:`AppConfig`.

Each client's settings are merged in this order, later ones winning:

1. streamer's **defaults** (``linger.ms``, ``transaction.timeout.ms``, ``auto.offset.reset``,
   ``max.poll.interval.ms``, ``session.timeout.ms``, ``fetch.max.bytes``, ...): tunable;
2. ``extra``: per-role settings of the worker's own, such as the metrics' statistics
   callback;
3. the user's ``kafka_config`` (the ``[kafka]`` table), for every client;
4. the user's role table: ``consumer_config`` for every consumer (group, restore,
   global-table, operations), ``producer_config``, ``admin_config``;
5. the **managed** settings (:data:`MANAGED`): what exactly-once, co-partitioning and the
   slot scheme rely on. A user may not set them: :func:`check_user_settings` refuses them
   when an :class:`AppConfig` is created, so step 5 never overrides a user's value
   silently.

docs/operations.md (Configuration) lists both kinds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from streamer.errors import ConfigError
from streamer.runtime.config import REDACTED, AppConfig, is_secret

MANAGED: Mapping[str, str] = {
    "bootstrap.servers": "set it with --bootstrap-servers or [app] bootstrap_servers",
    "metadata.broker.list": "set it with --bootstrap-servers or [app] bootstrap_servers",
    "group.id": "it is the app id",
    "group.instance.id": "streamer sets it per slot under --static-membership",
    "group.protocol": "set it with --group-protocol",
    "group.remote.assignor": "the range assignor keeps co-partitioned inputs together",
    "partition.assignment.strategy": "streamer picks it with --group-protocol",
    "transactional.id": "it is <app-id>-<slot>, fixed per slot to fence zombies",
    "enable.idempotence": "exactly-once and per-partition ordering need it",
    "acks": "the idempotent producer needs acks=all",
    "enable.auto.commit": "offsets are committed by the worker, with its output",
    "isolation.level": "every consumer of streamer reads committed data only",
    "enable.partition.eof": "restores detect the end of a changelog with it",
    "partitioner": "murmur2_random places keys as Kafka's Java clients and the test driver do",
    "client.id": "it is <app-id>-<slot>[-role], which streamer lag shows as the owner",
}
"""Settings streamer owns, with the reason shown when a user sets one."""

ROLE_TABLES: Mapping[str, str] = {
    "kafka": "[kafka]",
    "consumer": "[kafka.consumer]",
    "producer": "[kafka.producer]",
    "admin": "[kafka.admin]",
}
"""Each user settings mapping of :class:`AppConfig` (``<role>_config``) and its table."""


def check_user_settings(role: str, settings: Mapping[str, Any]) -> None:
    """Refuse a managed key in the user's ``role`` settings, naming the key and why."""
    for key in settings:
        reason = MANAGED.get(key)
        if reason is not None:
            msg = f"{ROLE_TABLES[role]} {key} cannot be set: {reason}"
            raise ConfigError(msg)


def user_settings(config: AppConfig, role: str) -> dict[str, Any]:
    """The user's settings of a ``role`` client: ``[kafka]``, then the role's table."""
    own: Mapping[str, Any] = getattr(config, f"{role}_config")
    return {**config.kafka_config, **own}


def producer_config(config: AppConfig, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The output producer: idempotent, ``acks=all``, transactional under exactly-once."""
    defaults: dict[str, Any] = {"linger.ms": 5}
    managed: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "client.id": f"{config.app_id}-{config.slot}-producer",
    }
    if config.exactly_once:
        defaults["transaction.timeout.ms"] = 60_000
        managed["transactional.id"] = config.transactional_id
    return {**defaults, **extra, **user_settings(config, "producer"), **managed}


def group_consumer_config(
    config: AppConfig, group_protocol: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The group member: manual commits, ``read_committed``, KIP-848 with the range assignor
    (``consumer``) or the classic protocol with cooperative-sticky (``classic``)."""
    defaults: dict[str, Any] = {"auto.offset.reset": "earliest", "max.poll.interval.ms": 300_000}
    managed: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "group.id": config.app_id,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "client.id": member_client_id(config),
    }
    if group_protocol == "consumer":
        managed["group.protocol"] = "consumer"
        managed["group.remote.assignor"] = "range"
    else:
        managed["partition.assignment.strategy"] = "cooperative-sticky"
        defaults["session.timeout.ms"] = 10_000
    if config.static_membership:
        managed["group.instance.id"] = f"{config.app_id}-{config.slot}"
    return {**defaults, **extra, **user_settings(config, "consumer"), **managed}


QUERY_URL_SEPARATOR = "|"
"""Between the slot and the query server's URL in a group member's client id."""


def member_client_id(config: AppConfig) -> str:
    """The group consumer's client id: ``<app-id>-<slot>``, then ``|<url>`` when the worker
    serves queries, so the group description tells every member where to send a query."""
    own = f"{config.app_id}-{config.slot}"
    return own if config.query_url is None else f"{own}{QUERY_URL_SEPARATOR}{config.query_url}"


def member_name(client_id: str) -> str:
    """``<app-id>-<slot>`` of a group member's client id, without a query URL."""
    return client_id.partition(QUERY_URL_SEPARATOR)[0]


def query_url_of(client_id: str) -> str | None:
    """The query server URL a member published in its client id, or None."""
    _own, sep, url = client_id.partition(QUERY_URL_SEPARATOR)
    return url if sep and url else None


def restore_consumer_config(config: AppConfig) -> dict[str, Any]:
    """Changelog restore and global tables: assigned partitions, committed data only."""
    managed = {
        "bootstrap.servers": config.bootstrap_servers,
        "isolation.level": "read_committed",
        "client.id": f"{config.app_id}-{config.slot}-restore",
    }
    return {"fetch.max.bytes": 16 << 20, **user_settings(config, "consumer"), **managed}


def admin_config(config: AppConfig) -> dict[str, Any]:
    """The worker's admin client (topic checks and creation, record deletion). The
    bootstrap servers are given to :class:`~streamer.kafka.admin.KafkaAdmin` apart."""
    return {**user_settings(config, "admin"), "client.id": f"{config.app_id}-{config.slot}-admin"}


@contextmanager
def built_with(role: str, settings: Mapping[str, Any]) -> Iterator[None]:
    """Turn librdkafka's refusal of ``settings`` while a ``role`` client is built into one
    :class:`ConfigError` line naming the setting, with secret values blanked out.

    librdkafka checks every key and value when a client is created and raises
    ``KafkaException`` (``_INVALID_ARG``); it is recognised by name so that this module
    stays free of confluent-kafka imports. Other errors pass through unchanged.
    """
    try:
        yield
    except Exception as exc:
        error = exc.args[0] if exc.args else None
        describe = getattr(error, "str", None)
        if type(exc).__name__ != "KafkaException" or not callable(describe):
            raise
        text = str(describe())
        for key, value in settings.items():
            if is_secret(key) and isinstance(value, str) and value:
                text = text.replace(value, REDACTED)
        msg = f"librdkafka refused the {role} client's settings: {text}"
        raise ConfigError(msg) from None
