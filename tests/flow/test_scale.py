"""Scale-out on the real broker: several instances of every stage as `switch run` processes.

- The mid test: the same mid and content sent at once under two Kafka keys that land on
  partitions owned by two different routers (and a third copy later) is applied once and
  answered once as the original, the others as duplicates.
- Two routers, two correlators, two LEADS and two NCIC, 2,000 requests of mixed traffic:
  one instance of each stage killed with kill -9 and a third instance of each added while
  it flows, the third LEADS and NCIC on another home (another host: their stores come
  from the changelog topics): exactly one reply per request, every ACK matching the
  stores rebuilt from the changelogs, every record and image in the store of its LNO's
  partition, and each service instance having applied leg requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgspec
import pytest

from services.seeding import seed_stores
from services.stores import read_only_union
from switch.kafka.clients import make_producer
from switch.router.partitioning import ori_partition
from switch.settings import Settings
from tests.flow.harness import (
    Component,
    ReplyReader,
    bulletin_requests,
    check_replies_and_stores,
    small_jpeg,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# A killed instance's open transaction is aborted by the broker after this; its partitions
# wait that long before another instance can restore them (see Router.restore).
FAST_TXN = {"SWITCH_TRANSACTION_TIMEOUT_S": "8"}


def owned(comp: Component) -> set[int] | None:
    """The requests partitions a router last restored (from its JSON log), None before."""
    last = None
    for line in comp.log.read_text(errors="replace").splitlines():
        if '"restored"' in line:
            try:
                last = json.loads(line)
            except ValueError:
                continue
    return None if last is None else set(last.get("partitions", []))


async def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def read_replies(reader: ReplyReader, mid: str, count: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while len(reader.replies[mid]) < count and time.monotonic() < end:
        await reader.read_until(time.monotonic() + 0.5, 10**9)


def key_on(partition: int, partitions: int, prefix: str) -> str:
    """A Kafka key that the default partitioner puts on `partition`."""
    return next(k for i in range(10_000) if ori_partition(k := f"{prefix}{i}", partitions) == partition)


async def test_same_mid_through_two_routers_is_applied_once(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    n = settings.topics.partitions
    records = seed_stores(settings, 60, 5)
    comps = [Component("leads", settings, tmp_path), Component("ncic", settings, tmp_path),
             Component("correlator", settings, tmp_path)]
    routers = [Component("router", settings, tmp_path, instance=i) for i in ("a", "b")]
    for c in comps + routers:
        c.start()
    reader = ReplyReader(settings)
    await reader.start()
    producer = make_producer(settings)
    await producer.start()
    try:
        await wait_for(lambda: all(owned(r) for r in routers)
                       and owned(routers[0]) | owned(routers[1]) == set(range(n))  # type: ignore[operator]
                       and not owned(routers[0]) & owned(routers[1]),  # type: ignore[operator]
                       90, "both routers to own partitions")
        # The record's ORI partition is owned by one router; key the other copy so it
        # arrives on a partition of the other router.
        rec = next(r for r in records if r.rtype == "SOR")
        home = ori_partition(rec.ori, n)
        mine = next(r for r in routers if home in (owned(r) or set()))
        other = next(p for r in routers if r is not mine for p in sorted(owned(r) or ()))
        keys = [rec.ori, key_on(other, n, "K")]
        req = {"mke": "EIM", "mid": "same-mid-1", "ori": rec.ori, "lno": rec.lno, "imt": "M",
               "doi": "20250101", "image": __import__("base64").b64encode(small_jpeg(7)).decode()}
        raw = msgspec.json.encode(req)
        sent = await asyncio.gather(*(producer.send_and_wait(settings.topics.requests, raw,
                                                             key=k.encode()) for k in keys))
        assert {m.partition for m in sent} == {home, other} and home != other
        await read_replies(reader, "same-mid-1", 2, 60)
        await asyncio.sleep(1)  # a third reply now would be a double
        await producer.send_and_wait(settings.topics.requests, raw, key=b"later")
        await read_replies(reader, "same-mid-1", 3, 30)
        await reader.read_until(time.monotonic() + 2, 10**9)  # and nothing more comes
    finally:
        await producer.stop()
        await reader.stop()
        for c in comps + routers:
            c.stop()

    got = reader.replies["same-mid-1"]
    logs = "\n".join(r.log.read_text(errors="replace")[-1500:] for r in routers)
    assert len(got) == 3, f"{[(r.status, r.duplicate) for r in got]}\n{logs}"
    originals = [r for r in got if not r.duplicate]
    assert len(originals) == 1, [(r.cid, r.status, r.duplicate) for r in got]
    assert originals[0].status == "COMPLETE", originals[0].text
    assert all(r.cid == originals[0].cid for r in got)
    for system in ("LEADS", "NCIC"):
        db = read_only_union(settings.store_paths(system))
        try:
            held = db.execute("SELECT imn, cid FROM images WHERE lno = ? AND status = 'active' "
                              "AND imt = 'M' AND doi = '20250101'", (rec.lno,)).fetchall()
        finally:
            db.close()
        assert len(held) == 1 and held[0][1] == originals[0].cid, f"{system}: {held}"


REQUESTS = 2000
RATE = 110.0  # per second: ~18 s of traffic


# Under CPU starvation on 2 cores a LIVE router or correlator can miss its heartbeats and be
# dropped from the group mid-step. Its offset commit carries its generation
# (switch/kafka/fencing.py), so the coordinator refuses it and the step aborts: the new
# owner's answer is the only one.
async def test_two_of_each_stage_kill_and_add_while_it_flows(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.with_overrides(deadline_s=30.0)
    other_host = settings.with_overrides(home=tmp_path / "host-b")  # nothing seeded there
    records = seed_stores(settings, 700, 13)
    requests = bulletin_requests(records, REQUESTS, "scale")
    stages = {(name, i): Component(name, settings, tmp_path, instance=i, env=FAST_TXN)
              for name in ("leads", "ncic", "router", "correlator") for i in ("0", "1")}
    for c in stages.values():
        c.start()
    everyone = list(stages.values())
    reader = ReplyReader(settings)
    await reader.start()
    producer = make_producer(settings)
    await producer.start()
    try:
        await wait_for(lambda: all(owned(stages[("router", i)]) is not None for i in "01"), 90,
                       "the routers' first assignment")
        events = {int(REQUESTS * 0.2): ("kill", "router", "0"),
                  int(REQUESTS * 0.3): ("kill", "leads", "0"),
                  int(REQUESTS * 0.4): ("kill", "correlator", "1"),
                  int(REQUESTS * 0.45): ("kill", "ncic", "1"),
                  int(REQUESTS * 0.55): ("add", "router", "2"),
                  int(REQUESTS * 0.6): ("add", "leads", "2"),
                  int(REQUESTS * 0.65): ("add", "correlator", "2"),
                  int(REQUESTS * 0.7): ("add", "ncic", "2")}
        t0 = time.monotonic()
        for i, req in enumerate(requests):
            if i in events:
                what, name, inst = events[i]
                if what == "kill":
                    stages[(name, inst)].kill9()
                else:
                    home = other_host if name in ("leads", "ncic") else settings
                    c = stages[(name, inst)] = Component(name, home, tmp_path,
                                                         instance=inst, env=FAST_TXN)
                    c.start()
                    everyone.append(c)
            key = req["ori"] if i % 2 else req["lno"]  # half of them take the extra hop
            await producer.send(settings.topics.requests, msgspec.json.encode(req), key=key.encode())
            delay = t0 + (i + 1) / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
        await reader.read_until(time.monotonic() + 120, REQUESTS)
    finally:
        await producer.stop()
        await reader.stop()
        for c in everyone:
            c.stop()
    # The partitions that moved to the other host have their stores there: the ACKs are
    # checked against the stores rebuilt from the changelogs, as a third host would.
    await check_replies_and_stores(settings, requests, reader.replies, everyone,
                                   home_stores=False)
    # The services shared the work: the instances that ran all along answered leg requests
    # (one added late may get its partitions only after the traffic ended: checked above
    # through the stores rebuilt from the changelogs, not by a count here).
    for name, inst in (("leads", "1"), ("ncic", "0")):
        assert stopped_answered(stages[(name, inst)]) > 0, f"{name}.{inst} answered nothing"


def stopped_answered(comp: Component) -> int:
    """How many leg requests a service answered, from its last `stopped` log line."""
    for line in reversed(comp.log.read_text(errors="replace").splitlines()):
        if '"stopped"' in line:
            try:
                return int(json.loads(line)["answered"])
            except (ValueError, KeyError):
                continue
    raise AssertionError(f"{comp.log.name}: no stopped line")
