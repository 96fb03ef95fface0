"""Which partition a key goes to (pure, no Kafka).

`key_partition(key, n)` is where Kafka's default partitioner (murmur2, as the Java client
and aiokafka) puts a record keyed by `key` on a topic of `n` partitions. The switch relies
on it twice: mids are owned by their ORI's partition (router), and a system of record's
records live in the store of their LNO's leg partition (services).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key `key` (murmur2)."""
    if partitions < 1:
        raise ValueError("partitions: at least 1")
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions
