"""A resubmitted mid is recognised after the whole switch restarts: the router's memory
comes back from the mids topic and the original reply from the correlator's log."""

from __future__ import annotations

import asyncio

import pytest

from services.seeding import seed_stores
from switch.cli.app import COMPONENTS, run_components
from switch.client import SwitchClient, new_mid
from switch.settings import Settings
from tests.flow.conftest import b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _run_switch(settings: Settings) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_components(settings, COMPONENTS, stop, on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), 90)
    return stop, task


async def test_duplicate_mid_after_a_restart(kafka_settings: Settings) -> None:
    settings = kafka_settings.with_overrides(deadline_s=5.0)
    rec = next(r for r in seed_stores(settings, 30, 3) if r.rtype == "SOR")
    req = {"mke": "EIM", "mid": new_mid("restart"), "ori": rec.ori, "lno": rec.lno, "imt": "M",
           "doi": "20250101", "image": b64(photo())}

    stop, task = await _run_switch(settings)
    async with SwitchClient(settings) as client:
        first = await client.request(req)
    stop.set()
    await asyncio.wait_for(task, 60)
    assert first.status == "COMPLETE"

    stop, task = await _run_switch(settings)
    try:
        async with SwitchClient(settings) as client:
            again = await client.request(req)
            await client.send(dict(req, doi="20250102"))
            changed = (await client.wait(req["mid"], count=2))[1]
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert again.duplicate is True and again.cid == first.cid
    assert again.legs["NCIC"].imn == first.legs["NCIC"].imn
    assert changed.status == "REJECTED" and changed.errors[0].code == "DUPLICATE_MID"
