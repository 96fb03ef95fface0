"""Reading replies as they come: the one loop the client, `capture` and `replay` share.

The consumer is the caller's, already assigned (`clients.assign_whole_topic`); each fetch
hands back the replies it holds, decoded with the caller's decoder (the load tester's
reads only the fields it needs). Tombstones, unreadable values and replies without a
mid (nothing could be matched to them) are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer


class _HasMid(Protocol):
    @property
    def mid(self) -> str | None: ...


R = TypeVar("R", bound=_HasMid)


async def reply_batches(
    consumer: AIOKafkaConsumer, decoder: msgspec.json.Decoder[R], *, timeout_ms: int = 200,
    max_records: int = 2000,
) -> AsyncIterator[list[R]]:
    """The replies of each fetch (none when a fetch found nothing), until cancelled."""
    while True:
        batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        replies: list[R] = []
        for records in batch.values():
            for rec in records:
                if rec.value is None:
                    continue
                try:
                    reply = decoder.decode(rec.value)
                except msgspec.DecodeError:
                    continue
                if reply.mid is not None:
                    replies.append(reply)
        yield replies
