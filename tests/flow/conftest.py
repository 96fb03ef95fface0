"""A whole switch (router, correlator, LEADS, NCIC) running in the test's event loop."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from PIL import Image

from services.seeding import seed_stores
from switch.cli.app import COMPONENTS, run_components
from switch.client import SwitchClient
from switch.contract.internal import RecordEntry
from switch.metrics import Metrics
from switch.settings import Settings


def photo(width: int = 640, height: int = 800, colour: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    """A real JPEG, larger than the box, so the router has to size it."""
    im = Image.new("RGB", (width, height), colour)
    for x in range(0, width, 16):
        for y in range(0, height, 16):
            im.putpixel((x, y), ((x * 7) % 256, (y * 3) % 256, (x + y) % 256))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class RunningSwitch:
    settings: Settings
    records: list[RecordEntry]
    client: SwitchClient
    metrics: Metrics  # every component's, in one registry (not served unless a test does)

    def record(self, rtype: str, index: int = 0) -> RecordEntry:
        return [r for r in self.records if r.rtype == rtype][index]


@pytest.fixture
async def switch(kafka_settings: Settings) -> AsyncIterator[RunningSwitch]:
    settings = kafka_settings.with_overrides(deadline_s=4.0)
    records = seed_stores(settings, 60, 7)
    stop = asyncio.Event()
    ready = asyncio.Event()
    metrics = Metrics()
    task = asyncio.create_task(run_components(settings, COMPONENTS, stop, on_ready=ready.set,
                                              metrics=metrics))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=90, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        stop.set()
        await task  # surfaces the failure
        raise RuntimeError("switch did not become ready in 90 s")
    try:
        async with SwitchClient(settings) as client:
            yield RunningSwitch(settings, records, client, metrics)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
