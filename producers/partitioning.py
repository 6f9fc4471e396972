"""Which partition Kafka's default partitioner gives a keyed record.

Java clients, and librdkafka with `partitioner=murmur2_random` (the generator's producer),
place a keyed record on `(murmur2(key) & 0x7fffffff) % partitions`. This is that function
in Python, checked against the Java client's own test vectors (tests/unit) and against
where the generator's records land (tests/integration): it tells which partition holds an
impression's events without asking Kafka, e.g. to derive a topic's content from the
generator's --output file.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    length = len(data)
    h = (_SEED ^ length) & _MASK
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        offset = words * 4
        if tail == 3:
            h ^= data[offset + 2] << 16
        if tail >= 2:
            h ^= data[offset + 1] << 8
        h ^= data[offset]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
