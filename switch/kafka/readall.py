"""Reading a whole topic once (start-up restores): directory, mid memory, pending state."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import ConsumerRecord, TopicPartition

from switch.kafka.clients import make_consumer, topic_partitions
from switch.settings import Settings


async def read_to_end(
    settings: Settings,
    topic: str,
    handle: Callable[[ConsumerRecord[bytes, bytes]], None],
    *,
    partitions: list[int] | None = None,
    stop_at: dict[int, int] | None = None,
    start_at: dict[int, int] | None = None,
    settled: bool = False,
) -> dict[int, int]:
    """Feed every committed record of `topic` (or of some partitions) to `handle`, from the
    beginning (or `start_at`, per partition) up to the end as it was when called. Returns
    the end offset per partition.

    The end is the last stable offset: a transaction still open there is not waited for.
    With `settled`, the end is the high watermark instead (read uncommitted), so the read
    returns only once every transaction open at the call has committed or aborted (a
    killed instance's: when the broker aborts it, after its transaction timeout): what a
    new owner of a partition must wait for before it trusts the state and the offsets."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [tp for tp in await topic_partitions(consumer, topic)
               if partitions is None or tp.partition in partitions]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            if start_at and tp.partition in start_at:
                consumer.seek(tp, start_at[tp.partition])
        ends = await (_high_watermarks(settings, tps) if settled else consumer.end_offsets(tps))
        if stop_at:
            ends = {tp: min(off, stop_at.get(tp.partition, off)) for tp, off in ends.items()}
        remaining = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=2000)
            for tp, records in batch.items():
                for rec in records:
                    if rec.offset < ends[tp]:
                        handle(rec)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def _high_watermarks(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    peek = make_consumer(settings, group_id=None, isolation_level="read_uncommitted")
    await peek.start()
    try:
        ends: dict[TopicPartition, int] = await peek.end_offsets(tps)
        return ends
    finally:
        await peek.stop()
