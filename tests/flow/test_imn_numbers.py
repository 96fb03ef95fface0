"""Shared IMNs do not restart when the topics are recreated over existing stores: the
router's sequences come back from `<prefix>.imns` and, that topic gone too, from the
floor LEADS publishes from its store at start-up."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.seeding import seed_stores
from services.stores import read_only_union
from switch.cli.app import COMPONENTS, run_components
from switch.client import SwitchClient, new_mid
from switch.contract.internal import ImnSequence, RecordEntry
from switch.contract.messages import Reply
from switch.kafka.clients import make_producer
from switch.kafka.topics import ensure_topics
from switch.router.loop import Router
from switch.settings import Settings
from tests.flow.conftest import b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KEY = "imn-test"  # both entries on the same requests partition, as the wrap needs


async def _enter(settings: Settings, rec: RecordEntry, shade: int) -> Reply:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_components(settings, COMPONENTS, stop, on_ready=ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 120)
        async with SwitchClient(settings) as client:
            mid = new_mid("imn")
            await client.send({"mke": "EIM", "mid": mid, "ori": rec.ori, "lno": rec.lno,
                               "imt": "M", "doi": "20250101",
                               "image": b64(photo(colour=(shade, 90, 90)))}, key=KEY)
            return (await client.wait(mid, timeout=60, predicate=lambda r: not r.supplement))[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def _recreate(settings: Settings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs())
    await admin.start()
    try:
        await admin.delete_topics(names)
        for _ in range(300):
            if not set(names) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"topics {names} still listed after deletion")
        assert set(await ensure_topics(settings)) == set(names)
        assert set(names) <= set(await admin.list_topics())
    finally:
        await admin.close()


def _stored(settings: Settings, system: str, imn: str) -> list[tuple[str, str]]:
    db = read_only_union(settings.store_paths(system))
    try:
        return db.execute("SELECT lno, status FROM images WHERE imn = ?", (imn,)).fetchall()
    finally:
        db.close()


async def test_recreated_topics_do_not_restart_the_image_numbers(kafka_settings: Settings) -> None:
    settings = kafka_settings.with_overrides(deadline_s=8.0)
    first_rec, second_rec = [r for r in seed_stores(settings, 30, 3) if r.rtype == "SOR"][:2]

    first = await _enter(settings, first_rec, 40)
    assert first.status == "COMPLETE", first.text
    imn = first.legs["LEADS"].imn
    assert imn and imn == first.legs["NCIC"].imn

    t = settings.topics
    await _recreate(settings, [t.requests, t.imns])

    # Before the fix the second entry, at offset 0 of the same partition again, got the
    # same number and both systems refused it ON FILE.
    second = await _enter(settings, second_rec, 200)
    assert second.status == "COMPLETE", second.text
    imn2 = second.legs["LEADS"].imn
    assert imn2 and imn2 == second.legs["NCIC"].imn
    assert imn2 != imn
    assert imn2[1] == imn[1] and int(imn2[2:]) > int(imn[2:])  # same partition, further on
    for system in ("LEADS", "NCIC"):
        assert _stored(settings, system, imn) == [(first_rec.lno, "active")]
        assert _stored(settings, system, imn2) == [(second_rec.lno, "active")]


async def test_a_restarted_router_ignores_numbers_of_an_aborted_batch(kafka_settings: Settings) -> None:
    """The sequence is written in the batch's transaction: a batch aborted by a crash
    leaves it where it was (its requests take the same numbers when routed again)."""
    settings = kafka_settings
    topic = settings.topics.imns
    producer = make_producer(settings, transactional_id=f"{settings.topics.prefix}.test-imns")
    await producer.start()
    try:
        async with producer.transaction():
            await (await producer.send(topic, msgspec.json.encode(ImnSequence(partition=0, next=7)),
                                       key=b"0"))
        with pytest.raises(RuntimeError):
            async with producer.transaction():
                await (await producer.send(
                    topic, msgspec.json.encode(ImnSequence(partition=0, next=9)), key=b"0"))
                raise RuntimeError("the router dies before the commit")
    finally:
        await producer.stop()
    router = Router(settings)
    try:
        await router._read_imns()
    finally:
        router.mids.close()
    assert router.imns.batch().take(0) == "I000000007"
