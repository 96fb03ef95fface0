"""`switch scenario run|check FILE...`: send/expect scenario files against a running switch."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Run scenario files (TOML) against a running switch: each step sends a request (the text
form or a JSON table, with an image file or a generated photo) and says what its reply
must hold: status, each leg's status and code, fields echoed, present or absent, text
that must match, a latency bound; values captured from one reply (an IMN, a cid) are
used in later steps; control steps (`ctl = { system = "NCIC", mode = "down_forward" }`)
and waits for supplements. One ticket is printed per step; the exit status is 0 only if
every step passed (1 if one failed, 2 if a file could not be read). Independent
scenarios run concurrently, on records of their own; scenarios with control steps run
one at a time, after them.

The records come from <home>/records.jsonl, written by `switch up` (or --records FILE).
The file format is in docs/SCENARIOS.md; examples are in scenarios/.

examples:
  switch up &                                 # a switch to talk to
  switch scenario run scenarios/*.toml --junit scenario-results.xml
  switch scenario check my-scenario.toml      # read and check files, send nothing
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("scenario", parents=[common], help="run send/expect scenario files",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("run", "check"), help="run the scenarios, or only check the files")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (TOML)")
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML (for CI systems)")
    p.add_argument("--records", metavar="FILE",
                   help="records to pick from, JSON lines (default: <home>/records.jsonl)")
    p.add_argument("--timeout", metavar="S", type=float,
                   help="how long a step waits for its reply (default: 3 x the deadline, >= 30 s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from switch.scenario.model import ScenarioError, load

    scenarios = []
    for f in args.files:
        try:
            scenarios.append(load(Path(f)))
        except ScenarioError as exc:
            print(f"switch scenario: error: {exc}", file=sys.stderr)
            return 2
    if args.action == "check":
        for s in scenarios:
            print(f"{s.path}: ok, {len(s.step)} steps ({s.name})")
        return 0
    from switch.cli.common import settings_from_args
    from switch.contract.internal import RecordEntry
    from switch.errors import ConfigError
    from switch.scenario.report import junit_xml, summary

    settings = settings_from_args(args)
    path = Path(args.records) if args.records else settings.home / "records.jsonl"
    if not path.exists():
        raise ConfigError(f"{path} not found: start the switch with `switch up` first "
                          "(it writes the records it seeded there), or give --records FILE")
    records = [RecordEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    results = asyncio.run(_run(settings, records, scenarios, args.timeout))
    for r in results:
        if r.error:
            print(f"[FAIL] {r.name}: could not run: {r.error}")
    print(summary(results))
    if args.junit:
        Path(args.junit).write_bytes(junit_xml(results))
    return 0 if all(r.ok for r in results) else 1


async def _run(settings: Any, records: list[Any], scenarios: list[Any], timeout: float | None) -> list[Any]:
    from switch.scenario.report import ticket
    from switch.scenario.runner import Runner

    def show(step: Any) -> None:
        print(ticket(step), flush=True)

    return await Runner(settings, records, on_step=show, timeout_s=timeout).run(scenarios)
