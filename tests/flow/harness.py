"""What the crash, broker-restart and fuzz tests share: the switch's components as separate
`switch run` processes, bulletin-like traffic at a steady rate, a reader that records every
reply with its arrival time, and the checks (exactly one reply per request, every ACK
matching the stores, nothing left PENDING).

`RELIABILITY=long` (set by `make reliability`) makes the tests that read `scale()` run
their long versions; figures go to `record_figures()` and are printed at the end of the
session (tests/conftest.py)."""

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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka import TopicPartition
from PIL import Image

from services.stores import read_only_union
from switch.contract.internal import RecordEntry
from switch.contract.messages import Reply, reply_decoder
from switch.kafka.clients import make_consumer, make_producer
from switch.kafka.keys import key_partition
from switch.settings import Settings

COMPONENT_NAMES = ("leads", "ncic", "correlator", "router")
RESTART_LINE = "component failed; restarting"

# Figures reported at the end of the session: test name -> {figure: value}.
FIGURES: dict[str, dict[str, Any]] = {}


def long_run() -> bool:
    return os.environ.get("RELIABILITY", "") == "long"


def scale(short: int, long: int) -> int:
    return long if long_run() else short


def record_figures(name: str, **figures: Any) -> None:
    FIGURES.setdefault(name, {}).update(figures)
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def small_jpeg(n: int) -> bytes:
    """A small conforming JPEG, different for every n (a record refuses the same photo twice)."""
    buf = io.BytesIO()
    Image.new("RGB", (120, 150), (n % 256, (n // 256) % 256, 120)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def bulletin_requests(records: list[RecordEntry], count: int, prefix: str = "crash") -> list[dict[str, str]]:
    """Three laps of EIMs (IMT M, S, I: each a new photo on the record), then QIMs."""
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


class Component:
    """One `switch run NAME [--instance ID]` process with its log."""

    def __init__(self, name: str, settings: Settings, log_dir: Path, *,
                 instance: str | None = None, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.instance = instance  # None: `switch run NAME` (instance 0)
        self.extra_env = env or {}  # e.g. a fault-injection knob for this component only
        self.log = log_dir / (f"{name}.log" if instance is None else f"{name}-{instance}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            SWITCH_HOME=str(self.settings.home),
            KAFKA_BOOTSTRAP_SERVERS=self.settings.kafka.bootstrap_servers,
            SWITCH_TOPIC_PREFIX=self.settings.topics.prefix,
            SWITCH_DEADLINE_S=str(self.settings.deadline_s),
        )
        env.update(self.extra_env)
        args = [] if self.instance is None else ["--instance", self.instance]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "switch.cli.main", "run", self.name, *args],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restarts(self) -> int:
        """How many times the supervisor restarted the component inside this process."""
        return self.log.read_text(errors="replace").count(RESTART_LINE)

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


def start_components(settings: Settings, log_dir: Path,
                     env: dict[str, dict[str, str]] | None = None) -> dict[str, Component]:
    """Every component as its own process; `env[name]` adds to one component's environment."""
    comps = {n: Component(n, settings, log_dir, env=(env or {}).get(n)) for n in COMPONENT_NAMES}
    for c in comps.values():
        c.start()
    return comps


def logs_tail(comps: dict[str, Component], chars: int = 2000) -> str:
    return "\n".join(f"--- {c.name}\n" + c.log.read_text(errors="replace")[-chars:]
                     for c in comps.values())


class ReplyReader:
    """Reads `switch.replies` from the beginning in the background; keeps every reply by mid
    with the monotonic time it was read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replies: dict[str, list[Reply]] = defaultdict(list)
        self.arrivals: list[tuple[float, str]] = []  # (monotonic, mid) of first replies
        self.where: dict[str, list[str]] = defaultdict(list)  # mid -> "partition:offset"
        self._consumer = make_consumer(settings, group_id=None)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReplyReader:
        await self._consumer.start()
        tps = [TopicPartition(self.settings.topics.replies, p)
               for p in range(self.settings.topics.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._read())
        return self

    async def start(self) -> None:
        await self.__aenter__()

    async def stop(self) -> None:
        await self.__aexit__()

    async def read_until(self, until: float, expected: int) -> None:
        """Until `expected` requests have their first reply and none waits for a
        supplement, or the monotonic time `until` (the replies arrive meanwhile)."""
        while time.monotonic() < until:
            firsts = sum(1 for rs in self.replies.values() if any(not x.supplement for x in rs))
            if firsts >= expected and settled(self.replies):
                return
            await asyncio.sleep(min(0.1, max(0.0, until - time.monotonic())))

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for rs in batch.values():
                for r in rs:
                    reply = reply_decoder.decode(r.value)
                    mid = reply.mid or "?"
                    if not reply.supplement and not any(not x.supplement for x in self.replies[mid]):
                        self.arrivals.append((now, mid))
                    self.replies[mid].append(reply)
                    self.where[mid].append(f"{r.partition}:{r.offset}")

    def answered(self, mids: list[str]) -> int:
        return sum(1 for m in mids if any(not x.supplement for x in self.replies.get(m, ())))

    async def wait_answered(self, mids: list[str], timeout: float) -> None:
        until = time.monotonic() + timeout
        while self.answered(mids) < len(mids) and time.monotonic() < until:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    async def wait_settled(self, mids: list[str], timeout: float) -> None:
        """Until every mid has its reply and none is left PENDING (or the timeout)."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.answered(mids) >= len(mids) and settled(self.replies):
                return
            await asyncio.sleep(0.2)


async def send_at_rate(
    settings: Settings,
    requests: list[dict[str, str]],
    rate: float,
    events: dict[int, Callable[[], Awaitable[None]]] | None = None,
) -> list[BaseException]:
    """Send the requests at `rate` a second, awaiting `events[i]` before request i.
    Deliveries are not awaited one by one, and the producer waits out a broker outage
    (two minutes), so the rate holds while the broker is away. Returns the failures."""
    producer = make_producer(settings, request_timeout_ms=120_000)
    await producer.start()
    futures: list[asyncio.Future[Any]] = []
    try:
        t0 = time.monotonic()
        for i, req in enumerate(requests):
            if events and i in events:
                await events[i]()
                t0 = time.monotonic() - i / rate  # keep the rate, not catch up the pause
            futures.append(await producer.send(
                settings.topics.requests, msgspec.json.encode(req), key=req["lno"].encode()))
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        await producer.stop()
    return [r for r in results if isinstance(r, BaseException)]


def settled(replies: dict[str, list[Reply]]) -> bool:
    """No entry is still waiting for its supplement."""
    return all(rs[-1].status != "PENDING" for rs in replies.values() if rs)


def missing_and_doubled(
    requests: list[dict[str, str]], replies: dict[str, list[Reply]]
) -> tuple[list[str], dict[str, int]]:
    missing = [r["mid"] for r in requests
               if not any(not x.supplement for x in replies.get(r["mid"], ()))]
    counts = {m: len([x for x in rs if not x.supplement]) for m, rs in replies.items()}
    return missing, {m: n for m, n in counts.items() if n > 1}


def stuck_pending(replies: dict[str, list[Reply]]) -> list[str]:
    return [rs[-1].cid for rs in replies.values() if rs and rs[-1].status == "PENDING"]


def check_acks_match_stores(
    settings: Settings, requests: list[dict[str, str]], replies: dict[str, list[Reply]]
) -> None:
    """Every ACK matches the store: the image is on file under that IMN, exactly once, for
    that record and that transaction; LEADS and NCIC name the same IMN; every EIM ended
    COMPLETE. (A batch a killed router had open was routed again: the numbers in the
    stores are the reply's.)"""
    check_partitioned(settings)
    stores = {s: read_only_union(settings.store_paths(s)) for s in ("LEADS", "NCIC")}
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


def check_partitioned(settings: Settings) -> None:
    """Each partition store holds only the records, and the images, whose LNO hashes to
    its partition: the leg requests reached the store that owns their record."""
    n = settings.topics.partitions
    for system in ("LEADS", "NCIC"):
        for p, path in enumerate(settings.store_paths(system)):
            if not path.exists():
                continue
            db = sqlite3.connect(path)
            try:
                for table in ("records", "images"):
                    lnos = [lno for (lno,) in db.execute(f"SELECT DISTINCT lno FROM {table}")]
                    strays = [lno for lno in lnos if key_partition(lno, n) != p]
                    assert not strays, f"{system} p{p} {table} holds other partitions' {strays[:5]}"
            finally:
                db.close()


async def diagnose(settings: Settings, cids: list[str]) -> str:
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
            db = read_only_union(settings.store_paths(s))
            applied[s] = db.execute("SELECT COUNT(*) FROM applied WHERE cid = ?", (cid,)).fetchone()[0]
            db.close()
        out.append(f"cid {cid}: applied {applied}; records: " + " | ".join(found[cid]))
    return "\n".join(out)


async def rebuilt_from_changelog(settings: Settings, home: Path) -> Settings:
    """Every partition store of both systems rebuilt into an empty `home` from the store
    changelog topics alone, as a new host would: what a moved partition would find."""
    from services.changelog import restore
    from services.stores import SystemStores

    fresh = settings.with_overrides(home=home)
    for system in ("LEADS", "NCIC"):
        with SystemStores(fresh, system) as stores:
            for p, store in stores.all():
                await restore(fresh, store, system, p)
    return fresh


async def check_replies_and_stores(
    settings: Settings, requests: list[dict[str, str]], replies: dict[str, list[Reply]],
    comps: list[Component], *, home_stores: bool = True,
) -> None:
    """Exactly one (non-supplement) reply per request, none stuck PENDING (diagnosed if
    one is), and every ACK matching the stores: those under the settings' home (unless
    `home_stores` is off: instances ran on several homes) and, always, stores rebuilt
    from the changelog topics."""
    logs = "\n".join(c.log.read_text(errors="replace")[-2000:] for c in comps)
    missing, _ = missing_and_doubled(requests, replies)
    doubled = {m: n for m, rs in replies.items() if (n := len([x for x in rs if not x.supplement])) != 1}
    assert not missing, f"{len(missing)} requests without a reply, e.g. {missing[:5]}\n{logs}"
    assert not doubled, "requests with more than one reply (cid, status, duplicate): " + str(
        [(m, [(x.cid, x.status, x.duplicate) for x in replies[m]]) for m in list(doubled)[:5]])
    stuck = stuck_pending(replies)
    if stuck:
        named = {c.name: c for c in comps}
        pytest.fail(f"{len(stuck)} entries never completed; " + await diagnose(settings, stuck[:3])
                    + "\ncorrelator log:\n" + correlator_lines(named))
    if home_stores:
        check_acks_match_stores(settings, requests, replies)
    rebuilt = settings.home.parent / f"{settings.home.name}-rebuilt"
    check_acks_match_stores(await rebuilt_from_changelog(settings, rebuilt), requests, replies)


def correlator_lines(comps: dict[str, Component]) -> str:
    words = ("restored", "fail", "rror", "orphan", "late", "duplicate")
    lines = comps["correlator"].log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if any(w in line for w in words))[-3000:]
