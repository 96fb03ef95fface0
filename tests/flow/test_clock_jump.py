"""The wall clock jumps WHILE transactions wait for their deadline, on a real broker.

The correlator, the services and the router run in this process; their modules see a
wall clock (`time.time`) that the test steps by an hour forward, then two hours back, in
the middle of an entry's wait for a NCIC that is down (down_forward). Before deadlines
counted on the broker's clock, a jump forward fired every pending deadline at once and a
jump back postponed them by the jump. Now the QUEUED reply comes after about deadline_s
both times: never early, never late. (tests/flow/test_state.py steps the clock before
start; tests/correlator/test_clock_jump.py is the pure version.)"""

from __future__ import annotations

import asyncio
import time
import types

import pytest

import services.loop as service_loop
import switch.correlator.loop as correlator_loop
import switch.correlator.pending as correlator_pending
import switch.router.loop as router_loop
from services.seeding import seed_stores
from switch.client import SwitchClient, new_mid
from switch.kafka.brokerclock import BrokerClock
from switch.settings import Settings
from tests.flow.conftest import b64
from tests.flow.test_state import ctl, halt, noisy_photo, start_correlator, start_others

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DEADLINE_S = 4.0


class JumpingWall:
    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def module(self) -> types.SimpleNamespace:
        """The `time` module as the patched components see it: only the wall clock jumps."""
        names = {n: getattr(time, n) for n in dir(time) if not n.startswith("_")}
        return types.SimpleNamespace(**{**names, "time": self.time})


async def test_a_wall_clock_jump_mid_wait_neither_fires_a_deadline_early_nor_never(
        kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = kafka_settings.with_overrides(deadline_s=DEADLINE_S)
    rec = next(r for r in seed_stores(settings, 30, 12) if r.rtype == "SOR")
    wall = JumpingWall()
    for module in (correlator_loop, correlator_pending, service_loop, router_loop):
        monkeypatch.setattr(module, "time", wall.module())
    others = await start_others(settings)
    _, cpart = await start_correlator(settings, clock=BrokerClock(wall=wall.time))
    waited: dict[str, float] = {}
    try:
        async with SwitchClient(settings) as client:
            for _ in range(3):
                q = await client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori,
                                          "lno": rec.lno})
                assert q.status == "COMPLETE", q.text
            await ctl(client, settings, "down_forward")
            for label, jump_s, imt in (("forward 1 h", 3600.0, "M"), ("back 2 h", -7200.0, "S")):
                t0 = time.monotonic()
                pending = asyncio.create_task(client.request(
                    {"mke": "EIM", "mid": new_mid("e"), "ori": rec.ori, "lno": rec.lno, "imt": imt,
                     "doi": "20250101", "image": b64(noisy_photo(seed=len(waited) + 5))}, timeout=60))
                await asyncio.sleep(1.0)
                wall.offset += jump_s  # mid-wait
                e = await pending
                waited[label] = time.monotonic() - t0
                assert e.status == "PENDING" and e.legs["NCIC"].status == "QUEUED", e.text
                assert e.legs["LEADS"].status == "ACK", e.text
            await ctl(client, settings, "up")
    finally:
        await halt(cpart, others)
    for label, secs in waited.items():
        # Not early (a forward jump used to fire it at once, after ~1 s) and not never (a
        # jump back used to postpone it by two hours); the slack is a loaded 2-core machine.
        assert DEADLINE_S - 0.5 <= secs < DEADLINE_S + 12, f"{label}: QUEUED after {secs:.1f} s"
