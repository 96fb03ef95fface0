"""`switch up --instances N`: the stages as child processes, a killed child restarted with
its instance id, and none left behind when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket

import pytest

from services.seeding import seed_stores
from switch.client import SwitchClient
from switch.settings import Settings
from switch.supervisor import Child, supervise_children
from tests.flow.test_metrics import scrape, total

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def free_ports(n: int) -> int:
    """A base port with n free ports from it on."""
    for _ in range(50):
        base = random.randrange(20000, 60000)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + n):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError("no free ports")


async def test_children_restarted_and_stopped(kafka_settings: Settings) -> None:
    settings = kafka_settings.with_overrides(metrics_port=free_ports(8))
    records = seed_stores(settings, 40, 3)
    stop, ready = asyncio.Event(), asyncio.Event()
    children: list[Child] = []
    task = asyncio.create_task(supervise_children(settings, 2, stop, ready.set, children))
    pids: list[int] = []
    try:
        await asyncio.wait_for(ready.wait(), 90)
        assert sorted(c.spec.label for c in children) == [
            "correlator.0", "correlator.1", "leads.0", "leads.1", "ncic.0", "ncic.1",
            "router.0", "router.1"]
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
        # Each child serves its own metrics on base + its index, of its own component only.
        assert settings.metrics_port is not None
        base = settings.metrics_port

        async def scrape_all() -> dict[str, dict]:  # type: ignore[type-arg]
            return {c.spec.label: (await scrape(f"http://127.0.0.1:{base + i}/metrics"))[1]
                    for i, c in enumerate(children)}

        def lag_components(samples: dict) -> set[str]:  # type: ignore[type-arg]
            return {dict(ls)["component"] for n, ls in samples if n == "switch_consumer_lag"}

        def settled(scraped: dict[str, dict]) -> bool:  # type: ignore[type-arg]
            return (all(lag_components(scraped[c.spec.label]) == {c.spec.component}
                        for c in children)
                    and sum(total(scraped[f"correlator.{i}"], "switch_replies_total")
                            for i in (0, 1)) >= 1)

        for _ in range(100):  # counted after each commit: may trail the reply a moment
            try:
                scraped = await scrape_all()
            except OSError:  # the restarted router may not serve its metrics yet
                await asyncio.sleep(0.2)
                continue
            if settled(scraped):
                break
            await asyncio.sleep(0.2)
        for c in children:
            assert lag_components(scraped[c.spec.label]) == {c.spec.component}, c.spec.label
        for label in ("correlator.0", "correlator.1", "leads.0", "leads.1", "ncic.0", "ncic.1"):
            assert total(scraped[label], "switch_routed_total") == 0
        assert sum(total(scraped[f"router.{i}"], "switch_routed_total", mke="QIM") for i in (0, 1)) == 1
        assert sum(total(scraped[f"correlator.{i}"], "switch_replies_total", mke="QIM")
                   for i in (0, 1)) == 1
        # The LEADS instance that owns the record's partition answered it, the other not.
        assert sorted(total(scraped[f"leads.{i}"], "switch_service_answers_total",
                            system="LEADS") for i in (0, 1)) == [0, 1]
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert len(pids) == 8
    assert not [p for p in pids if alive(p)], "a child outlived switch up"
