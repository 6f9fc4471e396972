"""Kafka's default partitioner for keyed records, fast enough for the generator.

Java clients and kafka-python place a keyed record on
`(murmur2(key) & 0x7fffffff) % partitions`. kafka-python computes murmur2 byte by
byte in Python; this version reads the key as little-endian 32-bit words in one
`struct` call, about 3x faster, and gives the same partition (tests/unit checks it
against kafka-python's own implementation), so other producers of the same keys agree.
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
