"""The consumer-lag gauge on a real broker: a consumer behind the end of its partition
reports how far behind, from what its fetches already know (no extra request)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from switch.kafka.clients import make_consumer, make_producer
from switch.metrics import LagReporter, Metrics
from switch.settings import Settings

pytestmark = pytest.mark.kafka


async def test_lag_is_the_end_offset_minus_the_position(kafka_settings: Settings) -> None:
    topic = kafka_settings.topics.control
    producer = make_producer(kafka_settings)
    consumer = make_consumer(kafka_settings, group_id=None, max_poll_records=3)
    await producer.start()
    await consumer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, b"v%d" % i, key=b"k%d" % i, partition=0)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = []
        while not got:
            got = (await consumer.getmany(tp, timeout_ms=1000, max_records=3)).get(tp, [])
        metrics = Metrics()
        reporter = LagReporter(metrics, "test", every_s=0.0)
        await reporter.update(consumer)
        position = await consumer.position(tp)
        assert 0 < position < 10
        sample = {"component": "test", "topic": topic, "partition": "0"}
        assert metrics.registry.get_sample_value("switch_consumer_lag", sample) == 10 - position
        while position < 10:
            await consumer.getmany(tp, timeout_ms=1000)
            position = await consumer.position(tp)
        await reporter.update(consumer)
        assert metrics.registry.get_sample_value("switch_consumer_lag", sample) == 0
    finally:
        await consumer.stop()
        await producer.stop()
