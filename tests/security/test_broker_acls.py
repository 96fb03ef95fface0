"""What the secured broker itself refuses an agency: no mocks, the real authorizer."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.protocol.metadata import MetadataRequest

from switch.kafka.clients import make_consumer, make_producer
from switch.security.diagnose import diagnose
from switch.settings import Settings
from tests.security.conftest import agency, need_secure

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


async def test_an_agency_writes_only_its_own_request_topic(kafka_settings: Settings) -> None:
    a = await agency(kafka_settings, "A1", ["IL0160000"])
    await agency(kafka_settings, "B1", ["IL0450300"])
    t = kafka_settings.topics
    producer = make_producer(a)
    await producer.start()
    try:
        await producer.send_and_wait(a.requests_topic, b'{"mke":"QIM"}')  # its own: fine
        for topic in (t.responses, t.leg_requests("LEADS"), t.requests, t.requests_byori,
                      t.replies, t.audit, t.control, t.agencies, t.agency_requests("B1"),
                      t.agency_replies("A1")):
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(producer.send_and_wait(topic, b"{}"), 30)
    finally:
        await producer.stop()


async def test_an_agency_reads_only_its_own_replies(kafka_settings: Settings) -> None:
    a = await agency(kafka_settings, "A2", ["IL0160000"])
    await agency(kafka_settings, "B2", ["IL0450300"])
    t = kafka_settings.topics
    operator = make_producer(kafka_settings)
    await operator.start()
    try:  # something to read on each
        for topic in (t.agency_replies("A2"), t.agency_replies("B2"), t.replies, t.audit):
            await operator.send_and_wait(topic, b'{"x":1}')
    finally:
        await operator.stop()
    consumer = make_consumer(a, group_id=None)
    await consumer.start()
    try:
        own = TopicPartition(t.agency_replies("A2"), 0)
        consumer.assign([own])
        await consumer.seek_to_beginning(own)
        assert await consumer.position(own) == 0
    finally:
        await consumer.stop()
    # Anyone else's topic: the broker will not even say it exists (DESCRIBE is implied by
    # READ), and a fetch from it returns nothing.
    consumer = make_consumer(a, group_id=None)
    await consumer.start()
    try:
        for topic in (t.agency_replies("B2"), t.replies, t.audit, t.responses):
            node = consumer._client.get_random_node()
            resp = await consumer._client.send(node, MetadataRequest([topic], False))
            errors = {tp[1]: tp[0] for tp in resp.topics}
            assert errors[topic] == TopicAuthorizationFailedError.errno, topic
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            assert not await consumer.getmany(tp, timeout_ms=3000)
    finally:
        await consumer.stop()


async def test_a_wrong_password_fails_fast_with_one_clear_line(kafka_settings: Settings) -> None:
    a = await agency(kafka_settings, "A3", ["IL0160000"])
    wrong = dataclasses.replace(a, kafka=dataclasses.replace(a.kafka, sasl_password="nope"))
    producer = make_producer(wrong)
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert asyncio.get_running_loop().time() - t0 < 15
    line = await diagnose(wrong.kafka)
    assert line.startswith("authentication failed for user agency-A3 at 127.0.0.1:")
    assert "KAFKA_SASL_PASSWORD" in line and "switch agency add A3" in line


async def test_plaintext_is_refused_fast_with_one_clear_line(kafka_settings: Settings) -> None:
    need_secure(kafka_settings)
    plain = Settings.from_env({"SWITCH_INSECURE": "1"}, home=kafka_settings.home,
                              bootstrap_servers=kafka_settings.kafka.bootstrap_servers)
    assert plain.kafka.security_protocol == "PLAINTEXT"
    producer = make_producer(plain)
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert asyncio.get_running_loop().time() - t0 < 15
    line = await diagnose(plain.kafka)
    assert "requires TLS and SASL" in line and "SWITCH_SECURITY_DIR" in line


async def test_components_are_not_super_users(kafka_settings: Settings) -> None:
    """A component may use every topic, but not manage users (admin only)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from switch.errors import SwitchError
    from switch.security.adminapi import set_scram_password

    need_secure(kafka_settings)
    router = kafka_settings.as_principal("router")
    assert router.kafka.sasl_username == "router"
    admin = AIOKafkaAdminClient(**router.kafka.client_kwargs())
    await admin.start()
    try:
        with pytest.raises(SwitchError, match="refused to set the password"):
            await set_scram_password(admin, "agency-EVIL", "x" * 20)
    finally:
        await admin.close()


async def test_a_rotated_password_works_at_once_and_the_old_one_does_not(
    kafka_settings: Settings,
) -> None:
    from pathlib import Path

    from switch.security.users import rotate

    a = await agency(kafka_settings, "ROT", ["IL0160000"])
    folder = Path(str(kafka_settings.kafka.security_dir))
    new = await rotate(kafka_settings, folder, "agency-ROT")
    assert new.password != a.kafka.sasl_password
    old = make_producer(a)
    with pytest.raises(KafkaConnectionError):
        await old.start()
    await old.stop()
    fresh = dataclasses.replace(a, kafka=dataclasses.replace(a.kafka, sasl_password=None))
    fresh = dataclasses.replace(fresh, kafka=kafka_settings.kafka.as_principal("agency-ROT"))
    assert fresh.kafka.sasl_password == new.password
    producer = make_producer(fresh)
    await producer.start()
    try:
        await producer.send_and_wait(fresh.requests_topic, b"{}")
    finally:
        await producer.stop()
