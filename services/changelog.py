"""A service's store changelog: how a partition's store follows the partition.

Every change to a partition store's rows (a record seeded, an image entered, modified or
cancelled, an answer stored or pruned) is queued by SQLite triggers in the store's
`outbox`, in the transaction that makes it (services/store.py). The service sends each
queued row's current value to `<prefix>.<system>.store` (compacted), partition p for leg
partition p, keyed `r/<lno>`, `i/<image id>` or `a/<cid>` (the row's columns as a
MessagePack array), and sends a leg's answer only
once the broker has its changes; the next transaction on the store then drops the sent
entries and records how far the store has read the changelog (`meta`).

When an instance is given partition p, it brings its own copy of p's store up to date
before it applies anything: it reads the changelog from the store's position to the end
and writes each row (a store on another host, or a new host's empty one, so catches up;
one kept by a clean stop has nothing to read). A store whose outbox still holds an image
or an answer was left by a process that died before sending it: that answer was never
sent, and whoever owned p since may have applied the request again, so those rows are
dropped and the store's images and answers rebuilt from the whole changelog. Records
never change once entered, so they are kept and their queued rows sent.

Sending the current value (not the value at queueing time) makes a re-send harmless: the
changelog's last word on a row is always the store's.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.store import CHANGE_TABLES, Store
from switch.kafka.readall import read_to_end
from switch.settings import Settings

# A row is its columns in CHANGE_TABLES order, as a MessagePack array (not JSON: an image
# row carries its JPEG, which MessagePack keeps as raw bytes and JSON would grow by a
# third, on a topic that holds every image the system stores).
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Any])

Change = tuple[bytes, bytes | None]  # (key, value); None: the row is gone (a tombstone)


@dataclass
class Pending:
    """The queued changes of one store read for sending, up to outbox entry `upto`."""

    changes: list[Change]
    upto: int


def pending_changes(store: Store, after: int) -> Pending:
    """The changes queued after outbox entry `after`, with each row's current value."""
    changes: list[Change] = []
    upto = after
    while True:
        queued = store.outbox_after(upto)
        if not queued:
            return Pending(changes, upto)
        for seq, tbl, pk in queued:
            values = store.read_row(tbl, pk)
            value = None if values is None else _encoder.encode(values)
            changes.append((f"{tbl}/{pk}".encode(), value))
            upto = seq


async def send_changes(
    producer: AIOKafkaProducer, topic: str, partition: int, changes: list[Change]
) -> int | None:
    """Send changes to the changelog partition; once the broker has them all, return the
    offset after the last one (None when there was nothing to send)."""
    futures = [await producer.send(topic, key=key, value=value, partition=partition)
               for key, value in changes]  # queued at once; the acks awaited together
    if not futures:
        return None
    metadata = await asyncio.gather(*futures)
    return int(metadata[-1].offset) + 1


def apply_change(store: Store, rec: ConsumerRecord[bytes, bytes]) -> None:
    """Write one changelog record into the store (inside the caller's transaction)."""
    key = (rec.key or b"").decode()
    tbl, _, pk = key.partition("/")
    if tbl not in CHANGE_TABLES or not pk:
        return  # not ours: nothing else writes this topic
    values = None if rec.value is None else tuple(_decoder.decode(rec.value))
    columns = len(CHANGE_TABLES[tbl][2])
    if values is not None and len(values) != columns:
        raise ValueError(f"changelog record {key!r}: {len(values)} columns, not {columns}")
    store.write_row(tbl, pk, values)


@dataclass
class Restored:
    read: int  # changelog records written into the store
    rebuilt: bool  # the store had unsent images or answers: rebuilt from the whole log
    dropped: int  # unsent changes dropped for the rebuild


async def restore(settings: Settings, store: Store, system: str, partition: int) -> Restored:
    """Bring `store` (leg partition `partition`'s) up to date from the changelog."""
    return (await restore_many(settings, {partition: store}, system))[partition]


async def restore_many(
    settings: Settings, stores: dict[int, Store], system: str
) -> dict[int, Restored]:
    """Bring the stores of several leg partitions up to date, in one read of the changelog."""
    topic = settings.topics.store_changelog(system)
    read = dict.fromkeys(stores, 0)

    def write(rec: ConsumerRecord[bytes, bytes]) -> None:
        apply_change(stores[rec.partition], rec)
        read[rec.partition] += 1

    # One transaction per store: a restore cut short leaves each as it was (still unclean).
    with contextlib.ExitStack() as transactions:
        rebuilt, dropped, marks = {}, {}, {}
        for p, store in stores.items():
            transactions.enter_context(store.transaction())
            rebuilt[p] = store.unclean()
            dropped[p] = store.forget_unsent() if rebuilt[p] else 0
            marks[p] = store.last_outbox_seq()
        ends = await read_to_end(settings, topic, write, partitions=sorted(stores),
                                 start_at={p: s.position() for p, s in stores.items()})
        for p, store in stores.items():
            store.drop_outbox_after(marks[p])  # what the replay queued is in the changelog
            end = ends.get(p, 0)
            if end < store.position():  # the topic was recreated: it holds none of this store
                store.requeue_all()
            store.set_position(end)
    return {p: Restored(read=read[p], rebuilt=rebuilt[p], dropped=dropped[p]) for p in stores}
