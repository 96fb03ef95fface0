"""Scale-out arithmetic (pure, no Kafka): instance ids, and which partition owns a mid.

Mids are owned by the partition of their ORI: `ori_partition(ORI, n)` is where Kafka's
default partitioner (murmur2, as the Java client and aiokafka) puts a record keyed by the
ORI, which CONTRACT.md recommends. A request that arrives on another partition of
`<prefix>.requests` is forwarded, raw and unchanged, to that partition of
`<prefix>.requests.byori` (same partition count). The router consumes both topics with a
co-partitioning (range) assignor, so the owner of partition p handles every request of
the ORIs that hash to p, and keeps their mids in partition p of `<prefix>.mids`.
"""

from __future__ import annotations

import re

import msgspec

from switch.kafka.keys import key_partition

INSTANCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ORI_MAX = 64  # longer than any ORI (9 characters): not worth a hop; judged where it is


def validate_instance(instance: str) -> str:
    """An instance id goes into a transactional id and a file name: letters, digits, '-',
    '_' only, 1 to 64 of them. Returns it, or raises ValueError naming the rule."""
    if not INSTANCE_RE.fullmatch(instance):
        raise ValueError(
            f"instance id {instance!r}: 1 to 64 letters, digits, '-' or '_' (it names the "
            "transactional id and the local cache files)"
        )
    return instance


class _OriOnly(msgspec.Struct):
    ori: str


_ori_decoder = msgspec.json.Decoder(_OriOnly)


def ori_of(raw: bytes | None) -> str | None:
    """The request's ORI, read without validating anything else (the rest of the JSON is
    skipped, the image not decoded); None when there is none to read: such a request is
    handled where it arrived (dead letter, reject), as before."""
    if not raw:
        return None
    try:
        ori = _ori_decoder.decode(raw).ori
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not ori or len(ori) > ORI_MAX:
        return None
    return ori


def ori_partition(ori: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key `ori` (murmur2)."""
    return key_partition(ori, partitions)


def owner_partition(raw: bytes | None, arrived_on: int, partitions: int) -> int:
    """Where a request read from partition `arrived_on` of the requests topic is handled:
    the partition of its ORI, or where it arrived when it has no readable ORI."""
    ori = ori_of(raw)
    return arrived_on if ori is None else ori_partition(ori, partitions)
