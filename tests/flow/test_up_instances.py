"""`switch up --instances N`: the stages as child processes, a killed child restarted with
its instance id, and none left behind when it stops."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from services.seeding import seed_stores
from switch.client import SwitchClient
from switch.settings import Settings
from switch.supervisor import Child, supervise_children

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


async def test_children_restarted_and_stopped(kafka_settings: Settings) -> None:
    settings = kafka_settings
    records = seed_stores(settings, 40, 3)
    stop, ready = asyncio.Event(), asyncio.Event()
    children: list[Child] = []
    task = asyncio.create_task(supervise_children(settings, 2, stop, ready.set, children))
    pids: list[int] = []
    try:
        await asyncio.wait_for(ready.wait(), 90)
        assert sorted(c.spec.label for c in children) == [
            "correlator.0", "correlator.1", "leads.0", "ncic.0", "router.0", "router.1"]
        router = next(c for c in children if c.spec.label == "router.1")
        assert router.proc is not None
        first = router.proc.pid
        os.kill(first, signal.SIGKILL)
        for _ in range(100):
            await asyncio.sleep(0.2)
            if router.proc.pid != first and router.proc.returncode is None:
                break
        assert router.proc.pid != first and router.restarts == 1
        rec = records[0]
        async with SwitchClient(settings) as client:
            mid = await client.send({"mke": "QIM", "mid": "up-1", "ori": rec.ori, "lno": rec.lno})
            assert mid == "up-1"
            got = await client.wait(mid, timeout=60)
        assert got[0].status == "COMPLETE", got[0].text
        pids = [c.proc.pid for c in children if c.proc is not None]
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert len(pids) == 6
    assert not [p for p in pids if alive(p)], "a child outlived switch up"
