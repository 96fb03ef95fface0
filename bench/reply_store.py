"""Disk used by the correlator's reply store per 10,000 QIM replies with images.

Run by hand (never by the tests):

    .venv/bin/python bench/reply_store.py [--records 400] [--images 3] [--queries 10000]
        [--rate 60] [--json-out FILE] [--keep]

On a fresh local broker in a temporary home it seeds --records records and runs the
four components as separate `switch run` processes; gives each record --images photos
(EIMs: the M, the S, then I images, each ~1.5 KB as in the soak), then sends --queries
QIMs of random records at --rate and waits for every reply. Before and after the QIMs
it measures the correlator's reply store: the SQLite file (`replies-0.sqlite3` and its
WAL, and the pages in use) and the changelog topic `<prefix>.correlator` on the broker
(`du` of its partition directories). It prints the growth per 10,000 QIM replies, and
the average QIM reply's size on the replies topic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak import IMTS, Traffic, spawn, stop_all, wait_answering  # noqa: E402
from services.seeding import seed_stores  # noqa: E402
from switch.contract.messages import reply_decoder  # noqa: E402
from switch.kafka.clients import make_consumer, make_producer  # noqa: E402
from switch.kafka.localbroker import LocalBroker  # noqa: E402
from switch.kafka.topics import ensure_topics  # noqa: E402
from switch.settings import Settings  # noqa: E402

PREFIX = "rs"


def say(text: str) -> None:
    print(f"reply_store {time.strftime('%H:%M:%S')}: {text}", file=sys.stderr, flush=True)


def du_bytes(paths: list[Path]) -> int:
    if not paths:
        return 0
    out = subprocess.run(["du", "-sc", "--block-size=1", *map(str, paths)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def measure(home: Path) -> dict[str, int]:
    files = sorted((home / "correlator").glob("replies-*.sqlite3*"))
    used = 0
    for db in (home / "correlator").glob("replies-*.sqlite3"):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            pages, free, size = (con.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
        finally:
            con.close()
        used += (pages - free) * size
    parts = [p for p in home.rglob(f"{PREFIX}.correlator-*") if p.is_dir()]
    # du's blocks, not apparent sizes: the broker preallocates (sparse) index files.
    return {"sqlite_files": sum(f.stat().st_size for f in files), "sqlite_pages_used": used,
            "changelog_du": du_bytes(parts),
            "changelog_logs": sum(f.stat().st_size for d in parts for f in d.glob("*.log"))}


class Replies:
    def __init__(self) -> None:
        self.got: set[str] = set()
        self.qim_bytes = 0
        self.qims = 0
        self.images = 0


async def read_replies(settings: Settings, tally: Replies, ready: asyncio.Event) -> None:
    from aiokafka import TopicPartition

    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topics.replies, p) for p in range(settings.topics.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    try:
                        reply = reply_decoder.decode(r.value)
                    except msgspec.DecodeError:
                        continue
                    if not reply.mid or reply.supplement or reply.mid in tally.got:
                        continue
                    tally.got.add(reply.mid)
                    if reply.mke == "QIM":
                        tally.qims += 1
                        tally.qim_bytes += len(r.value)
                        tally.images += len(reply.images)
    finally:
        await consumer.stop()


async def send(settings: Settings, requests: list[dict[str, str]], rate: float,
               tally: Replies, check: Any) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        t0 = time.monotonic()
        for i, req in enumerate(requests):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(settings.topics.requests, msgspec.json.encode(req),
                                key=req["lno"].encode())
            if i % 500 == 0:
                check()
        await producer.flush()
    finally:
        await producer.stop()
    mids = {r["mid"] for r in requests}
    deadline = time.monotonic() + 180
    while not mids <= tally.got:
        check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(mids - tally.got)} requests without a reply")
        await asyncio.sleep(0.5)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    home = Path(tempfile.mkdtemp(prefix="switch-replystore-"))
    logs = home / "logs"
    logs.mkdir()
    say(f"home {home}; starting a local broker")
    broker = LocalBroker(home, preferred_port=None)
    state = broker.start(progress=False)
    popen: dict[str, subprocess.Popen[bytes]] = {}
    reader: asyncio.Task[None] | None = None
    try:
        settings = Settings.from_env({}, home=home, bootstrap_servers=state.bootstrap,
                                     topic_prefix=PREFIX)
        await ensure_topics(settings)
        env = dict(os.environ)
        env.update(SWITCH_HOME=str(home), KAFKA_BOOTSTRAP_SERVERS=state.bootstrap,
                   SWITCH_TOPIC_PREFIX=PREFIX, PYTHONPATH=str(ROOT), SWITCH_LOG_LEVEL="WARNING")
        records = seed_stores(settings, args.records, 17)
        for c in ("leads", "ncic", "correlator", "router"):
            popen[c] = spawn([sys.executable, "-m", "switch.cli.main", "run", c], env,
                             logs / f"{c}.log")

        def check() -> None:
            for name, p in popen.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {p.returncode}; see {logs}")

        await wait_answering(settings, records, check)
        tally = Replies()
        ready = asyncio.Event()
        reader = asyncio.create_task(read_replies(settings, tally, ready))
        await ready.wait()
        photos = Traffic(records, 1.0)
        eims = [{"mke": "EIM", "mid": f"eim-{lap}-{i}", "ori": rec.ori, "lno": rec.lno,
                 "imt": IMTS[lap], "doi": "20250101", "image": photos.photo(lap * 100000 + i)}
                for lap in range(args.images) for i, rec in enumerate(records)]
        say(f"{len(eims)} EIMs")
        await send(settings, eims, args.rate, tally, check)
        await asyncio.sleep(2)
        before = measure(home)
        say(f"before the QIMs: {before}")
        rng = random.Random(3)
        qims = [{"mke": "QIM", "mid": f"qim-{i}", "ori": rec.ori, "lno": rec.lno}
                for i, rec in enumerate(rng.choice(records) for _ in range(args.queries))]
        tally.qims = tally.qim_bytes = tally.images = 0
        t0 = time.monotonic()
        await send(settings, qims, args.rate, tally, check)
        seconds = time.monotonic() - t0
        await asyncio.sleep(2)
        after = measure(home)
        say(f"after the QIMs: {after}")
        per = 10_000 / args.queries
        res = {
            "queries": args.queries, "seconds": round(seconds, 1), "records": args.records,
            "images_per_record": args.images,
            "qim_reply_bytes_avg": round(tally.qim_bytes / max(1, tally.qims)),
            "images_per_qim_reply": round(tally.images / max(1, tally.qims), 2),
            "before": before, "after": after,
            "per_10k_qims": {k: round((after[k] - before[k]) * per) for k in before},
        }
        return res
    finally:
        if reader is not None:
            reader.cancel()
        stop_all(popen.values())
        broker.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=400)
    p.add_argument("--images", type=int, default=3, help="photos per record (default 3)")
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=60.0, help="requests a second (default 60)")
    p.add_argument("--json-out", metavar="FILE")
    p.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = p.parse_args()
    res = asyncio.run(main_async(args))
    text = json.dumps(res, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")


if __name__ == "__main__":
    main()
