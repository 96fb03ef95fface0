"""`switch demo`: the bulletin's steps against a switch it starts itself (or a running one)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from switch.cli.app import COMPONENTS, prepare, run_components
from switch.cli.common import settings_from_args
from switch.contract.internal import RecordEntry
from switch.demo import Demo
from switch.kafka.localbroker import LocalBroker
from switch.logs import configure
from switch.settings import Settings
from switch.terminal import use_color

HELP = """\
Walk the state bulletin for one sex-offender and one VOAY/murderer record: query, enter
the photo (EIM), re-query (photo on both LEADS and NCIC, or on LEADS alone), modify (MII),
cancel (XIM), enter again; then NCIC out of service (down_forward): an entry is PENDING
with NCIC QUEUED until NCIC returns and a supplement completes it. Each step prints its
request in the text form and the switch's reply. Exit status 0 only if every step had
the expected outcome.

By default everything runs in a fresh temporary home: a local Kafka broker, the topics,
seeded records and the whole switch, all removed afterwards. With --attach it runs
against a switch already running (`switch up`), using <home>/records.jsonl.
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", parents=[common], help="walk the bulletin's steps end to end",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attach", action="store_true",
                   help="use a running switch (KAFKA_BOOTSTRAP_SERVERS / the home's broker)")
    p.add_argument("--keep", action="store_true", help="keep the temporary home for inspection")
    p.add_argument("--deadline", type=float, default=3.0, metavar="S",
                   help="transaction deadline of the switch the demo starts (default 3 s)")
    p.add_argument("--no-color", action="store_true", help="plain output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    color = use_color(args.no_color, sys.stdout)
    if args.attach:
        settings = settings_from_args(args)
        records = _read_records(settings.home / "records.jsonl")
        ok, steps = asyncio.run(_walk(settings, records, color))
        return _finish(ok, steps, t0)
    configure("WARNING")
    home = Path(tempfile.mkdtemp(prefix="switch-demo-"))
    print(f"switch demo: starting a local Kafka broker and the switch in {home} ...", file=sys.stderr)
    broker = LocalBroker(home, preferred_port=None)
    try:
        state = broker.start()
        print(f"switch demo: broker ready at {state.bootstrap} after {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SWITCH_"))}
        # The broker's own security: its credentials folder, or plaintext (--insecure).
        if broker.secure:
            env["SWITCH_SECURITY_DIR"] = str(broker.security_dir)
        else:
            env["SWITCH_INSECURE"] = "1"
        settings = Settings.from_env(env, home=home, bootstrap_servers=state.bootstrap)
        settings = settings.with_overrides(deadline_s=args.deadline)
        ok, steps = asyncio.run(_self_contained(settings, color))
    finally:
        broker.stop()
        if args.keep:
            print(f"switch demo: home kept at {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    return _finish(ok, steps, t0)


def _finish(ok: bool, steps: tuple[int, list[str]], t0: float) -> int:
    count, failed = steps
    secs = time.monotonic() - t0
    if ok:
        print(f"\nswitch demo: all {count} steps had the expected outcome ({secs:.1f} s)")
        return 0
    print(f"\nswitch demo: {len(failed)} of {count} steps went wrong ({secs:.1f} s):", file=sys.stderr)
    for f in failed:
        print(f"  {f}", file=sys.stderr)
    return 1


async def _self_contained(
    settings: Settings, color: bool
) -> tuple[bool, tuple[int, list[str]]]:
    await prepare(settings, seed_count=200, seed=2023)
    records = _read_records(settings.home / "records.jsonl")
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(run_components(settings, COMPONENTS, stop, on_ready=ready.set))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if not ready.is_set():
            await task
            raise RuntimeError("the switch stopped before it was ready")
        print("switch demo: switch ready; walking the bulletin", file=sys.stderr)
        return await _walk(settings, records, color)
    finally:
        waiter.cancel()
        stop.set()
        await asyncio.wait_for(task, 60)


async def _walk(
    settings: Settings, records: list[RecordEntry], color: bool
) -> tuple[bool, tuple[int, list[str]]]:
    demo = Demo(settings, records, color=color)
    ok = await demo.run()
    return ok, (demo.steps, demo.failed)


def _read_records(path: Path) -> list[RecordEntry]:
    from switch.errors import ConfigError

    if not path.exists():
        raise ConfigError(f"{path} not found: start the switch with `switch up` first, "
                          "or run `switch demo` without --attach")
    return [RecordEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
