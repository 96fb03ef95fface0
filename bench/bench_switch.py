"""End-to-end benchmark: the switch against a pass-through baseline, in one run.

Run by hand (not part of the tests), on an otherwise idle machine if you can:

    .venv/bin/python bench/bench_switch.py [--quick] [--json-out FILE]

What it does, all on a fresh local broker in a temporary home (stopped at the end):
1. Seeds --records records and generates two traffic files with `switch gen`'s
   generator: QIM only, and EIM only with ~30 KB photos (30:3 KB; at 480 x 600 they
   are stored as they are). Dependencies between steps are dropped: a benchmark wants
   a pure open model.
2. Runs the switch exactly as the README starts it, `switch up` with default settings
   (four processes: LEADS, NCIC, a correlator and a router). Every phase starts on a
   freshly restarted broker, so each meets a cold JVM as a user does after `switch up`:
   it first measures the first seconds (QIM at 50/s right after the switch answers),
   then warms up (30 s at 100/s), and then, for each traffic type
   ramps the offered rate (constant arrivals, x2 per step, then
   two geometric bisections) until a step fails; the highest passing rate is the
   highest sustained throughput. A step passes when no reply is missing, the last
   reply arrives within --tail-limit seconds of the last send (replies kept up), p99 is
   under --p99-limit ms, and the load generator managed 95 % of the rate (else the
   generator, not the system, is the limit). Then it measures p50/p99/p99.9 at half
   that rate. Latency runs from each request's scheduled send time (schedule.py).
   Then an independent client (open_client.py: plain aiokafka, QIM by LNO) at half the
   QIM rate and at 5/s (a quiet switch: one request at a time), and, unless --no-scale,
   the QIM ramp again on `switch up --instances 2` (two of every stage).
3. Stops the switch, runs the baseline (bench/relay.py, four processes, the same hops
   and transactions, no work) through the same ramps, plus a latency run and the
   independent client at the switch's half rate so the p99s compare at the same load.
4. Prints throughput, latency, switch/baseline ratios, and CPU seconds and resident
   memory (RSS now, and peak) of every process: each switch component, each relay, the
   broker's JVM and the load generator (this process).

EIM entries are never repeated against the switch (each needs a free image slot; a
record holds 12), so --records bounds how many EIMs a run can send: 3000 records give
36,000. A whole run took 320-345 s on 2 cores; --quick is shorter.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.seeding import seed_stores  # noqa: E402
from switch.kafka.localbroker import LocalBroker  # noqa: E402
from switch.kafka.topics import ensure_topics  # noqa: E402
from switch.loadtest.gen import Generator, GenOptions, parse_mix  # noqa: E402
from switch.loadtest.replay import ReplayOptions, replay  # noqa: E402
from switch.loadtest.traffic import Header, Step, Traffic  # noqa: E402
from switch.logs import configure  # noqa: E402
from switch.settings import Settings  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import open_client  # noqa: E402

SWITCH_PREFIX = "bsw"
BASELINE_PREFIX = "bbl"
TICK = os.sysconf("SC_CLK_TCK")
GENERATOR_SHARE = 0.95  # a step counts only if the generator sent at 95 % of the rate or more
# Every phase starts on a freshly restarted broker (a cold JVM: its JIT has compiled
# nothing yet), measures its first seconds at FIRST_RATE (what a user who starts sending
# right after "ready" gets), then warms up for WARM_S at WARM_RATE before the ramps.
FIRST_RATE = 50.0
WARM_RATE = 100.0
WARM_S = 30.0


# --------------------------------------------------------------------------- processes


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _proc_mem_mb(pid: int) -> tuple[float, float]:
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


@dataclass
class Procs:
    """Processes whose CPU and memory are reported, by name."""

    pids: dict[str, int] = field(default_factory=dict)
    popen: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=ROOT)
        self.popen[name] = p
        self.pids[name] = p.pid

    def adopt_children(self, parent: str) -> None:
        """Report the children of `parent` (`switch up`'s components) each by its name."""
        pid = self.pids[parent]
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return
        for kid in kids:
            try:
                argv = Path(f"/proc/{kid}/cmdline").read_bytes().split(b"\0")
                env = Path(f"/proc/{kid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"run" in argv:
                comp = argv[argv.index(b"run") + 1].decode()
                inst = next((e.split(b"=", 1)[1].decode() for e in env
                             if e.startswith(b"SWITCH_INSTANCE=")), "0")
                self.pids[comp if inst == "0" else f"{comp}.{inst}"] = int(kid)

    def sample(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, pid in self.pids.items():
            try:
                cpu = _proc_cpu_s(pid)
                rss, hwm = _proc_mem_mb(pid)
            except (OSError, IndexError, ValueError):
                continue
            out[name] = {"cpu_s": cpu, "rss_mb": rss, "peak_rss_mb": hwm}
        ru = resource.getrusage(resource.RUSAGE_SELF)
        rss, hwm = _proc_mem_mb(os.getpid())
        out["loadgen"] = {"cpu_s": ru.ru_utime + ru.ru_stime, "rss_mb": rss, "peak_rss_mb": hwm}
        return out

    def check_alive(self) -> None:
        for name, p in self.popen.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with status {p.returncode}")

    def stop(self) -> None:
        for p in self.popen.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in self.popen.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.popen.clear()
        self.pids.clear()


def usage(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]],
          wall_s: float) -> dict[str, dict[str, float]]:
    out = {}
    for name, a in after.items():
        b = before.get(name, {"cpu_s": 0.0})
        cpu = a["cpu_s"] - b["cpu_s"]
        out[name] = {"cpu_s": round(cpu, 1), "cores": round(cpu / wall_s, 2) if wall_s else 0.0,
                     "rss_mb": round(a["rss_mb"], 1), "peak_rss_mb": round(a["peak_rss_mb"], 1)}
    return out


# --------------------------------------------------------------------------- traffic


@dataclass
class Source:
    """Steps handed out in order; QIM wraps around (queries change nothing), EIM must
    not (an entry repeated on a record is rejected ON_FILE) and says so if it does."""

    steps: list[Step]
    images: dict[str, str]
    wrap_ok: bool
    cursor: int = 0
    wrapped: bool = False

    laps: int = 0

    def take(self, n: int) -> Traffic:
        out: list[Step] = []
        while len(out) < n:
            if self.cursor >= len(self.steps):
                self.cursor = 0
                self.wrapped = True
                self.laps += 1
            chunk = self.steps[self.cursor:self.cursor + n - len(out)]
            self.cursor += len(chunk)
            if self.laps:  # another lap: new mids and ids, so none repeats within a run
                chunk = [msgspec.structs.replace(s, id=f"{s.id}L{self.laps}", request={
                    **(s.request or {}), "mid": f"{(s.request or {}).get('mid')}L{self.laps}"})
                    for s in chunk]
            out.extend(chunk)
        return Traffic(header=Header(), images=self.images, steps=out)


def make_source(records: list[Any], mke: str, count: int) -> Source:
    traffic = Generator(records, GenOptions(count=count, seed=7, mix=parse_mix(f"{mke}=1"),
                                            invalid_rate=0.0, image_kb=(30.0, 3.0))).run()
    for s in traffic.steps:
        s.depends_on = None  # a pure open model: nothing waits for anything
    return Source(traffic.steps, traffic.images, wrap_ok=(mke == "QIM"))


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Limits:
    step_s: float
    latency_s: float
    p99_ms: float
    tail_s: float
    start_rate: float
    max_rate: float
    refine: int


def verdict(s: dict[str, Any], limits: Limits) -> tuple[bool, str]:
    lat = s["latency_ms"].get("all", {"count": 0})
    if s["missing"]:
        return False, f"{s['missing']} replies missing"
    if not lat["count"]:
        return False, "no replies"
    if (s["send_rate"] or 0) < GENERATOR_SHARE * s["offered_rate"]:
        return False, f"the load generator could not send at the rate (sent {s['send_rate']}/s)"
    if s["tail_s"] is not None and s["tail_s"] > limits.tail_s:
        return False, f"replies fell behind (last reply {s['tail_s']:.2f} s after the last send)"
    if lat["p99"] > limits.p99_ms:
        return False, f"p99 {lat['p99']:.0f} ms over {limits.p99_ms:.0f} ms"
    return True, "ok"


def brief(s: dict[str, Any]) -> dict[str, Any]:
    lat = s["latency_ms"].get("all", {"count": 0})
    return {k: s[k] for k in ("offered_rate", "send_rate", "reply_rate", "sent", "replies", "missing",
                              "tail_s", "status")} | {
        "p50": lat.get("p50"), "p99": lat.get("p99"), "p99.9": lat.get("p99.9"), "max": lat.get("max"),
        "send_lag_p99": s["send_lag_ms"].get("p99"),
        "leg_p50": {k: v.get("p50") for k, v in s["leg_ms"].items()},
        "leg_p99": {k: v.get("p99") for k, v in s["leg_ms"].items()},
    }


async def run_at(settings: Settings, source: Source, rate: float, seconds: float) -> dict[str, Any]:
    traffic = source.take(max(1, round(rate * seconds)))
    return await replay(settings, traffic, ReplayOptions(rate=rate, arrivals="uniform", grace=15.0,
                                                         progress=False))


async def drain(settings: Settings, probe: Source) -> None:
    """Wait until the pipeline is empty again: probes answered quickly."""
    for _ in range(30):
        s = await run_at(settings, probe, 10.0, 0.6)
        lat = s["latency_ms"].get("all", {"count": 0})
        if not s["missing"] and lat["count"] and lat["max"] < 1000:
            return
        await asyncio.sleep(2.0)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def ramp(settings: Settings, source: Source, probe: Source, limits: Limits,
               label: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []

    async def attempt(rate: float) -> bool:
        s = await run_at(settings, source, rate, limits.step_s)
        ok, why = verdict(s, limits)
        row = brief(s) | {"rate": rate, "pass": ok, "why": why}
        steps.append(row)
        say(f"{label} {rate:7.0f}/s  {'pass' if ok else 'FAIL'}  "
            f"replies {s['replies']}/{s['expected_replies']}  p50 {row['p50']} p99 {row['p99']} ms"
            f"  tail {s['tail_s']} s  ({why})")
        if not ok:
            await drain(settings, probe)
        return ok

    good, bad = 0.0, None
    rate = limits.start_rate
    while rate <= limits.max_rate:
        if await attempt(rate):
            good = rate
            rate *= 2
        else:
            bad = rate
            break
    if bad is not None and good > 0:
        for _ in range(limits.refine):
            mid = round(math.sqrt(good * bad))
            if mid <= good or mid >= bad:
                break
            if await attempt(mid):
                good = mid
            else:
                bad = mid
    result: dict[str, Any] = {"max_rate": good, "first_failing_rate": bad, "ramp": steps,
                              "capped": bad is None}
    return result


async def open_client_at(settings: Settings, records: list[dict[str, str]] | None, rate: float,
                         limits: Limits, label: str) -> dict[str, Any]:
    """The independent client (bench/open_client.py: plain aiokafka, QIM by LNO, latency from
    the scheduled send) at `rate` for a latency run's length."""
    res: dict[str, Any] = await open_client.run(
        settings.kafka.bootstrap_servers, records or [], rate, limits.latency_s,
        settings.topics.requests, settings.topics.replies, drain_s=15.0,
        security=settings.kafka.client_kwargs())
    say(f"{label} (open client) at {rate:.0f}/s: delivered {res['delivered_rate']}/s, "
        f"p50 {res['p50_ms']} p99 {res['p99_ms']} ms, missing {res['missing']}")
    return res


async def latency_at(settings: Settings, source: Source, rate: float, limits: Limits,
                     label: str) -> dict[str, Any]:
    if rate <= 0:
        return {}
    s = await run_at(settings, source, rate, limits.latency_s)
    row = brief(s) | {"rate": rate}
    say(f"{label} latency at {rate:.0f}/s: p50 {row['p50']} p99 {row['p99']} p99.9 {row['p99.9']} ms"
        f" (replies {s['replies']}/{s['expected_replies']})")
    return row


def at(settings: Settings, bootstrap: str) -> Settings:
    return settings.with_overrides(kafka=dataclasses.replace(settings.kafka, bootstrap_servers=bootstrap))


def restart(broker: LocalBroker) -> Any:
    """A cold broker for the next phase, as after `switch broker start`: same data."""
    broker.stop()
    state = broker.start(progress=False)
    say(f"broker restarted (a cold JVM) on {state.bootstrap}")
    return state


async def warm_up(settings: Settings, probe: Source, procs: Procs, label: str) -> None:
    for attempt in range(40):
        procs.check_alive()
        s = await run_at(settings, probe, 10.0, 1.0)
        if not s["missing"] and s["replies"]:
            say(f"{label} answering (after {attempt + 1} probe rounds)")
            return
        await asyncio.sleep(1.0)
    raise RuntimeError(f"{label} does not answer; see the logs")


# --------------------------------------------------------------------------- phases


def child_env(settings: Settings, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SWITCH_HOME=str(settings.home), KAFKA_BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
               SWITCH_TOPIC_PREFIX=prefix, PYTHONPATH=str(ROOT))
    return env


async def phase(name: str, settings: Settings, argvs: dict[str, list[str]], sources: dict[str, Source],
                probe: Source, limits: Limits, logs: Path, broker_pid: int,
                extra_rates: dict[str, float] | None = None,
                records: list[dict[str, str]] | None = None,
                open_rates: dict[str, float] | None = None) -> dict[str, Any]:
    await ensure_topics(settings)
    procs = Procs()
    procs.pids["broker"] = broker_pid
    env = child_env(settings, settings.topics.prefix)
    out: dict[str, Any] = {}
    try:
        for proc_name, argv in argvs.items():
            procs.spawn(proc_name, argv, env, logs / f"{name}-{proc_name}.log")
        await warm_up(settings, probe, procs, name)
        for proc_name in argvs:
            procs.adopt_children(proc_name)
        before, t0 = procs.sample(), time.monotonic()
        first = next(iter(sources.values()))
        out["first_seconds"] = await latency_at(settings, first, FIRST_RATE, limits,
                                                f"{name} first seconds after start,")
        out["warm_up"] = await latency_at(settings, first, WARM_RATE,
                                          dataclasses.replace(limits, latency_s=WARM_S),
                                          f"{name} warm-up,")
        for traffic in sources:
            r = await ramp(settings, sources[traffic], probe, limits, f"{name} {traffic}")
            procs.check_alive()
            half = r["max_rate"] / 2
            u0, w0 = procs.sample(), time.monotonic()
            r["latency_at_half"] = await latency_at(settings, sources[traffic], half, limits,
                                                    f"{name} {traffic}")
            r["usage_at_half"] = usage(u0, procs.sample(), time.monotonic() - w0)
            if extra_rates and extra_rates.get(traffic):
                rate = extra_rates[traffic]
                r["latency_at_switch_half"] = await latency_at(settings, sources[traffic], rate, limits,
                                                               f"{name} {traffic} (switch's half rate)")
            r["eim_ran_out"] = sources[traffic].wrapped and not sources[traffic].wrap_ok
            out[traffic] = r
        if open_rates:
            out["open_client"] = {}
            for label, rate in open_rates.items():
                rate = rate or (out["QIM"]["max_rate"] / 2 if "QIM" in out else 0)
                if rate > 0:
                    out["open_client"][label] = await open_client_at(settings, records, rate,
                                                                     limits, f"{name} {label}")
        out["usage"] = usage(before, procs.sample(), time.monotonic() - t0)
        out["usage_wall_s"] = round(time.monotonic() - t0, 1)
    finally:
        procs.pids.pop("broker", None)
        procs.stop()
    return out


# --------------------------------------------------------------------------- report


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


def report(res: dict[str, Any]) -> str:
    sw, bl = res["switch"], res["baseline"]
    lines = [f"## {res['date']} - {res['machine']}", ""]
    lines.append("| traffic | system | max sustained req/s | first failing | p50 ms | p99 ms | p99.9 ms "
                 "| at req/s |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for traffic in res["traffic"]:
        for label, r, key in (("switch", sw[traffic], "latency_at_half"),
                              ("baseline", bl[traffic], "latency_at_half"),
                              ("baseline at the switch's half rate", bl[traffic], "latency_at_switch_half")):
            lat = r.get(key) or {}
            first = r["first_failing_rate"] if key == "latency_at_half" else None
            lines.append(f"| {traffic} | {label} | {r['max_rate']:.0f}{' (cap)' if r['capped'] else ''} | "
                         f"{'-' if first is None else f'{first:.0f}'} | "
                         f"{_ms(lat.get('p50'))} | {_ms(lat.get('p99'))} | {_ms(lat.get('p99.9'))} | "
                         f"{lat.get('rate', 0):.0f} |")
    lines += ["", f"Each phase on a freshly restarted broker: its first {FIRST_RATE:.0f} QIM/s "
              f"right after the switch answers, then {WARM_S:.0f} s at {WARM_RATE:.0f}/s "
              "(warm-up), then the ramps:", "",
              "| system | run | req/s | p50 ms | p99 ms | p99.9 ms | replies |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for label, ph in (("switch", sw), ("baseline", bl)):
        for run in ("first_seconds", "warm_up"):
            lat = ph.get(run) or {}
            if lat:
                lines.append(f"| {label} | {run.replace('_', ' ')} | {lat.get('rate', 0):.0f} | "
                             f"{_ms(lat.get('p50'))} | {_ms(lat.get('p99'))} | {_ms(lat.get('p99.9'))} | "
                             f"{lat.get('replies')} |")
    lines += ["", "| traffic | throughput switch/baseline | p99 switch/baseline (same rate) |"
              " switch p99 at half max |", "|---|---:|---:|---:|"]
    for traffic in res["traffic"]:
        ratio = res["ratios"][traffic]
        lines.append(f"| {traffic} | {ratio['throughput']} | {ratio['p99_same_rate']} | "
                     f"{_ms((sw[traffic].get('latency_at_half') or {}).get('p99'))} ms |")
    if res.get("switch2"):
        one, two = sw["QIM"]["max_rate"], res["switch2"]["QIM"]["max_rate"]
        lines += ["", f"Instances: QIM max sustained {one:.0f}/s with one of each stage, "
                  f"{two:.0f}/s with `--instances 2` ({two / one:.2f}x)." if one else ""]
    lines += ["", "The independent client (bench/open_client.py: plain aiokafka, QIM by LNO, latency "
              "from the scheduled send, 15 s drain):", "",
              "| system | run | offered/s | delivered/s | missing | p50 ms | p99 ms | max ms |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, ph in (("switch", sw), ("baseline", bl)):
        for run, r in (ph.get("open_client") or {}).items():
            lines.append(f"| {label} | {run} | {r['offered_rate']:.0f} | {r['delivered_rate']} | "
                         f"{r['missing']} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | {_ms(r['max_ms'])} |")
    lines += ["", "| process | phase | CPU s | avg cores | RSS MB (end) | peak RSS MB |",
              "|---|---|---:|---:|---:|---:|"]
    for label, ph in (("switch", sw), ("baseline", bl)):
        for proc, u in ph["usage"].items():
            lines.append(f"| {proc} | {label} ({ph['usage_wall_s']:.0f} s) | {u['cpu_s']} | {u['cores']} | "
                         f"{u['rss_mb']} | {u['peak_rss_mb']} |")
    lines += ["", "CPU per 1000 requests at half the max rate (all processes of the phase, broker "
              "and load generator included):", ""]
    for label, ph in (("switch", sw), ("baseline", bl)):
        for traffic in res["traffic"]:
            r = ph[traffic]
            lat = r.get("latency_at_half") or {}
            cpu = sum(u["cpu_s"] for u in r.get("usage_at_half", {}).values())
            n = lat.get("replies") or 0
            if n:
                lines.append(f"- {label} {traffic}: {cpu / n * 1000:.2f} CPU s per 1000 "
                             f"({cpu:.1f} s for {n} requests)")
    lines += _cpu_per_request(res, sw, bl)
    return "\n".join(lines) + "\n"


def _cpu_per_request(res: dict[str, Any], sw: dict[str, Any], bl: dict[str, Any]) -> list[str]:
    """Sizing: each process's CPU milliseconds per request at half the max rate."""
    cols = [(label, ph, traffic) for label, ph in (("switch", sw), ("baseline", bl))
            for traffic in res["traffic"] if (ph[traffic].get("latency_at_half") or {}).get("replies")]
    if not cols:
        return []
    procs = list(dict.fromkeys(p for _, ph, t in cols for p in ph[t].get("usage_at_half", {})))
    lines = ["", "CPU ms per request by process at half the max rate (for sizing a deployment):", "",
             "| process | " + " | ".join(f"{label} {t}" for label, _, t in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for proc in procs:
        cells = []
        for _, ph, t in cols:
            u = ph[t].get("usage_at_half", {}).get(proc)
            n = ph[t]["latency_at_half"]["replies"]
            cells.append(f"{u['cpu_s'] / n * 1000:.2f}" if u else "-")
        lines.append(f"| {proc} | " + " | ".join(cells) + " |")
    return lines


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    limits = Limits(step_s=args.step_seconds, latency_s=args.latency_seconds, p99_ms=args.p99_limit,
                    tail_s=args.tail_limit, start_rate=args.start_rate, max_rate=args.max_rate,
                    refine=args.refine)
    home = Path(tempfile.mkdtemp(prefix="switch-bench-"))
    logs = home / "logs"
    logs.mkdir()
    say(f"home {home}; starting a local broker")
    broker = LocalBroker(home, preferred_port=None)
    state = broker.start(progress=True)
    res: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
                   f"Python {platform.python_version()}, load average before "
                   f"{os.getloadavg()[0]:.2f}",
        "traffic": args.traffic,
        "limits": limits.__dict__,
    }
    try:
        sw = Settings.from_env({}, home=home, bootstrap_servers=state.bootstrap, topic_prefix=SWITCH_PREFIX)
        bl = Settings.from_env({}, home=home, bootstrap_servers=state.bootstrap, topic_prefix=BASELINE_PREFIX)
        records = seed_stores(sw, args.records, 11)
        t0 = time.monotonic()
        sources = {"QIM": make_source(records, "QIM", args.qim_steps)}
        if "EIM" in args.traffic:
            sources["EIM"] = make_source(records, "EIM", 12 * args.records)
        probe = make_source(records[:50], "QIM", 200)
        say(f"seeded {len(records)} records; traffic generated in {time.monotonic() - t0:.1f} s")
        selected = {t: sources[t] for t in args.traffic}
        py = sys.executable
        plain = [{"ori": r.ori, "lno": r.lno} for r in records]
        # The switch exactly as the README starts it: `switch up`, default settings.
        up = [py, "-m", "switch.cli.main", "up"]
        res["switch"] = await phase("switch", sw, {"up": up}, selected, probe, limits, logs,
                                    state.pid, records=plain, open_rates={"half": 0, "quiet": 5})
        halves = {t: res["switch"][t]["max_rate"] / 2 for t in args.traffic}
        if args.scale:
            state = restart(broker)
            sw = at(sw, state.bootstrap)
            res["switch2"] = await phase("switch x2", sw, {"up": [*up, "--instances", "2"]},
                                         {"QIM": sources["QIM"]}, probe, limits, logs, state.pid)
        state = restart(broker)
        bl = at(bl, state.bootstrap)
        relay = str(ROOT / "bench" / "relay.py")
        relay_argv = {f"relay-{s}": [py, relay, s] for s in ("leads", "ncic", "correlator", "router")}
        for s in selected.values():
            if not s.wrap_ok:
                s.cursor, s.wrapped = 0, False  # the baseline does not care about image slots
        res["baseline"] = await phase("baseline", bl, relay_argv, selected, probe, limits, logs, state.pid,
                                      extra_rates=halves, records=plain,
                                      open_rates={"at the switch's half": halves.get("QIM", 0),
                                                  "quiet": 5})
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    res["ratios"] = {}
    for t in args.traffic:
        s_r, b_r = res["switch"][t], res["baseline"][t]
        s_p99 = (s_r.get("latency_at_half") or {}).get("p99")
        b_p99 = (b_r.get("latency_at_switch_half") or {}).get("p99")
        res["ratios"][t] = {
            "throughput": round(s_r["max_rate"] / b_r["max_rate"], 2) if b_r["max_rate"] else None,
            "p99_same_rate": round(s_p99 / b_p99, 2) if s_p99 and b_p99 else None,
        }
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=3000, help="records to seed (12 EIM slots each)")
    p.add_argument("--qim-steps", type=int, default=30000, help="QIM steps generated (reused)")
    p.add_argument("--traffic", nargs="+", default=["QIM", "EIM"], choices=["QIM", "EIM"])
    p.add_argument("--step-seconds", type=float, default=6.0, help="length of a ramp step")
    p.add_argument("--latency-seconds", type=float, default=15.0, help="length of a latency run")
    p.add_argument("--start-rate", type=float, default=50.0)
    p.add_argument("--max-rate", type=float, default=25600.0)
    p.add_argument("--refine", type=int, default=2, help="bisection steps after the first failure")
    p.add_argument("--p99-limit", type=float, default=1000.0, help="ms; a step with a higher p99 fails")
    p.add_argument("--tail-limit", type=float, default=1.0,
                   help="s; a step whose last reply comes later than this after its last send fails")
    p.add_argument("--quick", action="store_true",
                   help="shorter steps (4 s), one bisection, 8 s latency runs")
    p.add_argument("--no-scale", dest="scale", action="store_false",
                   help="skip the QIM ramp of `switch up --instances 2` (how throughput grows "
                   "from one to two instances of each stage)")
    p.add_argument("--json-out", metavar="FILE", help="write every figure as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary home (logs, stores)")
    args = p.parse_args()
    if args.quick:
        args.step_seconds, args.latency_seconds, args.refine = 4.0, 8.0, 1
    configure("WARNING")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # metadata races of new topics
    started = time.monotonic()
    res = asyncio.run(main_async(args))
    res["wall_s"] = round(time.monotonic() - started)
    text = report(res)
    print(text)
    say(f"benchmark took {res['wall_s']} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
