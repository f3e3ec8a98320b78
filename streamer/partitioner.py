"""Kafka's key-to-partition map, so in-memory partitioning matches a real producer's.

The worker's producer uses librdkafka's ``murmur2_random`` partitioner, which is Kafka's
Java default for keyed records: ``toPositive(murmur2(key)) % partitions``, where
``toPositive`` clears the sign bit (``x & 0x7fffffff``, not ``abs``). Records without a key
are spread at random by that partitioner; they have no partition of their own here.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``data``: a signed 32-bit int, exactly as Java returns it.

    Invariant: the result is in ``[-2**31, 2**31)`` and equals Kafka's for the same bytes.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to among ``partitions``: ``toPositive(murmur2) % n``.

    Invariant: ``0 <= result < partitions``; raises ``ValueError`` if ``partitions < 1``.
    """
    if partitions < 1:
        msg = f"a topic has at least one partition, not {partitions}"
        raise ValueError(msg)
    return (murmur2(key) & 0x7FFFFFFF) % partitions
