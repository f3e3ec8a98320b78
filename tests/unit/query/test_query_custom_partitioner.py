"""Key lookups of a store fed through a custom-partitioned repartition topic: the partitioner
places the key (called with no value); one that needs the value makes lookups refuse clearly."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.kafka.groups import GroupDescription
from streamer.partitioner import partition_for_key
from streamer.query.routing import Locator, UnroutableKey

PARTITIONS = 5


class Counts:
    def partition_count(self, topic: str) -> int:
        assert topic in {"app-by-user-repartition", "in"}
        return PARTITIONS

    def describe_group(self) -> GroupDescription:  # pragma: no cover - not asked here
        raise AssertionError


def by_length(key: str, _value: Any, count: int) -> int:
    return len(key) % count


def by_value(_key: str, value: Any, count: int) -> int:
    return int(value["n"]) % count


def locator(partitioner: Any) -> Locator:
    builder = StreamsBuilder()
    (
        builder.stream("in")
        .select_key(lambda _k, v: v["user"])
        .repartition(name="by-user", partitioner=partitioner)
        .group_by_key()
        .count(name="per-user")
    )
    builder.stream("plain").group_by_key().count(name="plain-counts")
    return Locator(builder.build(), "app", Counts())


def test_a_key_is_placed_by_the_custom_partitioner_of_the_stores_input() -> None:
    places = locator(by_length)
    for key in ("a", "bob", "carol", "dennis"):
        place = places.place("per-user", key.encode())
        assert (place.topic, place.partition) == ("app-by-user-repartition", len(key) % 5)


def test_without_a_custom_partitioner_murmur2_places_the_key() -> None:
    place = locator(None).place("per-user", b"carol")
    assert place.partition == partition_for_key(b"carol", PARTITIONS)


def test_a_partitioner_that_needs_the_value_refuses_key_lookups() -> None:
    places = locator(by_value)
    with pytest.raises(UnroutableKey, match="partitioned by by_value, which cannot place a key"):
        places.place("per-user", b"carol")
    assert len(places.places("per-user")) == PARTITIONS  # scans still reach every partition


def test_an_out_of_range_partition_refuses_key_lookups() -> None:
    with pytest.raises(UnroutableKey, match="returned no partition from 0 to 4"):
        locator(lambda _k, _v, n: n).place("per-user", b"carol")
