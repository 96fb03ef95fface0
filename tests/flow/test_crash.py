"""Crash test: kill -9 the router, then the correlator, then a service while 2,000
requests flow. Every request still gets exactly one (non-supplement) reply, none twice,
and every ACK in a reply matches the store of that system: the image is there, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from switch.services.seeding import seed_stores
from switch.settings import Settings
from tests.flow.harness import (
    ReplyReader,
    bulletin_requests,
    check_acks_match_stores,
    correlator_lines,
    diagnose,
    logs_tail,
    missing_and_doubled,
    send_at_rate,
    start_components,
    stuck_pending,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REQUESTS = 2000
RATE = 100.0  # per second: the run takes ~20 s, long enough for three kills


async def test_kill_minus_nine_loses_and_doubles_nothing(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.with_overrides(deadline_s=15.0)
    records = seed_stores(settings, 800, 11)
    requests = bulletin_requests(records, REQUESTS, "crash")
    comps = start_components(settings, tmp_path)

    def kill(name: str):  # type: ignore[no-untyped-def]
        async def event() -> None:
            comps[name].kill9()
            await asyncio.sleep(0.3)
            comps[name].start()
        return event

    kills = {int(REQUESTS * 0.2): kill("router"), int(REQUESTS * 0.45): kill("correlator"),
             int(REQUESTS * 0.7): kill("ncic")}
    try:
        async with ReplyReader(settings) as reader:
            failed = await send_at_rate(settings, requests, RATE, kills)
            assert not failed, f"{len(failed)} requests not delivered: {failed[:3]}"
            await reader.wait_settled([r["mid"] for r in requests], 150)
    finally:
        for c in comps.values():
            c.stop()

    replies = reader.replies
    missing, doubled = missing_and_doubled(requests, replies)
    assert not missing, f"{len(missing)} requests without a reply, e.g. {missing[:5]}\n{logs_tail(comps)}"
    assert not doubled, f"requests with more than one reply: {list(doubled.items())[:5]}"
    stuck = stuck_pending(replies)
    if stuck:
        pytest.fail(f"{len(stuck)} entries never completed; " + await diagnose(settings, stuck[:3])
                    + "\ncorrelator log:\n" + correlator_lines(comps))
    check_acks_match_stores(settings, requests, replies)
