"""Zombie fencing on a real broker: an offset commit made in a transaction by a member the
group has dropped is refused, its transaction aborts and none of its outputs is visible;
the live member's commit goes through (switch/kafka/fencing.py)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from switch.kafka.clients import make_consumer, make_producer
from switch.kafka.fencing import fence_offset_commits, membership
from switch.kafka.readall import read_to_end
from switch.kafka.topics import TopicSpec, ensure_topics
from switch.kafka.txloop import Step, commit_step
from switch.settings import Settings

pytestmark = [pytest.mark.kafka]


async def _joined(settings: Settings, group: str, topic: str) -> AIOKafkaConsumer:
    consumer = make_consumer(settings, group_id=group, session_timeout_ms=10_000,
                             heartbeat_interval_ms=500)
    consumer.subscribe([topic])
    await consumer.start()
    for _ in range(200):
        await consumer.getmany(timeout_ms=100)
        if consumer.assignment():
            return consumer
    raise AssertionError("the consumer never got its partition")


async def _values(settings: Settings, topic: str) -> list[bytes]:
    got: list[bytes] = []
    await read_to_end(settings, topic, lambda r: got.append(r.value), settled=True)
    return got


async def test_a_dropped_member_cannot_commit_and_its_outputs_vanish(
    kafka_settings: Settings,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    prefix = kafka_settings.topics.prefix
    source, sink = f"{prefix}.in-{suffix}", f"{prefix}.out-{suffix}"
    group = f"g-{suffix}"
    await ensure_topics(kafka_settings, extra=[TopicSpec(source, 1), TopicSpec(sink, 1)])

    zombie = await _joined(kafka_settings, group, source)
    stale = membership(zombie)
    assert stale[0] >= 0 and stale[1]
    # The zombie's producer, fenced by a consumer object that keeps the stale membership
    # (as a paused instance does until its next heartbeat).
    frozen = cast(AIOKafkaConsumer, SimpleNamespace(
        _coordinator=SimpleNamespace(generation=stale[0], member_id=stale[1])))
    zp = make_producer(kafka_settings, transactional_id=f"zombie-{suffix}")
    await zp.start()
    fence_offset_commits(zp, frozen)
    await zombie.stop()  # leaves the group: the next member gets a new generation

    live = await _joined(kafka_settings, group, source)
    lp = make_producer(kafka_settings, transactional_id=f"live-{suffix}")
    await lp.start()
    fence_offset_commits(lp, live)
    try:
        assert membership(live)[0] > stale[0]
        step = Step()
        step.send(sink, b"from the zombie")
        step.offsets[TopicPartition(source, 0)] = 7
        with pytest.raises(CommitFailedError):
            await commit_step(zp, group, step)

        step = Step()
        step.send(sink, b"from the live member")
        step.offsets[TopicPartition(source, 0)] = 3
        await commit_step(lp, group, step)

        assert await _values(kafka_settings, sink) == [b"from the live member"]
        assert await live.committed(TopicPartition(source, 0)) == 3
    finally:
        await live.stop()
        await lp.stop()
        await zp.stop()


async def test_a_member_that_knows_it_left_does_not_commit(kafka_settings: Settings) -> None:
    suffix = uuid.uuid4().hex[:6]
    prefix = kafka_settings.topics.prefix
    source, sink = f"{prefix}.in-{suffix}", f"{prefix}.out-{suffix}"
    group = f"g-{suffix}"
    await ensure_topics(kafka_settings, extra=[TopicSpec(source, 1), TopicSpec(sink, 1)])
    other = await _joined(kafka_settings, group, source)  # the group is not empty
    left = make_consumer(kafka_settings, group_id=group)  # never joined: generation -1
    await left.start()
    producer = make_producer(kafka_settings, transactional_id=f"left-{suffix}")
    await producer.start()
    fence_offset_commits(producer, left)
    try:
        assert membership(left) == (-1, "")
        step = Step()
        step.send(sink, b"never")
        step.offsets[TopicPartition(source, 0)] = 5
        with pytest.raises(CommitFailedError):
            await commit_step(producer, group, step)
        assert await _values(kafka_settings, sink) == []
        assert await other.committed(TopicPartition(source, 0)) is None
        # The producer is still usable: a later step of a real member commits.
        step = Step()
        step.send(sink, b"later")
        await asyncio.wait_for(commit_step(producer, group, step), 30)
        assert await _values(kafka_settings, sink) == [b"later"]
    finally:
        await other.stop()
        await left.stop()
        await producer.stop()
