"""Where a steady load's memory goes: the four components in this one process, tracemalloc
started only after warm-up (so the start-up is not slowed), snapshots diffed.

    .venv/bin/python bench/memtrace.py [--rate 20] [--warmup 60] [--every 60] [--rounds 3]
        [--records 500] [--frames 4]

On a fresh local broker in a temporary home it seeds --records records and runs router,
correlator, LEADS and NCIC with `run_components`; sends the soak's traffic (20 % EIMs,
80 % QIMs) at --rate. After --warmup seconds it starts tracemalloc; every --every seconds
it takes a snapshot and prints the top growths since the first (by file and line, with
--frames frames) and the object counts by type that grew, with requests sent and
replied. Growth in step with the requests handled (blocks per request) is what to look at.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak import Tally, Traffic, read_replies  # noqa: E402
from services.seeding import seed_stores  # noqa: E402
from switch.cli.app import COMPONENTS, run_components  # noqa: E402
from switch.kafka.clients import make_producer  # noqa: E402
from switch.kafka.localbroker import LocalBroker  # noqa: E402
from switch.kafka.topics import ensure_topics  # noqa: E402
from switch.logs import configure  # noqa: E402
from switch.settings import Settings  # noqa: E402


def say(text: str) -> None:
    print(f"memtrace {time.strftime('%H:%M:%S')}: {text}", flush=True)


def counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


async def main_async(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="switch-memtrace-"))
    broker = LocalBroker(home, preferred_port=None)
    state = broker.start(progress=False)
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        settings = Settings.from_env({}, home=home, bootstrap_servers=state.bootstrap,
                                     topic_prefix="mem")
        await ensure_topics(settings)
        records = seed_stores(settings, args.records, 17)
        ready = asyncio.Event()
        task = asyncio.create_task(run_components(settings, COMPONENTS, stop, on_ready=ready.set))
        await asyncio.wait_for(ready.wait(), 180)
        traffic = Traffic(records, 0.2)
        tally = Tally(60.0, time.monotonic())
        reading = asyncio.Event()
        reader = asyncio.create_task(read_replies(settings, tally, reading))
        await reading.wait()
        producer = make_producer(settings)
        await producer.start()
        t0 = time.monotonic()
        marks = [t0 + args.warmup + k * args.every for k in range(args.rounds + 1)]
        first: tracemalloc.Snapshot | None = None
        first_counts: collections.Counter[str] = collections.Counter()
        sent = 0
        try:
            while marks:
                now = time.monotonic()
                if now >= marks[0]:
                    marks.pop(0)
                    replied = len(tally.replies)
                    if first is None:
                        gc.collect()
                        first_counts = counts()
                        tracemalloc.start(args.frames)
                        first = tracemalloc.take_snapshot()
                        base = (sent, replied)
                        say(f"tracing from here: sent {sent}, replied {replied}")
                    else:
                        gc.collect()
                        snap = tracemalloc.take_snapshot().filter_traces(
                            [tracemalloc.Filter(False, tracemalloc.__file__)])
                        grown = counts() - first_counts
                        say(f"since tracing: sent {sent - base[0]}, replied {replied - base[1]}; "
                            f"traced {sum(s.size for s in snap.statistics('filename')) / 2**20:.2f} MB")
                        for stat in snap.compare_to(first, "traceback")[:12]:
                            where = " <- ".join(
                                f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
                                for f in list(stat.traceback)[::-1][:args.frames])
                            print(f"   {stat.size_diff / 1024:+9.1f} KiB "
                                  f"{stat.count_diff:+7d} blocks  {where}")
                        print("   objects grown:", grown.most_common(8))
                    continue
                req = traffic.next()
                tally.sent_at[req["mid"]] = now
                await producer.send(settings.topics.requests, msgspec.json.encode(req),
                                    key=req["lno"].encode())
                sent += 1
                await asyncio.sleep(max(0.0, t0 + sent / args.rate - time.monotonic()))
        finally:
            await producer.stop()
            reader.cancel()
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 60)
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--every", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--records", type=int, default=500)
    p.add_argument("--frames", type=int, default=4)
    args = p.parse_args()
    configure("WARNING")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
