"""Soak: the switch at a steady mixed load for a long time, watching memory and latency.

Run by hand or with `make soak` (never by the tests):

    .venv/bin/python bench/soak.py [--duration 3600] [--rate 60] [--mode up|run]
        [--eim-share 0.2] [--records 8000] [--interval 60] [--sample 15]
        [--trace COMPONENT|up] [--trace-every S] [--json-out FILE] [--keep]

On a fresh local broker in a temporary home (stopped at the end), it seeds --records
records and runs the switch either as `switch up --instances 1` (--mode up, the default:
the supervisor and one child per component) or as four separate `switch run` processes
(--mode run). Then it sends requests at a constant --rate for --duration seconds: EIMs
(share --eim-share, each a new small photo; per record the M, then the S, then up to ten
I images) and QIMs of random records, and reads every reply.

Every --sample seconds it reads each process's resident memory (VmRSS from /proc: every
switch process, the broker's JVM, and this load generator); every --interval seconds it
closes a latency interval (request-to-reply, from each request's scheduled send time).

At the end it prints, per process, the RSS at start and end, its peak and its slope in
MB/hour after warm-up (least squares over the samples after the first 10 % of the run);
p50/p99/max per interval, the p99's drift (least-squares slope over the intervals after
warm-up, ms/hour); and requests sent, replied, missing (no reply 60 s after the last
send) and doubled (more than one non-supplement reply).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from services.seeding import seed_stores  # noqa: E402
from switch.contract.messages import reply_decoder  # noqa: E402
from switch.kafka.clients import make_consumer, make_producer  # noqa: E402
from switch.kafka.localbroker import LocalBroker  # noqa: E402
from switch.kafka.topics import ensure_topics  # noqa: E402
from switch.logs import configure  # noqa: E402
from switch.settings import Settings  # noqa: E402

PREFIX = "soak"
IMTS = ("M", "S") + ("I",) * 10  # a record's image slots, in the order they are filled
GRACE_S = 60.0  # after the last send, for the last replies


def say(text: str) -> None:
    print(f"soak {time.strftime('%H:%M:%S')}: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        out = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out += [int(x) for x in text]
        return out
    except OSError:
        return []


def label_argv(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid{pid}"
    words = [a.decode(errors="replace") for a in argv if a]
    if "run" in words:
        name = words[words.index("run") + 1]
        if "--instance" in words:
            name += "." + words[words.index("--instance") + 1]
        return name
    return words[-1] if words else f"pid{pid}"


class Watch:
    """Which processes to sample: fixed ones by name, plus the children of `switch up`."""

    def __init__(self) -> None:
        self.fixed: dict[str, int] = {}
        self.parent: int | None = None
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)  # name -> (t, MB)
        self.pids_seen: dict[str, set[int]] = defaultdict(set)

    def names(self) -> dict[str, int]:
        out = dict(self.fixed)
        if self.parent is not None:
            for child in children(self.parent):
                out[label(child)] = child
        # Their own children too: the router's image workers and multiprocessing's tracker.
        for name, pid in list(out.items()):
            if name == "broker" or pid == self.parent:
                continue
            workers = 0
            for grandchild in children(pid):
                if "resource_tracker" in label_argv(grandchild):
                    out[f"{name} tracker"] = grandchild
                else:
                    workers += 1
                    out[f"{name} worker {workers}"] = grandchild
        out["loadgen"] = os.getpid()
        return out

    def sample(self, t: float) -> None:
        for name, pid in self.names().items():
            mb = rss_mb(pid)
            if mb is not None:
                self.samples[name].append((t, mb))
                self.pids_seen[name].add(pid)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx * 3600.0


def robust_slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Theil-Sen slope (the median of every pairwise slope), per hour: one stall or one
    step (a backlog's high-water mark) does not tilt it as it tilts least squares."""
    slopes = sorted((y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points)
                    for x2, y2 in points[i + 1:] if x2 != x1)
    if not slopes:
        return None
    mid = len(slopes) // 2
    median = slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2
    return median * 3600.0


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


# --------------------------------------------------------------------------- traffic


class Traffic:
    def __init__(self, records: list[Any], eim_share: float, seed: int = 5) -> None:
        self.records = records
        self.eim_share = eim_share
        self.rng = random.Random(seed)
        self.eims = 0
        self.n = 0

    def photo(self, n: int) -> str:
        buf = io.BytesIO()
        Image.new("RGB", (120, 150), (n % 256, (n // 256) % 256, (n // 65536) % 256)).save(
            buf, "JPEG", quality=80)
        return base64.b64encode(buf.getvalue()).decode()

    def next(self) -> dict[str, str]:
        self.n += 1
        mid = f"soak-{self.n}"
        lap = self.eims // len(self.records)
        if self.rng.random() < self.eim_share and lap < len(IMTS):
            rec = self.records[self.eims % len(self.records)]
            self.eims += 1
            return {"mke": "EIM", "mid": mid, "ori": rec.ori, "lno": rec.lno, "imt": IMTS[lap],
                    "doi": "20250101", "image": self.photo(self.n)}
        rec = self.rng.choice(self.records)
        return {"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno}


class Tally:
    def __init__(self, interval_s: float, t0: float) -> None:
        self.interval_s = interval_s
        self.t0 = t0
        self.sent_at: dict[str, float] = {}  # mid -> scheduled send time (monotonic)
        self.replies: dict[str, int] = defaultdict(int)  # mid -> non-supplement replies
        self.supplements = 0
        self.statuses: dict[str, int] = defaultdict(int)
        self.latency: dict[int, list[float]] = defaultdict(list)  # interval -> ms

    def reply(self, mid: str, supplement: bool, status: str, now: float) -> None:
        if supplement:
            self.supplements += 1
            return
        self.replies[mid] += 1
        self.statuses[status] += 1
        sent = self.sent_at.get(mid)
        if sent is not None and self.replies[mid] == 1:
            self.latency[int((sent - self.t0) // self.interval_s)].append((now - sent) * 1000)


async def read_replies(settings: Settings, tally: Tally, ready: asyncio.Event) -> None:
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
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    try:
                        reply = reply_decoder.decode(r.value)
                    except msgspec.DecodeError:
                        continue
                    if reply.mid and reply.mid.startswith("soak-"):
                        tally.reply(reply.mid, reply.supplement, reply.status, now)
    finally:
        await consumer.stop()


async def wait_answering(settings: Settings, records: list[Any], check: Any) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for attempt in range(120):
            check()
            rec = records[attempt % len(records)]
            probe = {"mke": "QIM", "mid": f"probe-{attempt}", "ori": rec.ori, "lno": rec.lno}
            await producer.send_and_wait(settings.topics.requests, msgspec.json.encode(probe),
                                         key=probe["lno"].encode())
            await asyncio.sleep(1.0)
            if await _answered_probe(settings, probe["mid"]):
                say(f"switch answering after {attempt + 1} probes")
                return
        raise RuntimeError("the switch does not answer")
    finally:
        await producer.stop()


async def _answered_probe(settings: Settings, mid: str) -> bool:
    from switch.kafka.readall import read_to_end

    found = []

    def scan(rec: Any) -> None:
        if rec.value and mid.encode() in rec.value:
            found.append(1)

    await read_to_end(settings, settings.topics.replies, scan)
    return bool(found)


# --------------------------------------------------------------------------- run


async def soak(args: argparse.Namespace, settings: Settings, records: list[Any], watch: Watch,
               check: Any) -> dict[str, Any]:
    traffic = Traffic(records, args.eim_share)
    tally = Tally(args.interval, time.monotonic())
    await wait_answering(settings, records, check)
    ready = asyncio.Event()
    reader = asyncio.create_task(read_replies(settings, tally, ready))
    await ready.wait()
    producer = make_producer(settings, request_timeout_ms=120_000)
    await producer.start()
    failures = 0
    t0 = tally.t0 = time.monotonic()
    next_sample = t0
    next_report = t0 + args.interval
    i = 0
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample:
                watch.sample(now - t0)
                next_sample += args.sample
                check()
            if now >= next_report:
                k = int((next_report - t0) // args.interval) - 1
                lat = sorted(tally.latency.get(k, []))
                rss = {n: round(s[-1][1]) for n, s in watch.samples.items() if s}
                say(f"minute {k + 1}: sent {i}, replied {len(tally.replies)}, p50 "
                    f"{percentile(lat, 0.5) or 0:.0f} ms, p99 {percentile(lat, 0.99) or 0:.0f} ms; "
                    f"RSS MB {rss}")
                next_report += args.interval
            if now - t0 >= args.duration:
                break
            sched = t0 + i / args.rate
            if sched > now:
                await asyncio.sleep(min(sched - now, 0.05))
                continue
            req = traffic.next()
            tally.sent_at[req["mid"]] = sched
            try:
                await producer.send(settings.topics.requests, msgspec.json.encode(req),
                                    key=req["lno"].encode())
            except Exception as exc:  # counted; the soak goes on
                failures += 1
                say(f"send failed: {exc!r}")
            i += 1
        await producer.flush()
        sent_until = time.monotonic()
        say(f"sent {i} in {sent_until - t0:.0f} s; waiting up to {GRACE_S:.0f} s for the last replies")
        while time.monotonic() - sent_until < GRACE_S:
            if sum(1 for m in tally.sent_at if tally.replies.get(m)) >= len(tally.sent_at):
                break
            await asyncio.sleep(0.5)
        watch.sample(time.monotonic() - t0)
    finally:
        await producer.stop()
        reader.cancel()
        try:
            await reader
        except (asyncio.CancelledError, Exception):
            pass
    return summarise(args, watch, tally, failures, traffic.eims)


def summarise(args: argparse.Namespace, watch: Watch, tally: Tally, failures: int,
              eims: int) -> dict[str, Any]:
    warm = args.duration * 0.10
    procs = {}
    for name, pts in sorted(watch.samples.items()):
        after = [p for p in pts if p[0] >= warm]
        procs[name] = {
            "rss_start_mb": round(pts[0][1], 1), "rss_end_mb": round(pts[-1][1], 1),
            "rss_peak_mb": round(max(p[1] for p in pts), 1),
            "rss_after_warmup_mb": round(after[0][1], 1) if after else None,
            "slope_mb_per_h": (None if (s := slope_per_hour(after)) is None else round(s, 2)),
            "robust_slope_mb_per_h": (None if (r := robust_slope_per_hour(after)) is None
                                      else round(r, 2)),
            "pids": sorted(watch.pids_seen[name]), "samples": len(pts),
        }
    intervals = []
    for k in sorted(tally.latency):
        lat = sorted(tally.latency[k])
        intervals.append({"interval": k, "start_s": k * args.interval, "count": len(lat),
                          "p50_ms": round(percentile(lat, 0.5) or 0, 1),
                          "p99_ms": round(percentile(lat, 0.99) or 0, 1),
                          "max_ms": round(lat[-1], 1) if lat else None})
    full = [iv for iv in intervals if iv["count"] >= 0.5 * args.rate * args.interval]
    after = [iv for iv in full if iv["start_s"] >= warm]
    p99_slope = slope_per_hour([(iv["start_s"], iv["p99_ms"]) for iv in after])
    p99_robust = robust_slope_per_hour([(iv["start_s"], iv["p99_ms"]) for iv in after])
    q = max(1, len(after) // 4)
    sent = len(tally.sent_at)
    missing = [m for m in tally.sent_at if not tally.replies.get(m)]
    doubled = [m for m, n in tally.replies.items() if n > 1]
    return {
        "mode": args.mode, "duration_s": args.duration, "rate": args.rate,
        "eim_share": args.eim_share, "records": args.records, "eims_sent": eims,
        "processes": procs, "intervals": intervals,
        "p99_drift_ms_per_h": None if p99_slope is None else round(p99_slope, 1),
        "p99_robust_drift_ms_per_h": None if p99_robust is None else round(p99_robust, 1),
        "p99_median_ms": percentile(sorted(iv["p99_ms"] for iv in after), 0.5),
        "p99_first_quarter_ms": round(sum(iv["p99_ms"] for iv in after[:q]) / q, 1) if after else None,
        "p99_last_quarter_ms": round(sum(iv["p99_ms"] for iv in after[-q:]) / q, 1) if after else None,
        "sent": sent, "replied": sent - len(missing), "missing": len(missing),
        "doubled": len(doubled), "send_failures": failures, "supplements": tally.supplements,
        "statuses": dict(tally.statuses), "missing_examples": missing[:5],
        "rss_samples": {n: [(round(t, 1), round(mb, 1)) for t, mb in pts]
                        for n, pts in watch.samples.items()},
    }


def report(res: dict[str, Any]) -> str:
    lines = [
        f"## Soak ({res['mode']}, {res['duration_s'] / 60:.0f} min at {res['rate']:g}/s, "
        f"{res['eim_share'] * 100:.0f} % EIM, {res['records']} records)",
        "",
        "| process | RSS start MB | after warm-up | end | peak | slope after warm-up MB/h "
        "(least squares) | (Theil-Sen) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in res["processes"].items():
        lines.append(f"| {name} | {p['rss_start_mb']} | {p['rss_after_warmup_mb']} | {p['rss_end_mb']} | "
                     f"{p['rss_peak_mb']} | {p['slope_mb_per_h']} | {p['robust_slope_mb_per_h']} |")
    lines += ["", "| interval | from s | replies | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for iv in res["intervals"]:
        lines.append(f"| {iv['interval'] + 1} | {iv['start_s']:.0f} | {iv['count']} | {iv['p50_ms']} | "
                     f"{iv['p99_ms']} | {iv['max_ms']} |")
    lines += ["",
              f"p99 drift after warm-up: {res['p99_drift_ms_per_h']} ms/hour by least squares, "
              f"{res['p99_robust_drift_ms_per_h']} ms/hour by Theil-Sen (median p99 "
              f"{res['p99_median_ms']} ms; mean p99 first quarter {res['p99_first_quarter_ms']} ms, "
              f"last quarter {res['p99_last_quarter_ms']} ms)",
              f"requests sent {res['sent']}, replied {res['replied']}, missing {res['missing']}, "
              f"doubled {res['doubled']}, send failures {res['send_failures']}; supplements "
              f"{res['supplements']}; statuses {res['statuses']}"]
    return "\n".join(lines)


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as f:
        return subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=ROOT)


def stop_all(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then wait up to 40 s each (then kill)."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(40)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM or SIGINT (ignored by a background job's default) end the soak early, still
    # stopping every process and the broker it started.
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    home = Path(tempfile.mkdtemp(prefix="switch-soak-"))
    logs = home / "logs"
    logs.mkdir()
    say(f"home {home}; starting a local broker")
    broker = LocalBroker(home, preferred_port=None)
    state = broker.start(progress=False)
    watch = Watch()
    watch.fixed["broker"] = state.pid
    popen: dict[str, subprocess.Popen[bytes]] = {}
    try:
        settings = Settings.from_env({}, home=home, bootstrap_servers=state.bootstrap, topic_prefix=PREFIX)
        await ensure_topics(settings)
        env = dict(os.environ)
        env.update(SWITCH_HOME=str(home), KAFKA_BOOTSTRAP_SERVERS=state.bootstrap,
                   SWITCH_TOPIC_PREFIX=PREFIX, PYTHONPATH=str(ROOT), SWITCH_LOG_LEVEL="WARNING")
        py = sys.executable
        if args.mode == "up":
            argvs = {"up": [py, "-m", "switch.cli.main", "up", "--instances", "1", "--seed-count", "0"]}
            if "up" in args.trace:  # the parent (supervisor and web console) under tracemalloc
                argvs["up"][1:3] = [str(ROOT / "bench" / "tracewrap.py"), str(home / "trace-up"),
                                    str(args.trace_every), "-m", "switch.cli.main"]
        else:
            argvs = {c: [py, "-m", "switch.cli.main", "run", c]
                     for c in ("leads", "ncic", "correlator", "router")}
            for c in (c for c in args.trace if c != "up"):  # snapshots in <home>/trace-<c>
                argvs[c] = [py, str(ROOT / "bench" / "tracewrap.py"), str(home / f"trace-{c}"),
                            str(args.trace_every), "-m", "switch.cli.main", "run", c]
        # Seed before starting: `switch up` would seed its own default population otherwise.
        records = seed_stores(settings, args.records, 17)
        say(f"seeded {len(records)} records; starting the switch ({args.mode})")
        for name, argv in argvs.items():
            popen[name] = spawn(argv, env, logs / f"{name}.log")
        if args.mode == "up":
            watch.parent = popen["up"].pid
            watch.fixed["up (supervisor)"] = popen["up"].pid
        else:
            watch.fixed.update({n: p.pid for n, p in popen.items()})

        def check() -> None:
            for name, p in popen.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {p.returncode}; see {logs}")

        res = await soak(args, settings, records, watch, check)
        if args.mode == "up":
            restarts = (logs / "up.log").read_text(errors="replace").count("restarting")
            res["child_restarts"] = restarts
        res["home"] = str(home)
        return res
    finally:
        stop_all(popen.values())
        broker.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=3600.0, help="seconds of steady load (default 3600)")
    p.add_argument("--rate", type=float, default=60.0, help="requests a second (default 60)")
    p.add_argument("--mode", choices=("up", "run"), default="up",
                   help="up: `switch up --instances 1` (default); run: four `switch run` processes")
    p.add_argument("--eim-share", type=float, default=0.2, help="share of EIMs (default 0.2)")
    p.add_argument("--records", type=int, default=8000,
                   help="records to seed; each takes 12 EIMs at most (default 8000)")
    p.add_argument("--interval", type=float, default=60.0, help="latency interval, s (default 60)")
    p.add_argument("--sample", type=float, default=15.0, help="RSS sampling period, s (default 15)")
    p.add_argument("--trace", action="append", default=[], metavar="COMPONENT",
                   choices=("leads", "ncic", "correlator", "router", "up"),
                   help="run this component (--mode run) or the `switch up` parent (--mode up: "
                   "`--trace up`) under tracemalloc (bench/tracewrap.py), "
                   "a snapshot every --trace-every s in <home>/trace-COMPONENT (use --keep); "
                   "its RSS then includes tracemalloc's own")
    p.add_argument("--trace-every", type=float, default=300.0)
    p.add_argument("--json-out", metavar="FILE", help="write every figure (and sample) as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary home (logs, stores)")
    args = p.parse_args()
    configure("WARNING")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        res = asyncio.run(main_async(args))
    except asyncio.CancelledError:
        say("stopped early (signal); every process it started is stopped")
        sys.exit(1)
    print(report(res))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
