"""The correlator's state on a real broker: finished replies kept for the mid retention
with RAM flat, mids scoped by ORI, restores that read only the changelog's tail, the
responses topic's retention no longer able to lose a waiting transaction, deadlines on
the broker's clock whatever this host's wall clock says."""

from __future__ import annotations

import asyncio
import io
import random
import time
import types
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from PIL import Image

import switch.correlator.loop as correlator_loop
import switch.correlator.pending as correlator_pending
from services.seeding import seed_stores
from switch.cli.app import run_components
from switch.client import SwitchClient, new_mid
from switch.contract.internal import Manifest, response_decoder
from switch.contract.messages import Control, encode
from switch.correlator.loop import Correlator
from switch.kafka.brokerclock import BrokerClock
from switch.kafka.clients import make_consumer, topic_partitions
from switch.kafka.readall import read_to_end
from switch.settings import Settings
from tests.flow.conftest import b64

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OTHERS = ("leads", "ncic", "router")


@dataclass
class Part:
    stop: asyncio.Event
    task: asyncio.Task[None]


async def start_others(settings: Settings) -> Part:
    """LEADS, NCIC and the router; the test runs its own correlator beside them."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_components(settings, OTHERS, stop, on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), 90)
    return Part(stop, task)


async def start_correlator(settings: Settings, clock: BrokerClock | None = None) -> tuple[Correlator, Part]:
    c = Correlator(settings, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    await asyncio.wait_for(c.wait_ready(), 90)
    return c, Part(stop, task)


async def halt(*parts: Part) -> None:
    for p in parts:
        p.stop.set()
    for p in parts:
        await asyncio.wait_for(p.task, 60)


def noisy_photo(width: int = 400, height: int = 500, seed: int = 1) -> bytes:
    """A JPEG of noise: about 60 KB once the router has sized it (its 64 KB limit)."""
    rnd = random.Random(seed)
    im = Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=70)
    return buf.getvalue()


async def ctl(client: SwitchClient, settings: Settings, mode: str) -> None:
    p = client._producer
    await (await p.send(settings.topics.control, encode(Control(system="NCIC", mode=mode)), key=b"NCIC"))
    await asyncio.sleep(1.5)


async def test_the_first_of_400_large_replies_is_still_held_and_ram_stays_flat(
    kafka_settings: Settings,
) -> None:
    """400 QIM replies of 2 x ~60 KB photos (about 66 MB; the old 32 MiB budget held the
    last ~200): the first mid resubmitted still gets its original reply, with its ORI."""
    settings = kafka_settings.with_overrides(deadline_s=30.0)
    rec = next(r for r in seed_stores(settings, 30, 5) if r.rtype == "SOR")
    others = await start_others(settings)
    corr, cpart = await start_correlator(settings)
    try:
        async with SwitchClient(settings) as client:
            entered = await client.request({"mke": "EIM", "mid": new_mid("e"), "ori": rec.ori,
                                            "lno": rec.lno, "imt": "M", "doi": "20250101",
                                            "image": b64(noisy_photo())}, timeout=60)
            assert entered.status == "COMPLETE", entered.text
            mids = [new_mid("q") for _ in range(400)]
            first: dict[str, object] = {}
            for i in range(0, 400, 100):
                for mid in mids[i:i + 100]:
                    await client.send({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno})
                for mid in mids[i:i + 100]:
                    first[mid] = (await client.wait(mid, timeout=120))[0]
            original = client.replies(mids[0])[0]
            assert len(original.images) == 2 and len(original.images[0].image) > 30_000
            assert sum(len(encode(r)) for r in first.values()) > 48 * 1024 * 1024  # type: ignore[arg-type]
            await client.send({"mke": "QIM", "mid": mids[0], "ori": rec.ori, "lno": rec.lno})
            again = (await client.wait(mids[0], count=2, timeout=60))[1]
        assert again.duplicate is True and again.status == original.status
        assert again.cid == original.cid and again.ori == rec.ori
        assert [i.image for i in again.images] == [i.image for i in original.images]
        # Nothing finished is held in RAM: it is in the on-disk store.
        assert corr.table.open_count == 0 and corr.table.recent == {}
        assert corr.store.finished_count() >= 401
    finally:
        await halt(cpart, others)


async def test_a_mid_is_scoped_by_ori(kafka_settings: Settings) -> None:
    """Agency B's first use of agency A's mid is a new request answered to B; each
    resubmission gets its own agency's original reply."""
    settings = kafka_settings.with_overrides(deadline_s=5.0)
    records = seed_stores(settings, 30, 6)
    rec_a = next(r for r in records if r.rtype == "SOR")
    rec_b = next(r for r in records if r.ori != rec_a.ori)
    others = await start_others(settings)
    _, cpart = await start_correlator(settings)
    mid = new_mid("shared")
    req_a = {"mke": "QIM", "mid": mid, "ori": rec_a.ori, "lno": rec_a.lno}
    req_b = {"mke": "QIM", "mid": mid, "ori": rec_b.ori, "lno": rec_b.lno}
    try:
        async with SwitchClient(settings) as client:
            a = await client.request(req_a)
            await client.send(req_b)
            b = (await client.wait(mid, count=2))[1]
            await client.send(req_a)
            a2 = (await client.wait(mid, count=3))[2]
            await client.send(req_b)
            b2 = (await client.wait(mid, count=4))[3]
    finally:
        await halt(cpart, others)
    assert a.ori == rec_a.ori and a.status == "COMPLETE"
    assert b.ori == rec_b.ori and b.cid != a.cid and not b.duplicate, b.text
    assert b.status == "COMPLETE" and not b.errors
    assert a2.duplicate and a2.cid == a.cid and a2.ori == rec_a.ori
    assert b2.duplicate and b2.cid == b.cid and b2.ori == rec_b.ori


async def test_a_restart_reads_only_the_changelog_tail(kafka_settings: Settings) -> None:
    """What a restore reads does not grow with the number of finished transactions; with
    the local cache lost, the changelog alone still answers an old mid."""
    settings = kafka_settings.with_overrides(deadline_s=5.0)
    rec = next(r for r in seed_stores(settings, 30, 8) if r.rtype == "SOR")
    others = await start_others(settings)
    restores = []
    first_mid = new_mid("q")
    try:
        async with SwitchClient(settings) as client:
            for count in (20, 60):
                corr, cpart = await start_correlator(settings)
                restores.append(dict(corr.last_restore))
                for i in range(count):
                    mid = first_mid if not restores[1:] and i == 0 else new_mid("q")
                    await client.send({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno})
                    await client.wait(mid)
                await halt(cpart)
            corr, cpart = await start_correlator(settings)
            restores.append(dict(corr.last_restore))
            await halt(cpart)
            # A new host: no local cache. The changelog is read whole, once.
            (settings.home / "correlator" / "replies-0.sqlite3").unlink()
            corr, cpart = await start_correlator(settings)
            restores.append(dict(corr.last_restore))
            try:
                await client.send({"mke": "QIM", "mid": first_mid, "ori": rec.ori, "lno": rec.lno})
                again = (await client.wait(first_mid, count=2))[1]
            finally:
                await halt(cpart)
    finally:
        await halt(others)
    # After 20 and after 80 finished transactions: nothing to replay, no changelog to read.
    assert restores[1] == {"changelog": 0, "responses": 0}, restores
    assert restores[2] == {"changelog": 0, "responses": 0}, restores
    assert restores[3]["responses"] == 0 and restores[3]["changelog"] >= 80, restores
    assert again.duplicate and again.ori == rec.ori


async def test_a_queued_entry_survives_the_responses_retention(kafka_settings: Settings) -> None:
    """NCIC down_forward: the EIM is answered PENDING. Then the responses log loses every
    record (what its retention does to an entry queued longer than it) and the correlator
    restarts: the late NCIC answer still gives the supplement."""
    settings = kafka_settings.with_overrides(deadline_s=3.0)
    rec = next(r for r in seed_stores(settings, 30, 9) if r.rtype == "SOR")
    others = await start_others(settings)
    _, cpart = await start_correlator(settings)
    try:
        async with SwitchClient(settings) as client:
            await ctl(client, settings, "down_forward")
            req = {"mke": "EIM", "mid": new_mid("e"), "ori": rec.ori, "lno": rec.lno, "imt": "M",
                   "doi": "20250101", "image": b64(noisy_photo(seed=2))}
            first = await client.request(req, timeout=30)
            assert first.status == "PENDING" and first.legs["NCIC"].status == "QUEUED", first.text
            await halt(cpart)
            low = await _delete_all_records(settings, settings.topics.responses)
            assert low and all(off > 0 for off in low.values())
            manifests: list[str] = []

            def collect(r) -> None:  # type: ignore[no-untyped-def]
                msg = response_decoder.decode(r.value)
                if isinstance(msg, Manifest):
                    manifests.append(msg.cid)

            await read_to_end(settings, settings.topics.responses, collect)
            assert first.cid not in manifests  # gone from responses
            _, cpart = await start_correlator(settings)
            await ctl(client, settings, "up")
            sup = await client.wait(req["mid"], predicate=lambda r: r.supplement, timeout=60)
    finally:
        await halt(cpart, others)
    assert sup[0].status == "COMPLETE" and sup[0].legs["NCIC"].status == "ACK"
    assert sup[0].cid == first.cid


async def _delete_all_records(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """What retention does to old segments: every record so far is gone from `topic`."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs())
    await admin.start()
    try:
        return await admin.delete_records(
            {tp: RecordsToDelete(end) for tp, end in ends.items() if end})
    finally:
        await admin.close()


def _stepped_time(offset_s: float) -> types.SimpleNamespace:
    """The `time` module as a host whose wall clock was stepped by `offset_s` sees it."""
    return types.SimpleNamespace(time=lambda: time.time() + offset_s, monotonic=time.monotonic)


@pytest.mark.parametrize("step_s", [30.0, -3600.0])
async def test_deadlines_ignore_a_stepped_wall_clock(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, step_s: float
) -> None:
    """The correlator's host clock stepped +30 s (before: every entry PENDING at once) or
    -1 h (before: no QUEUED reply for an hour): queries still COMPLETE, and an entry for a
    down NCIC is answered QUEUED after about deadline_s."""
    settings = kafka_settings.with_overrides(deadline_s=4.0)
    rec = next(r for r in seed_stores(settings, 30, 10) if r.rtype == "SOR")
    stepped = _stepped_time(step_s)
    monkeypatch.setattr(correlator_loop, "time", stepped)
    monkeypatch.setattr(correlator_pending, "time", stepped)
    wall: Callable[[], float] = stepped.time
    others = await start_others(settings)
    _, cpart = await start_correlator(settings, clock=BrokerClock(wall=wall))
    try:
        async with SwitchClient(settings) as client:
            for _ in range(5):
                q = await client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori,
                                          "lno": rec.lno})
                assert q.status == "COMPLETE", q.text
            await ctl(client, settings, "down_forward")
            t0 = time.monotonic()
            e = await client.request({"mke": "EIM", "mid": new_mid("e"), "ori": rec.ori,
                                      "lno": rec.lno, "imt": "M", "doi": "20250101",
                                      "image": b64(noisy_photo(seed=3))}, timeout=30)
            waited = time.monotonic() - t0
            await ctl(client, settings, "up")
    finally:
        await halt(cpart, others)
    assert e.status == "PENDING" and e.legs["NCIC"].status == "QUEUED", e.text
    assert 3.0 <= waited < 20.0
