"""Input a router has committed is never handled again while it owns the partition, even
if its consumer hands it back (a restore's seek racing a fetch did, under rebalancing:
requests answered twice, once as duplicates). The real switch on the real broker: the
router's consumer is wound back to the start of its partitions after ten requests were
answered; none of them gets another reply."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.seeding import seed_stores
from switch.cli.app import run_components
from switch.client import SwitchClient
from switch.router.loop import Router
from switch.settings import Settings

pytestmark = [pytest.mark.kafka]


async def test_committed_input_handed_back_is_not_answered_again(kafka_settings: Settings) -> None:
    settings = kafka_settings.with_overrides(deadline_s=4.0)
    records = seed_stores(settings, 20, 5)
    stop, ready = asyncio.Event(), asyncio.Event()
    others = asyncio.create_task(run_components(settings, ("leads", "ncic", "correlator"), stop,
                                                on_ready=ready.set))
    current: list[Router] = []

    async def route() -> None:  # restarted after a failure, as `switch up` does
        while not stop.is_set():
            current.append(Router(settings))
            try:
                await current[-1].run(stop)
            except Exception:  # e.g. dropped from the group on a starved machine
                await asyncio.sleep(1.0)

    routing = asyncio.create_task(route())
    try:
        await asyncio.wait_for(ready.wait(), 90)
        while not current:  # noqa: ASYNC110 (the router is made by the task above)
            await asyncio.sleep(0.1)
        await asyncio.wait_for(current[-1].wait_ready(), 90)
        async with SwitchClient(settings) as client:
            mids = [f"hb-{uuid.uuid4().hex[:8]}-{i}" for i in range(10)]
            for mid, rec in zip(mids, records, strict=False):
                reply = await client.request({"mke": "QIM", "mid": mid, "ori": rec.ori,
                                              "lno": rec.lno}, timeout=60)
                assert reply.status == "COMPLETE" and not reply.duplicate
            router = current[-1]
            assert router.consumer is not None
            owned = router.consumer.assignment()
            assert any(tp.topic == settings.topics.requests for tp in owned)
            for tp in owned:
                router.consumer.seek(tp, 0)  # hand every committed request back
            last = await client.request({"mke": "QIM", "mid": f"hb-last-{uuid.uuid4().hex[:8]}",
                                         "ori": records[0].ori, "lno": records[0].lno}, timeout=60)
            assert last.status == "COMPLETE"
            await asyncio.sleep(2.0)  # any second answer would have been committed by now
            assert {m: len(client.replies(m)) for m in mids} == dict.fromkeys(mids, 1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(others, routing), 60)
