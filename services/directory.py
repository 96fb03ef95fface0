"""The record directory: LEADS publishes every record it holds, keyed by LNO, to the
compacted records topic, so the router can route by the record on file, and the record
of every shared IMN on file (key `imn/<IMN>`, ImageOwner), so the router can key a request
addressed by a shared IMN by its record's LNO. Before them, LEADS publishes its shared-IMN
floor to the imns topic (switch/contract/internal.py, ImnFloor).

LEADS publishes from every partition store on its host (services/stores.py), owned or not:
on one host all instances see all of them, and a record published twice is one record of
a compacted topic.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from aiokafka import AIOKafkaProducer

from services.stores import SystemStores
from switch.contract.internal import FLOOR_KEY, ImageOwner, image_owner_key, make_floor

PAGE = 5000
_encoder = msgspec.json.Encoder()


async def publish_directory(
    stores: SystemStores, producer: AIOKafkaProducer, topic: str,
    *, after_rowid: dict[int, int] | None = None,
) -> tuple[int, dict[int, int]]:
    """Publish the records inserted after `after_rowid` (per partition store), waiting until
    the broker has them all. Returns (records published, the last rowid published per
    partition store)."""
    count = 0
    last = dict(after_rowid or {})
    for partition, store in stores.all():
        while True:
            page = store.records_after(last.get(partition, 0), PAGE)
            if not page:
                break
            futures = [
                await producer.send(topic, key=entry.lno.encode(), value=_encoder.encode(entry))
                for _, entry in page
            ]
            await asyncio.gather(*futures)
            count += len(page)
            last[partition] = page[-1][0]
    return count, last


async def publish_image_owners(
    stores: SystemStores, producer: AIOKafkaProducer, topic: str
) -> int:
    """Publish the record of every shared IMN on file; wait until the broker has them."""
    count = 0
    for _, store in stores.all():
        owners = store.shared_image_owners()
        for start in range(0, len(owners), PAGE):
            futures = [
                await send_image_owner(producer, topic, imn, lno)
                for imn, lno in owners[start:start + PAGE]
            ]
            await asyncio.gather(*futures)
            count += len(futures)
    return count


async def send_image_owner(
    producer: AIOKafkaProducer, topic: str, imn: str, lno: str
) -> asyncio.Future[object]:
    value = _encoder.encode(ImageOwner(imn=imn, lno=lno))
    future: asyncio.Future[object] = await producer.send(
        topic, key=image_owner_key(imn).encode(), value=value
    )
    return future


async def publish_imn_floor(
    stores: SystemStores, producer: AIOKafkaProducer, topic: str
) -> dict[int, int]:
    """Publish the highest shared IMN on file per partition digit, and wait until the broker
    has it (before the directory, so a router that sees this run's directory sees the floor)."""
    imns = [imn for _, store in stores.all() for imn in store.highest_shared_imns()]
    floor = make_floor(imns, time.time())
    await (await producer.send(topic, key=FLOOR_KEY.encode(), value=_encoder.encode(floor)))
    return floor.highest
