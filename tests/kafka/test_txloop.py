"""The transactional step on a real broker: a record that can never be written is
isolated by its origin (aborted, replaced, committed again); the rest commits once."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from switch.kafka.clients import make_producer
from switch.kafka.readall import read_to_end
from switch.kafka.topics import TopicSpec, ensure_topics
from switch.kafka.txloop import Failure, Out, Step, commit_step
from switch.settings import Settings

pytestmark = [pytest.mark.kafka]


async def _topics(settings: Settings, *, small_bytes: int = 1000) -> tuple[str, str]:
    ok = f"{settings.topics.prefix}.ok-{uuid.uuid4().hex[:6]}"
    small = f"{settings.topics.prefix}.small-{uuid.uuid4().hex[:6]}"
    await ensure_topics(settings, extra=[
        TopicSpec(ok, 1), TopicSpec(small, 1, {"max.message.bytes": str(small_bytes)})])
    return ok, small


async def _values(settings: Settings, topic: str) -> list[bytes]:
    got: list[bytes] = []
    await read_to_end(settings, topic, lambda r: got.append(r.value))
    return got


def _fallback(calls: list[Failure], ok: str):  # type: ignore[no-untyped-def]
    def give(origin: int, failure: Failure) -> list[Out]:
        calls.append(failure)
        return [Out(ok, f"fallback-{origin}".encode())]
    return give


async def test_broker_refusal_is_replaced_and_the_partition_keeps_working(
    kafka_settings: Settings,
) -> None:
    ok, small = await _topics(kafka_settings)
    producer = make_producer(kafka_settings, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        step = Step()
        with step.caused_by(0):
            step.send(ok, b"first")
        with step.caused_by(1):
            step.send(ok, b"second-before")
            step.send(small, b"x" * 5000)  # over the topic's max.message.bytes: broker refuses
        with step.caused_by(2):
            step.send(ok, b"third")
        calls: list[Failure] = []
        await commit_step(producer, "g", step, fallback=_fallback(calls, ok))
        assert [c.origin for c in calls] == [1]
        assert "TOO LARGE" in calls[0].reason and small in calls[0].reason
        assert await _values(kafka_settings, ok) == [b"first", b"fallback-1", b"third"]
        assert await _values(kafka_settings, small) == []
        # The same partition of the refusing topic takes the next transaction.
        again = Step()
        with again.caused_by(0):
            again.send(small, b"fits")
        await commit_step(producer, "g", again)
        assert await _values(kafka_settings, small) == [b"fits"]
    finally:
        await producer.stop()


async def test_client_refusal_and_a_refused_fallback_still_move_the_offsets(
    kafka_settings: Settings,
) -> None:
    ok, small = await _topics(kafka_settings)
    producer = make_producer(kafka_settings, transactional_id=f"tx-{uuid.uuid4().hex[:8]}",
                             max_request_size=3000)
    await producer.start()
    try:
        step = Step()
        step.offsets[TopicPartition(ok, 0)] = 7
        with step.caused_by(0):
            step.send(ok, b"y" * 4000)  # over max_request_size: send() refuses it
        with step.caused_by(1):
            step.send(small, b"z" * 2000)  # broker refuses; its fallback too (see below)
        with step.caused_by(2):
            step.send(ok, b"good")
        calls: list[Failure] = []

        def fallback(origin: int, failure: Failure) -> list[Out]:
            calls.append(failure)
            return [Out(small, b"w" * 2000)] if origin == 1 else [Out(ok, b"dead letter 0")]

        await commit_step(producer, "txloop-test", step, fallback=fallback)
        assert sorted(c.origin for c in calls) == [0, 1]
        assert await _values(kafka_settings, ok) == [b"dead letter 0", b"good"]
        assert await _values(kafka_settings, small) == []
        committed = await _committed(kafka_settings, "txloop-test", TopicPartition(ok, 0))
        assert committed == 7
    finally:
        await producer.stop()


async def test_a_refused_output_without_origin_fails_the_step_as_before(
    kafka_settings: Settings,
) -> None:
    ok, small = await _topics(kafka_settings)
    producer = make_producer(kafka_settings, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        step = Step()
        step.send(ok, b"a")
        step.send(small, b"b" * 5000)
        with pytest.raises(Exception) as info:
            await commit_step(producer, "g", step)
        assert not isinstance(info.value, KafkaTimeoutError)
        assert await _values(kafka_settings, ok) == []  # aborted: nothing visible
        after = Step()
        after.send(ok, b"c")
        await commit_step(producer, "g", after)  # the producer is still usable
        assert await _values(kafka_settings, ok) == [b"c"]
    finally:
        await producer.stop()


async def _committed(settings: Settings, group: str, tp: TopicPartition) -> int | None:
    from switch.kafka.clients import make_consumer

    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(tp)
    finally:
        await consumer.stop()
