"""The worker's clients, seen through Protocols, and the factory that builds them.

The worker never constructs a Kafka client itself: it asks a :class:`ClientFactory`. In
production that is :class:`KafkaClientFactory`, which builds the confluent-kafka clients of
:mod:`streamer.kafka.runtime_clients` and :mod:`streamer.kafka.output_producer` with the
settings of :mod:`streamer.runtime.client_config`.
Unit tests pass a scripted factory and drive the worker's commit, abort, rebalance and
restore ordering without a broker. The Protocols list exactly what the runtime calls; a fake
needs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from streamer.kafka.types import TP, Message
from streamer.runtime.client_config import (
    admin_config,
    built_with,
    group_consumer_config,
    member_name,
    producer_config,
    restore_consumer_config,
)
from streamer.runtime.config import AppConfig

PartitionsCallback = Callable[[list[TP]], None]


class GroupConsumerClient(Protocol):
    """A consumer-group member; rebalance callbacks run inside :meth:`consume`."""

    def subscribe(self, topics: Sequence[str]) -> None: ...
    def consume(self, max_records: int, timeout: float) -> list[Message]: ...
    def pause(self, partitions: Iterable[TP]) -> None: ...
    def resume(self, partitions: Iterable[TP]) -> None: ...
    def seek(self, partition: TP, offset: int) -> None: ...
    def committed(self, partitions: Iterable[TP]) -> dict[TP, int]: ...
    def committed_with_metadata(self, partitions: Iterable[TP]) -> dict[TP, tuple[int, str]]: ...
    def positions(self, partitions: Iterable[TP]) -> dict[TP, int]: ...
    def log_start_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]: ...
    def commit(
        self, offsets: Mapping[TP, int], metadata: Mapping[TP, str] | None = None
    ) -> None: ...
    def group_metadata(self) -> Any: ...
    def close(self) -> None: ...


class DeliveryGroup(Protocol):
    """The records an at-least-once producer sent between two :meth:`ProducerClient.mark`
    calls. ``done`` once every one of them has its delivery report (success or failure;
    a failure is raised by :meth:`ProducerClient.check_errors`)."""

    @property
    def done(self) -> bool: ...


class ProducerClient(Protocol):
    """The output producer; transactional under exactly-once."""

    def init_transactions(self) -> None: ...
    def begin(self) -> None: ...
    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
    ) -> None: ...
    def poll(self) -> None: ...
    def commit(
        self,
        offsets: Mapping[TP, int],
        group_metadata: Any,
        metadata: Mapping[TP, str] | None = None,
    ) -> None: ...
    def abort(self) -> None: ...
    def flush(self) -> None: ...
    def mark(self) -> DeliveryGroup:
        """Close the group of records sent since the last mark (at-least-once only)."""
        ...

    def check_errors(self) -> None:
        """Raise the failed deliveries reported so far."""
        ...

    def close(self) -> None: ...


class RestoreConsumerClient(Protocol):
    """A group-less consumer of hand-assigned partitions (changelogs, global tables)."""

    def end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]: ...
    def add(self, partition: TP, offset: int | None) -> None: ...
    def remove(self, partitions: Iterable[TP]) -> None: ...
    def consume(self, max_records: int, timeout: float) -> tuple[list[Message], dict[TP, int]]:
        """Records, and the partitions at their end with the offset reached there."""
        ...

    def close(self) -> None: ...


class AdminClient(Protocol):
    """The admin calls of a worker: topic checks and creation, and record deletion."""

    def list_topics(self) -> set[str]: ...
    def partitions(self, topic: str) -> Mapping[int, Any]: ...
    def create_topics(self, specs: Any) -> Any: ...
    def topic_config(self, topic: str) -> dict[str, str]: ...
    def submit_delete_records(self, before: Mapping[TP, int]) -> Mapping[Any, Any]: ...
    def log_end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]: ...


class GroupView(Protocol):
    """The worker's group as its coordinator describes it (used to place standby copies)."""

    def members(self) -> dict[str, tuple[TP, ...]]:
        """Per member's client id: the partitions assigned to it."""
        ...


class ClientFactory(Protocol):
    """Builds each client of one worker. Each call returns a new client."""

    def admin(self) -> AdminClient: ...
    def producer(self) -> ProducerClient: ...
    def restore_consumer(self) -> RestoreConsumerClient: ...
    def group_view(self) -> GroupView: ...
    def group_consumer(
        self,
        *,
        on_assigned: PartitionsCallback,
        on_revoked: PartitionsCallback,
        on_lost: PartitionsCallback,
    ) -> GroupConsumerClient: ...


class KafkaClientFactory:
    """The confluent-kafka clients, configured from ``config``.

    Every client gets the user's ``kafka_config`` and its role's table (see
    :mod:`streamer.runtime.client_config` for the merge order): the admin ``admin_config``,
    the producer ``producer_config``, the group, restore and global-table consumers
    ``consumer_config``. ``client_extras(role)`` adds settings per role (``"consumer"`` or
    ``"producer"``), such as the metrics' statistics callback; the user's own settings in
    ``config`` still win. A setting librdkafka refuses raises one :class:`ConfigError`.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        group_protocol: str = "consumer",
        client_extras: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.group_protocol = group_protocol
        self._extras = client_extras or (lambda _role: {})

    def admin(self) -> AdminClient:
        from streamer.kafka.admin import KafkaAdmin

        conf = admin_config(self.config)
        with built_with("admin", conf):
            return KafkaAdmin(self.config.bootstrap_servers, config=conf)

    def producer(self) -> ProducerClient:
        from streamer.kafka.output_producer import OutputProducer

        conf = producer_config(self.config, self._extras("producer"))
        with built_with("producer", conf):
            return OutputProducer(conf)

    def restore_consumer(self) -> RestoreConsumerClient:
        from streamer.kafka.runtime_clients import RestoreConsumer

        conf = restore_consumer_config(self.config)
        with built_with("restore consumer", conf):
            return RestoreConsumer(conf)

    def group_view(self) -> GroupView:
        from streamer.kafka.groups import GroupAdmin

        conf = admin_config(self.config)
        with built_with("admin", conf):
            admin = GroupAdmin(self.config.bootstrap_servers, config=conf, timeout=5.0)
        return _DescribedGroup(admin, self.config.app_id)

    def group_consumer(
        self,
        *,
        on_assigned: PartitionsCallback,
        on_revoked: PartitionsCallback,
        on_lost: PartitionsCallback,
    ) -> GroupConsumerClient:
        from streamer.kafka.group_consumer import GroupConsumer

        conf = group_consumer_config(self.config, self.group_protocol, self._extras("consumer"))
        with built_with("group consumer", conf):
            return GroupConsumer(
                conf, on_assigned=on_assigned, on_revoked=on_revoked, on_lost=on_lost
            )


class _DescribedGroup:
    """A :class:`GroupView` over the admin API's group description."""

    def __init__(self, admin: Any, group: str) -> None:
        self._admin = admin
        self._group = group

    def members(self) -> dict[str, tuple[TP, ...]]:
        description = self._admin.describe_group(self._group)
        # A member serving queries adds its URL to its client id: its name is the part before.
        return {member_name(member.client_id): member.partitions for member in description.members}
