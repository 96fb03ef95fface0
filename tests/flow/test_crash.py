"""Crash test: kill -9 the router, then the correlator, then a service while 2,000
requests flow. Every request still gets exactly one (non-supplement) reply, none twice,
and every ACK in a reply matches the store of that system: the image is there, once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from services.seeding import seed_stores
from switch.kafka.clients import make_producer
from switch.settings import Settings
from tests.flow.harness import Component, ReplyReader, bulletin_requests, check_replies_and_stores

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REQUESTS = 2000
RATE = 100.0  # per second: the run takes ~20 s, long enough for three kills


async def test_kill_minus_nine_loses_and_doubles_nothing(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.with_overrides(deadline_s=15.0)
    records = seed_stores(settings, 800, 11)
    requests = bulletin_requests(records, REQUESTS, "crash")

    comps = {n: Component(n, settings, tmp_path) for n in ("leads", "ncic", "correlator", "router")}
    for c in comps.values():
        c.start()

    reader = ReplyReader(settings)
    replies = reader.replies
    await reader.start()

    producer = make_producer(settings)
    await producer.start()
    try:
        kills = {int(REQUESTS * 0.2): "router", int(REQUESTS * 0.45): "correlator",
                 int(REQUESTS * 0.7): "ncic"}
        t0 = time.monotonic()
        for i, req in enumerate(requests):
            if i in kills:
                victim = comps[kills[i]]
                victim.kill9()
                await asyncio.sleep(0.3)
                victim.start()
            await producer.send(settings.topics.requests, msgspec.json.encode(req),
                                key=req["lno"].encode())
            delay = t0 + (i + 1) / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
        await reader.read_until(time.monotonic() + 150, REQUESTS)
    finally:
        await producer.stop()
        await reader.stop()
        for c in comps.values():
            c.stop()
    await check_replies_and_stores(settings, requests, replies, list(comps.values()))
