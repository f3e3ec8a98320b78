"""Kafka's murmur2 partitioner, checked against the values Kafka's own tests pin."""

from __future__ import annotations

import pytest

from streamer.partitioner import murmur2, partition_for_key

# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2: the Java implementation's results.
KAFKA_MURMUR2_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2_VECTORS)
def test_murmur2_matches_kafka(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_is_a_signed_32_bit_int() -> None:
    for n in range(200):
        assert -(2**31) <= murmur2(bytes(range(n % 256)) * (n // 50 + 1)) < 2**31


def test_partition_masks_the_sign_bit_instead_of_taking_abs() -> None:
    # murmur2(b"21") is negative: toPositive(h) = h & 0x7fffffff, which differs from abs(h).
    h = -973932308
    assert partition_for_key(b"21", 7) == (h & 0x7FFFFFFF) % 7
    assert (h & 0x7FFFFFFF) % 7 != abs(h) % 7


def test_partition_is_in_range_and_one_partition_is_always_zero() -> None:
    for i in range(500):
        key = f"key-{i}".encode()
        assert partition_for_key(key, 1) == 0
        assert 0 <= partition_for_key(key, 6) < 6


def test_no_partitions_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for_key(b"k", 0)
