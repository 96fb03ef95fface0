"""A service's store on a full disk and on a slow disk, under load, on a real broker, the
four components run as separate `switch run` processes.

Full disk: the stores live on a small filesystem of their own (a size-limited tmpfs,
where this test may mount one, i.e. as root; elsewhere SQLite's page quota through the
SWITCH_FAULT_STORE_QUOTA knob, which fails with the same SQLITE_FULL). The filesystem is
shrunk to nearly what is used while entries flow; then it is given room again. Checked:
each service says ONCE that its store is full (and what to do) and once that it resumed;
no ACK names an image that is not stored, while full or after; each request has exactly
one reply (an entry that waited gets QUEUED at its deadline, then its supplement); no
entry is left PENDING; no component exits or restarts.

Slow disk: every commit of the LEADS store blocks longer than the transaction deadline
(SWITCH_FAULT_STORE_COMMIT_DELAY_S). At worst requests time out with the domain's replies
(entries QUEUED then a supplement, queries TIMEOUT); nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.seeding import seed_stores
from services.store import COMMIT_DELAY_ENV, QUOTA_ENV
from services.stores import read_only_union
from switch.contract.internal import RecordEntry
from switch.contract.messages import Reply
from switch.settings import Settings
from tests.flow.harness import (
    ReplyReader,
    check_acks_match_stores,
    logs_tail,
    long_run,
    missing_and_doubled,
    record_figures,
    send_at_rate,
    small_jpeg,
    start_components,
    stuck_pending,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SYSTEMS = ("LEADS", "NCIC")
FULL_LINE = "store is full"
ROOM_LINE = "store has room again"


def entries_and_queries(records: list[RecordEntry], lap: int, prefix: str,
                        queries: int = 0) -> list[dict[str, str]]:
    """One EIM per record (image type by lap: M, S, then I), then `queries` QIMs."""
    import base64

    imt = ("M", "S", "I", "I", "I")[lap]
    out = [{"mke": "EIM", "mid": f"{prefix}-{i}", "ori": r.ori, "lno": r.lno, "imt": imt,
            "doi": "20250101", "image": base64.b64encode(small_jpeg(lap * 10_000 + i)).decode()}
           for i, r in enumerate(records)]
    out += [{"mke": "QIM", "mid": f"{prefix}-q{i}", "ori": r.ori, "lno": r.lno}
            for i, r in enumerate(records[:queries])]
    return out


class SmallDisk:
    """The stores' directory on a filesystem that can be filled up and given room again."""

    def __init__(self, settings: Settings, tmp_path: Path, want: str) -> None:
        self.settings = settings
        self.dir = settings.store_dir("LEADS").parent
        self.dir.mkdir(parents=True, exist_ok=True)
        self.quota_files = {s: tmp_path / f"quota-{s.lower()}" for s in SYSTEMS}
        # A real small filesystem where it can be mounted; else (or when asked) the quota.
        self.mounted = want == "tmpfs" and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(self.dir)],
            capture_output=True).returncode == 0
        self.how = "tmpfs" if self.mounted else "page quota"

    def env(self) -> dict[str, dict[str, str]]:
        if self.mounted:
            return {}
        return {s.lower(): {QUOTA_ENV: str(self.quota_files[s])} for s in SYSTEMS}

    def fill(self) -> None:
        """Leave a few pages of room: the next entries fill it."""
        if self.mounted:
            st = os.statvfs(self.dir)
            used_k = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
            subprocess.run(["mount", "-o", f"remount,size={used_k + 160}k", str(self.dir)], check=True)
            return
        for system in SYSTEMS:
            pages = 0  # every partition store gets the quota: the largest has 20 pages left
            for path in self.settings.store_paths(system):
                db = sqlite3.connect(path)
                pages = max(pages, db.execute("PRAGMA page_count").fetchone()[0])
                db.close()
            self.quota_files[system].write_text(str(pages + 20))

    def free(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.dir)], check=True)
        else:
            for f in self.quota_files.values():
                f.write_text("")

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], check=False)


# `make test`: a tmpfs where one can be mounted, else the quota; `make reliability`: both.
@pytest.fixture(params=["tmpfs", "quota"] if long_run() else ["tmpfs"])
def small_disk(kafka_settings: Settings, tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[SmallDisk]:
    disk = SmallDisk(kafka_settings.with_overrides(deadline_s=3.0), tmp_path, request.param)
    try:
        yield disk
    finally:
        disk.close()


def unstored_acks(settings: Settings, replies: dict[str, list[Reply]]) -> list[str]:
    """Every ACK so far (first replies and supplements) whose image the store lacks."""
    bad = []
    dbs = {s: read_only_union(settings.store_paths(s)) for s in SYSTEMS}
    try:
        for mid, rs in replies.items():
            for reply in rs:
                for system, leg in reply.legs.items():
                    if leg.status == "ACK" and leg.imn and reply.mke == "EIM":
                        held = dbs[system].execute(
                            "SELECT count(*) FROM images WHERE imn = ? AND cid = ?",
                            (leg.imn, reply.cid)).fetchone()[0]
                        if held != 1:
                            bad.append(f"{mid} {system} {leg.imn}")
    finally:
        for db in dbs.values():
            db.close()
    return bad


def _has_line(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


async def wait_for_line(path: Path, text: str, timeout: float) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if _has_line(path, text):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_a_full_disk_stops_the_service_which_resumes_when_room_returns(
        small_disk: SmallDisk, tmp_path: Path) -> None:
    settings = small_disk.settings
    records = seed_stores(settings, 120, 21)
    before = entries_and_queries(records, 0, "before")
    during = entries_and_queries(records, 1, "during", queries=30)
    after = entries_and_queries(records[:40], 2, "after")
    comps = start_components(settings, tmp_path, env=small_disk.env())
    t0 = time.monotonic()
    try:
        async with ReplyReader(settings) as reader:
            assert not await send_at_rate(settings, before, 40.0)
            await reader.wait_settled([r["mid"] for r in before], 120)
            assert reader.answered([r["mid"] for r in before]) == len(before), logs_tail(comps)

            small_disk.fill()
            assert not await send_at_rate(settings, during, 40.0)
            for system in SYSTEMS:
                assert await wait_for_line(comps[system.lower()].log, FULL_LINE, 60), (
                    f"{system} never said its store is full\n{logs_tail(comps)}")
            # While full: every request is still answered (QUEUED/TIMEOUT at its deadline),
            # and no ACK names anything not stored.
            await reader.wait_answered([r["mid"] for r in during], 60)
            full_for = 5.0
            await asyncio.sleep(full_for)
            while_full = {m: list(rs) for m, rs in reader.replies.items()}
            assert not unstored_acks(settings, while_full)
            queued = sum(1 for r in during if r["mke"] == "EIM"
                         and while_full.get(r["mid"], [None])[0] is not None
                         and while_full[r["mid"]][0].status == "PENDING")

            small_disk.free()
            assert not await send_at_rate(settings, after, 20.0)
            everything = before + during + after
            await reader.wait_settled([r["mid"] for r in everything], 180)
        dead = [c.name for c in comps.values() if not c.alive()]
        restarts = {c.name: c.restarts() for c in comps.values()}
        lines = {s: comps[s.lower()].log.read_text(errors="replace") for s in SYSTEMS}
    finally:
        for c in comps.values():
            c.stop()

    replies = reader.replies
    missing, doubled = missing_and_doubled(everything, replies)
    record_figures("store full", how=small_disk.how, requests=len(everything),
                   queued_while_full=queued, missing=len(missing), doubled=len(doubled),
                   pending=len(stuck_pending(replies)), restarts=sum(restarts.values()),
                   elapsed_s=round(time.monotonic() - t0, 1))
    assert not dead, f"components exited: {dead}\n{logs_tail(comps)}"
    assert not any(restarts.values()), restarts
    for system, text in lines.items():
        assert text.count(FULL_LINE) == 1, f"{system}: {text.count(FULL_LINE)} 'full' lines"
        assert text.count(ROOM_LINE) == 1, f"{system}: {text.count(ROOM_LINE)} 'room again' lines"
        assert "store commit failed" not in text and "applying failed" not in text
    assert queued > 0, "no entry waited: the store never filled up under the entries"
    assert not missing, f"{len(missing)} requests without a reply, e.g. {missing[:5]}"
    assert not doubled, f"requests with more than one reply: {list(doubled)[:5]}"
    assert not stuck_pending(replies), "entries never completed after the disk had room again"
    assert not unstored_acks(settings, replies)
    check_acks_match_stores(settings, [r for r in everything if r["mke"] == "EIM"], replies)


# Over a minute of waiting for 2.5 s commits and their supplements: `make reliability` runs
# it; `make test` keeps the full-disk runs.
@pytest.mark.reliability_only
async def test_a_slow_disk_times_requests_out_but_loses_and_doubles_nothing(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.with_overrides(deadline_s=2.0)
    records = seed_stores(settings, 100, 23)
    requests = entries_and_queries(records, 0, "slow", queries=60)
    # Every LEADS commit takes longer than a transaction's whole deadline.
    comps = start_components(settings, tmp_path, env={"leads": {COMMIT_DELAY_ENV: "2.5"}})
    try:
        async with ReplyReader(settings) as reader:
            assert not await send_at_rate(settings, requests, 20.0)
            await reader.wait_settled([r["mid"] for r in requests], 180)
        dead = [c.name for c in comps.values() if not c.alive()]
        restarts = {c.name: c.restarts() for c in comps.values()}
    finally:
        for c in comps.values():
            c.stop()
    replies = reader.replies
    missing, doubled = missing_and_doubled(requests, replies)
    firsts = [next(x for x in replies[r["mid"]] if not x.supplement) for r in requests
              if r["mid"] in replies]
    timed_out = sum(1 for x in firsts if x.legs.get("LEADS") and x.legs["LEADS"].status in
                    ("QUEUED", "TIMEOUT"))
    record_figures("slow disk", requests=len(requests), leads_leg_timed_out=timed_out,
                   missing=len(missing), doubled=len(doubled), pending=len(stuck_pending(replies)),
                   restarts=sum(restarts.values()))
    assert not dead, f"components exited: {dead}\n{logs_tail(comps)}"
    assert not missing, f"{len(missing)} requests without a reply, e.g. {missing[:5]}\n{logs_tail(comps)}"
    assert not doubled, f"requests with more than one reply: {list(doubled)[:5]}"
    assert timed_out > 0, "the slow disk slowed nothing: is the knob read?"
    assert not stuck_pending(replies), "entries never completed"
    check_acks_match_stores(settings, [r for r in requests if r["mke"] == "EIM"], replies)
