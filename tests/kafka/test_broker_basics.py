"""The broker and client work together: round trip, idempotence, transactions (EOS)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from switch.kafka.clients import make_consumer, make_producer
from switch.kafka.topics import ensure_topics, topic_specs
from switch.settings import Settings

pytestmark = pytest.mark.kafka


async def drain(consumer, expect: int, timeout: float = 20.0) -> list:  # type: ignore[no-untyped-def]
    got: list = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < expect and asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            got.extend(records)
    return got


async def test_topics_are_created_idempotently(kafka_settings: Settings) -> None:
    assert await ensure_topics(kafka_settings) == []  # the fixture made them all
    admin = AIOKafkaAdminClient(**kafka_settings.kafka.client_kwargs())
    await admin.start()
    try:
        names = set(await admin.list_topics())
        for spec in topic_specs(kafka_settings):
            assert spec.name in names
        audit = kafka_settings.topics.audit

        configs = await admin.describe_configs([_resource(audit)])
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        assert int(entries["retention.ms"]) >= 365 * 24 * 3600 * 1000
    finally:
        await admin.close()


def _resource(topic: str):  # type: ignore[no-untyped-def]
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    return ConfigResource(ConfigResourceType.TOPIC, topic)


async def test_round_trip(kafka_settings: Settings) -> None:
    topic = kafka_settings.topics.requests
    producer = make_producer(kafka_settings)
    consumer = make_consumer(kafka_settings, topic, group_id=f"g-{uuid.uuid4().hex}")
    await producer.start()
    await consumer.start()
    try:
        sent = [f"message {i}".encode() for i in range(20)]
        for i, value in enumerate(sent):
            await producer.send(topic, value, key=f"k{i % 3}".encode())
        await producer.flush()
        got = await drain(consumer, len(sent))
        assert sorted(r.value for r in got) == sorted(sent)
    finally:
        await consumer.stop()
        await producer.stop()


async def test_large_message_round_trip(kafka_settings: Settings) -> None:
    """A request near the 2 MiB limit passes producer, broker and consumer."""
    topic = kafka_settings.topics.requests
    producer = make_producer(kafka_settings)
    consumer = make_consumer(kafka_settings, topic, group_id=f"g-{uuid.uuid4().hex}")
    await producer.start()
    await consumer.start()
    try:
        value = b"x" * (kafka_settings.max_request_bytes - 10)
        await (await producer.send(topic, value))
        got = await drain(consumer, 1)
        assert [len(r.value) for r in got] == [len(value)]
    finally:
        await consumer.stop()
        await producer.stop()


async def test_idempotent_producer_writes_each_message_once(kafka_settings: Settings) -> None:
    topic = kafka_settings.topics.dlq  # one partition: order is total
    producer = make_producer(kafka_settings)
    assert producer._txn_manager is not None  # idempotence is the factory's default
    consumer = make_consumer(kafka_settings, topic, group_id=f"g-{uuid.uuid4().hex}")
    await producer.start()
    await consumer.start()
    try:
        futures = [await producer.send(topic, str(i).encode()) for i in range(200)]
        metas = await asyncio.gather(*futures)
        offsets = [m.offset for m in metas]
        assert offsets == sorted(offsets) and len(set(offsets)) == 200
        got = await drain(consumer, 200)
        assert [int(r.value) for r in got] == list(range(200))
    finally:
        await consumer.stop()
        await producer.stop()


async def test_transactional_consume_process_produce(kafka_settings: Settings) -> None:
    """Aborted output is invisible to read_committed readers; committed output is seen once,
    and offsets sent with the transaction move only when it commits."""
    s = kafka_settings
    src, dst = s.topics.dlq, s.topics.control  # both single-partition; control is compacted
    group = f"g-{uuid.uuid4().hex}"
    plain = make_producer(s)
    await plain.start()
    for i in range(10):
        await plain.send(src, f"in-{i}".encode())
    await plain.flush()
    await plain.stop()

    async def process_once(commit: bool) -> int:
        consumer = make_consumer(s, src, group_id=group)
        producer = make_producer(s, transactional_id=f"tx-{group}")
        await consumer.start()
        await producer.start()
        try:
            records = await drain(consumer, 10)
            async with producer.transaction() if commit else _aborting(producer):
                futures = [
                    await producer.send(dst, r.value.replace(b"in", b"out"), key=b"k")
                    for r in records
                ]
                # aiokafka commits even when a send in the transaction failed: wait for
                # every send to be acknowledged before leaving the block.
                await asyncio.gather(*futures)
                tp = TopicPartition(src, 0)
                await producer.send_offsets_to_transaction(
                    {tp: records[-1].offset + 1}, group
                )
            return len(records)
        finally:
            await producer.stop()
            await consumer.stop()

    assert await process_once(commit=False) == 10
    # The aborted transaction did not move the group's offset: the input is read again.
    assert await process_once(commit=True) == 10

    reader = make_consumer(s, dst, group_id=None, isolation_level="read_committed")
    await reader.start()
    try:
        got = await drain(reader, 20, timeout=5)
        assert sorted(r.value for r in got) == sorted(f"out-{i}".encode() for i in range(10))
    finally:
        await reader.stop()

    uncommitted = make_consumer(s, dst, group_id=None, isolation_level="read_uncommitted")
    await uncommitted.start()
    try:
        raw = await drain(uncommitted, 20, timeout=5)
        assert len(raw) == 20  # the aborted copies are in the log, just never visible
    finally:
        await uncommitted.stop()

    # A fresh consumer of the group finds nothing left to read: offsets were committed.
    consumer = make_consumer(s, src, group_id=group)
    await consumer.start()
    try:
        assert await drain(consumer, 1, timeout=3) == []
    finally:
        await consumer.stop()


class _aborting:
    """`async with` a transaction that is always aborted at the end."""

    def __init__(self, producer) -> None:  # type: ignore[no-untyped-def]
        self.producer = producer

    async def __aenter__(self) -> None:
        await self.producer.begin_transaction()

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.abort_transaction()
