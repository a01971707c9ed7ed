"""Which partition a key lands in: the same arithmetic as every FleetPipe producer.

All FleetPipe producers set librdkafka's ``partitioner`` to ``murmur2_random`` (see
:func:`fleetpipe.core.kafka.producer_config`), the Java client's default: murmur2 of the key
bytes, made positive, modulo the partition count. confluent-kafka's own default
(``consistent_random``, CRC32) would map keys differently from Java producers and from this
module, so the setting is explicit.

Stateful consumers need the mapping themselves: after a topic's partitions grow, keys move to
other partitions, and a replica restoring per-key state must pick the keys that *now* belong to
its assigned partitions (DESIGN §3). No maintained Python package exposes Kafka's murmur2 alone,
hence these few lines, checked against records the real broker placed.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as an unsigned 32-bit."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    blocks = length // 4
    for (word,) in struct.iter_unpack("<I", data[: blocks * 4]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = data[blocks * 4 :]
    rest = len(tail)
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes | str, partitions: int) -> int:
    """The partition a keyed record goes to in a topic of ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions
