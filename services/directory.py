"""The record directory: LEADS publishes every record it holds, keyed by LNO, to the
compacted records topic, so the router can route by the record on file. Before it, LEADS
publishes its shared-IMN floor to the imns topic (switch/contract/internal.py, ImnFloor).
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from aiokafka import AIOKafkaProducer

from services.store import Store
from switch.contract.internal import FLOOR_KEY, make_floor

PAGE = 5000
_encoder = msgspec.json.Encoder()


async def publish_directory(
    store: Store, producer: AIOKafkaProducer, topic: str, *, after_rowid: int = 0
) -> tuple[int, int]:
    """Publish the records inserted after `after_rowid`, waiting until the broker has
    them all. Returns (records published, the last rowid published)."""
    count = 0
    last = after_rowid
    while True:
        page = store.records_after(last, PAGE)
        if not page:
            break
        futures = [
            await producer.send(topic, key=entry.lno.encode(), value=_encoder.encode(entry))
            for _, entry in page
        ]
        await asyncio.gather(*futures)
        count += len(page)
        last = page[-1][0]
    return count, last


async def publish_imn_floor(store: Store, producer: AIOKafkaProducer, topic: str) -> dict[int, int]:
    """Publish the highest shared IMN on file per partition digit, and wait until the broker
    has it (before the directory, so a router that sees this run's directory sees the floor)."""
    floor = make_floor(store.highest_shared_imns(), time.time())
    await (await producer.send(topic, key=FLOOR_KEY.encode(), value=_encoder.encode(floor)))
    return floor.highest
