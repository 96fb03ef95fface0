"""Crash test: kill -9 the router, then the correlator, then a service while 2,000
requests flow. Every request still gets exactly one (non-supplement) reply, none twice,
and every ACK in a reply matches the store of that system: the image is there, once."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest
from aiokafka import TopicPartition
from PIL import Image

from services.seeding import seed_stores
from switch.contract.internal import RecordEntry
from switch.contract.messages import Reply, reply_decoder
from switch.kafka.clients import make_consumer, make_producer
from switch.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REQUESTS = 2000
RATE = 100.0  # per second: the run takes ~20 s, long enough for three kills


def small_jpeg(n: int) -> bytes:
    """A small conforming JPEG, different for every n (a record refuses the same photo twice)."""
    buf = io.BytesIO()
    Image.new("RGB", (120, 150), (n % 256, (n // 256) % 256, 120)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


class Component:
    def __init__(self, name: str, settings: Settings, log_dir: Path, instance: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.instance = instance  # None: `switch run NAME` as before (instance 0)
        self.extra_env = env or {}
        self.log = log_dir / (f"{name}.log" if instance is None else f"{name}-{instance}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            SWITCH_HOME=str(self.settings.home),
            KAFKA_BOOTSTRAP_SERVERS=self.settings.kafka.bootstrap_servers,
            SWITCH_TOPIC_PREFIX=self.settings.topics.prefix,
            SWITCH_DEADLINE_S=str(self.settings.deadline_s),
            **self.extra_env,
        )
        args = [] if self.instance is None else ["--instance", self.instance]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "switch.cli.main", "run", self.name, *args],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def mixed_traffic(records: list[RecordEntry], count: int, prefix: str = "crash") -> list[dict[str, str]]:
    """Three laps of EIMs (M, S, I: each a new image of the record), then QIMs."""
    requests: list[dict[str, str]] = []
    imts = ("M", "S", "I")
    for i in range(count):
        rec = records[i % len(records)]
        lap = i // len(records)
        if lap < 3:
            requests.append({"mke": "EIM", "mid": f"{prefix}-{i}", "ori": rec.ori, "lno": rec.lno,
                             "imt": imts[lap], "doi": "20250101",
                             "image": base64.b64encode(small_jpeg(i)).decode()})
        else:
            requests.append({"mke": "QIM", "mid": f"{prefix}-{i}", "ori": rec.ori, "lno": rec.lno})
    return requests


class ReplyReader:
    """Every reply on the replies topic from its beginning, by mid."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replies: dict[str, list[Reply]] = defaultdict(list)
        self.reader = make_consumer(settings, group_id=None)

    async def start(self) -> None:
        await self.reader.start()
        t = self.settings.topics
        tps = [TopicPartition(t.replies, p) for p in range(t.partitions)]
        self.reader.assign(tps)
        await self.reader.seek_to_beginning(*tps)

    async def stop(self) -> None:
        await self.reader.stop()

    async def read_until(self, until: float, expected: int) -> None:
        """Until `expected` mids have a first reply and none waits for a supplement."""
        replies = self.replies
        while time.monotonic() < until:
            batch = await self.reader.getmany(timeout_ms=200)
            for rs in batch.values():
                for r in rs:
                    reply = reply_decoder.decode(r.value)
                    replies[reply.mid or "?"].append(reply)
            firsts = sum(1 for rs in replies.values() if any(not x.supplement for x in rs))
            if firsts >= expected and _settled(replies):
                return


async def test_kill_minus_nine_loses_and_doubles_nothing(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.with_overrides(deadline_s=15.0)
    records = seed_stores(settings, 800, 11)
    requests = mixed_traffic(records, REQUESTS)

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


async def check_replies_and_stores(
    settings: Settings, requests: list[dict[str, str]], replies: dict[str, list[Reply]],
    comps: list[Component],
) -> None:
    """Exactly one (non-supplement) reply per request, none stuck PENDING, and every ACK
    matches the stores: the image on file under that IMN, once, for that transaction."""
    logs = "\n".join(c.log.read_text(errors="replace")[-2000:] for c in comps)
    missing = [r["mid"] for r in requests if not any(not x.supplement for x in replies[r["mid"]])]
    assert not missing, f"{len(missing)} requests without a reply, e.g. {missing[:5]}\n{logs}"
    doubled = {m: len([x for x in rs if not x.supplement]) for m, rs in replies.items()}
    doubled = {m: n for m, n in doubled.items() if n != 1}
    assert not doubled, "requests with more than one reply (cid, status, duplicate): " + str(
        [(m, [(x.cid, x.status, x.duplicate) for x in replies[m]]) for m in list(doubled)[:5]])

    stuck = [rs[-1].cid for rs in replies.values() if rs and rs[-1].status == "PENDING"]
    if stuck:
        words = ("restored", "fail", "rror", "orphan", "late", "duplicate")
        lines = [line for c in comps if c.name == "correlator"
                 for line in c.log.read_text(errors="replace").splitlines()]
        corr = "\n".join(line for line in lines if any(w in line for w in words))[-3000:]
        pytest.fail(f"{len(stuck)} entries never completed; " + await _diagnose(settings, stuck[:3])
                    + "\ncorrelator log:\n" + corr)

    # Every ACK matches the store: the image is on file under that IMN, exactly once, for
    # that record and that transaction; LEADS and NCIC name the same IMN. (A batch the
    # killed router had open was routed again: the numbers in the stores are the reply's.)
    stores = {s: sqlite3.connect(settings.store_path(s)) for s in ("LEADS", "NCIC")}
    try:
        for r in requests:
            if r["mke"] != "EIM":
                continue
            final = replies[r["mid"]][-1]
            acked = {leg.imn for leg in final.legs.values() if leg.status == "ACK"}
            assert len(acked) <= 1, f"{r['mid']}: the systems name different IMNs {acked}"
            for system, leg in final.legs.items():
                if leg.status != "ACK":
                    continue
                held = stores[system].execute(
                    "SELECT lno, cid FROM images WHERE imn = ? AND status = 'active'", (leg.imn,)
                ).fetchall()
                assert held == [(r["lno"], final.cid)], (
                    f"{system} holds {held} under {leg.imn} for {r['mid']} ({r['lno']}, {final.cid})")
            assert final.status == "COMPLETE", (r["mid"], final.text)
        for system, db in stores.items():
            dup = db.execute(
                "SELECT imn, COUNT(*) FROM images GROUP BY imn HAVING COUNT(*) > 1"
            ).fetchall()
            assert not dup, f"{system} stored an image twice: {dup[:5]}"
    finally:
        for db in stores.values():
            db.close()


def _settled(replies: dict[str, list[Reply]]) -> bool:
    """No entry is still waiting for its supplement."""
    return all(rs[-1].status != "PENDING" for rs in replies.values())


async def _diagnose(settings: Settings, cids: list[str]) -> str:
    """Where did these transactions stop? (responses, leg topics, stores)"""
    from switch.kafka.readall import read_to_end

    found: dict[str, list[str]] = defaultdict(list)

    def scan(rec) -> None:  # type: ignore[no-untyped-def]
        for cid in cids:
            if rec.value and cid.encode() in rec.value:
                found[cid].append(f"{rec.topic}@{rec.partition}:{rec.offset} {rec.value[:80]!r}")

    t = settings.topics
    for topic in (t.responses, t.leg_requests("LEADS"), t.leg_requests("NCIC")):
        await read_to_end(settings, topic, scan)
    out = []
    for cid in cids:
        applied = {}
        for s in ("LEADS", "NCIC"):
            db = sqlite3.connect(settings.store_path(s))
            applied[s] = db.execute("SELECT COUNT(*) FROM applied WHERE cid = ?", (cid,)).fetchone()[0]
            db.close()
        out.append(f"cid {cid}: applied {applied}; records: " + " | ".join(found[cid]))
    return "\n".join(out)
