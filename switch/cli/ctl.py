"""`switch ctl`: publish a control command to the simulated LEADS or NCIC service."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from typing import Any, TextIO

import msgspec
from aiokafka.errors import KafkaError

from switch.cli.common import settings_from_args
from switch.cli.exits import NO_ANSWER, OK, USAGE, UsageError, quiet_kafka_logs, unreachable
from switch.console.topics_check import missing_message, missing_topics
from switch.contract.messages import SYSTEMS, Control, Latency, control_decoder
from switch.kafka.clients import make_producer
from switch.settings import Settings

MODES = ("up", "down_forward", "down_drop")

HELP = """\
Publish a control command (CONTRACT.md, "Control") to the control topic
(<prefix>.control), keyed by the system name; the running LEADS or NCIC service applies
it at once and keeps it across restarts (the topic is compacted: the last command per
system wins). Only the fields given change; the others stay as they were.

MODE is one of:
  up            the system answers normally
  down_forward  the system stops answering; entries (EIM, MII, XIM) wait and are applied
                when it returns: replies say QUEUED (status PENDING), then a supplement
  down_drop     the system answers everything UNAVAILABLE at once

--p50/--p99 set the simulated service time (a log-normal fitted to the two
percentiles, in milliseconds); --no-latency answers at once again. --reject-rate R
makes the system reject a share R (0 to 1) of requests with SIMULATED_REJECT.
"""

EPILOG = """\
examples:
  switch ctl NCIC down_forward        # NCIC stops answering; entries are queued
  switch ctl NCIC up                  # NCIC returns; queued entries are applied
  switch ctl LEADS --p50 20 --p99 200
  switch ctl NCIC down_drop          # NCIC answers UNAVAILABLE at once
  switch ctl LEADS up --no-latency --reject-rate 0.05

exit status: 0 sent; 2 bad arguments; 3 Kafka unreachable or the control topic missing
(start the switch first: `switch up`).
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ctl", parents=[common], help="publish a control command (mode, latency, reject rate)",
        description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("system", metavar="SYSTEM", help="LEADS or NCIC")
    p.add_argument("mode", metavar="MODE", nargs="?", help="up, down_forward or down_drop")
    p.add_argument("--p50", type=float, metavar="MS", help="median service time, milliseconds")
    p.add_argument("--p99", type=float, metavar="MS", help="99th percentile service time (>= p50)")
    p.add_argument("--no-latency", action="store_true", help="answer at once (p50 = p99 = 0)")
    p.add_argument("--reject-rate", type=float, metavar="R",
                   help="share of requests rejected with SIMULATED_REJECT, 0 to 1")
    p.add_argument("--json", action="store_true", help="print only the JSON sent")
    p.set_defaults(func=run)


def build_control(
    system: str,
    mode: str | None = None,
    *,
    p50: float | None = None,
    p99: float | None = None,
    no_latency: bool = False,
    reject_rate: float | None = None,
) -> Control:
    """A checked Control from command-line values; raises UsageError naming the problem."""
    sys_name = system.strip().upper()
    if sys_name not in SYSTEMS:
        raise UsageError(f"SYSTEM {system!r}: expected one of {', '.join(SYSTEMS)}")
    mode_name = None
    if mode is not None:
        mode_name = mode.strip().lower().replace("-", "_")
        if mode_name not in MODES:
            raise UsageError(f"MODE {mode!r}: expected one of {', '.join(MODES)}")
    latency = None
    if no_latency:
        if p50 is not None or p99 is not None:
            raise UsageError("--no-latency cannot go with --p50/--p99")
        latency = Latency(p50=0.0, p99=0.0)
    elif p50 is not None or p99 is not None:
        if p50 is None or p99 is None:
            raise UsageError("--p50 and --p99 go together (milliseconds, p50 <= p99)")
        for name, value in (("--p50", p50), ("--p99", p99)):
            if not math.isfinite(value) or value < 0:
                raise UsageError(f"{name} {value:g}: milliseconds, 0 or more")
        if p99 < p50:
            raise UsageError(f"--p99 {p99:g} is below --p50 {p50:g}")
        latency = Latency(p50=p50, p99=p99)
    if reject_rate is not None and not (math.isfinite(reject_rate) and 0.0 <= reject_rate <= 1.0):
        raise UsageError(f"--reject-rate {reject_rate:g}: a share between 0 and 1")
    if mode_name is None and latency is None and reject_rate is None:
        raise UsageError("nothing to send: give a MODE, --p50/--p99, --no-latency or --reject-rate")
    return Control(system=sys_name, mode=mode_name, latency_ms=latency,  # type: ignore[arg-type]
                   reject_rate=reject_rate)


def encode_control(control: Control) -> bytes:
    """The wire JSON, without the fields left unset (the contract calls them optional)."""
    d: dict[str, Any] = {k: v for k, v in msgspec.to_builtins(control).items() if v is not None}
    raw = msgspec.json.encode(d)
    assert control_decoder.decode(raw) == control  # the services read back what we meant
    return raw


def describe(control: Control) -> str:
    parts = [f"mode {control.mode}" if control.mode else ""]
    if control.latency_ms is not None:
        lat = control.latency_ms
        parts.append("no simulated latency" if lat.p99 == 0
                     else f"latency p50 {lat.p50:g} ms p99 {lat.p99:g} ms")
    if control.reject_rate is not None:
        parts.append(f"reject rate {control.reject_rate:g}")
    return ", ".join(p for p in parts if p)


def run(args: argparse.Namespace) -> int:
    quiet_kafka_logs()
    return asyncio.run(execute(args, out=sys.stdout, err=sys.stderr))


async def execute(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    try:
        control = build_control(args.system, args.mode, p50=args.p50, p99=args.p99,
                                no_latency=args.no_latency, reject_rate=args.reject_rate)
    except UsageError as exc:
        err.write(f"switch ctl: error: {exc}\n")
        return USAGE
    settings = settings_from_args(args)
    value = encode_control(control)
    try:
        missing = await missing_topics(settings, settings.topics.control)
        if missing:
            err.write(f"switch ctl: error: {missing_message(settings, missing)}\n")
            return NO_ANSWER
        await publish(settings, control.system, value)
    except (KafkaError, OSError) as exc:
        err.write(f"switch ctl: error: {unreachable(settings, exc)}\n")
        return NO_ANSWER
    if args.json:
        out.write(value.decode() + "\n")
    else:
        out.write(f"switch ctl: {control.system}: {describe(control)}; sent to "
                  f"{settings.topics.control} key {control.system}: {value.decode()}\n")
    return OK


async def publish(settings: Settings, key: str, value: bytes) -> None:
    producer = make_producer(settings)
    try:
        await producer.start()
        await producer.send_and_wait(settings.topics.control, value, key=key.encode())
    finally:
        await producer.stop()
