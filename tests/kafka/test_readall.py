"""A settled read waits for a transaction still open on the partitions it reads: what a new
owner of a partition relies on before it trusts the state and the offsets found there."""

from __future__ import annotations

import asyncio

import pytest

from switch.kafka.clients import make_producer
from switch.kafka.readall import read_to_end
from switch.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("outcome", ["commit", "abort"])
async def test_settled_read_waits_for_an_open_transaction(
    kafka_settings: Settings, outcome: str
) -> None:
    topic = kafka_settings.topics.mids
    producer = make_producer(kafka_settings, transactional_id=f"{kafka_settings.topics.prefix}.t")
    await producer.start()
    seen: list[bytes] = []
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"v", key=b"in-txn", partition=1)
        # Not settled: the last stable offset is before the open transaction; returns now.
        await asyncio.wait_for(read_to_end(kafka_settings, topic, lambda r: None, partitions=[1]), 10)
        settled = asyncio.create_task(read_to_end(
            kafka_settings, topic, lambda r: seen.append(r.key), partitions=[1], settled=True))
        await asyncio.sleep(1.5)
        assert not settled.done(), "a settled read returned while a transaction was open"
        if outcome == "commit":
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
        await asyncio.wait_for(settled, 15)
    finally:
        await producer.stop()
    assert (b"in-txn" in seen) == (outcome == "commit")
