"""A service killed with SIGKILL mid-stream and restarted: every entry applied exactly once.

At-least-once delivery plus the idempotent store: after the restart the batch in flight
is delivered again, and the store answers it with the answers it stored. So the
responses topic may hold an answer twice, but only byte-for-byte identical copies,
and every cid is answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from services.seeding import seed_stores
from services.stores import read_only_union
from switch.contract.internal import LegAnswer
from switch.contract.messages import Control, EnterImage, Latency
from switch.settings import Settings
from tests.services.helpers import jpeg, leg, mid
from tests.services.kafka_helpers import producer, reader, send_control, send_legs

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N = 300


def start_service(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SWITCH_HOME": str(settings.home),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "SWITCH_TOPIC_PREFIX": settings.topics.prefix,
        "SWITCH_PARTITIONS": str(settings.topics.partitions),
    }
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "switch.cli.main", "run", "leads"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


async def wait_serving(proc: subprocess.Popen[bytes], log: Path, count: int) -> None:
    """Until the log shows the `count`-th "partitions ready" line (its stores brought up to
    date from the changelog: one per start, the only instance getting every partition)."""
    for _ in range(600):
        assert proc.poll() is None, log_tail(log)
        if log_tail(log, None).count('"partitions ready"') >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("service did not start:\n" + log_tail(log))


def log_tail(log: Path, chars: int | None = 3000) -> str:
    text = log.read_text() if log.exists() else ""
    return text[-chars:] if chars else text


async def test_kill_9_mid_stream_then_restart(kafka_settings: Settings, tmp_path: Path) -> None:
    s = kafka_settings
    records = seed_stores(s, N, seed=5, sor_share=0.0)  # VOAY: LEADS only, one M each
    log = tmp_path / "leads.log"
    legs = [
        leg(
            EnterImage(
                mid=mid(), ori=r.ori, lno=r.lno, imt="M", doi="20240101", image=jpeg(i)
            ),
            "LEADS",
            cid=f"crash-{i:04d}",
        )
        for i, r in enumerate(records)
    ]
    copies: dict[str, set[bytes]] = defaultdict(set)

    async with producer(s) as p, reader(s, s.topics.responses) as responses:
        # Service time keeps answers in flight, so the kill finds some applied, unsent.
        await send_control(
            p, s, Control(system="LEADS", latency_ms=Latency(p50=20, p99=120))
        )
        proc = start_service(s, log)
        try:
            await wait_serving(proc, log, 1)

            async def feed() -> None:
                for start in range(0, N, 10):
                    await send_legs(p, s, legs[start : start + 10])
                    await asyncio.sleep(0.03)

            feeder = asyncio.create_task(feed())
            await collect(responses, copies, lambda: len(copies) >= N // 4, timeout=60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            killed_at = len(copies)
            await feeder
            assert killed_at < N, "the kill came too late to test anything"

            proc = start_service(s, log)
            await wait_serving(proc, log, 2)
            await collect(responses, copies, lambda: len(copies) >= N, timeout=90)
            # A moment more, so duplicates sent late are seen too.
            await collect(responses, copies, lambda: False, timeout=1.0)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    assert sorted(copies) == sorted(leg.cid for leg in legs)
    # Any duplicate on the topic is an identical copy of the one answer.
    assert all(len(v) == 1 for v in copies.values()), {k: v for k, v in copies.items() if len(v) > 1}
    for values in copies.values():
        answer = msgspec.json.decode(next(iter(values)), type=LegAnswer)
        assert answer.leg.status == "ACK", answer.leg.text
    db = read_only_union(s.store_paths("LEADS"))
    try:
        assert db.execute("SELECT count(*) FROM images").fetchone()[0] == N
        assert db.execute("SELECT count(*) FROM applied").fetchone()[0] == N
        for one in legs:
            entered = db.execute("SELECT count(*) FROM images WHERE cid = ?", (one.cid,))
            assert entered.fetchone()[0] == 1
    finally:
        db.close()


async def collect(responses, copies, done, *, timeout: float) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done() and loop.time() < deadline:
        batch = await responses.getmany(timeout_ms=100)
        for recs in batch.values():
            for r in recs:
                if r.key and r.key.startswith(b"crash-") and r.value:
                    copies[r.key.decode()].add(r.value)
