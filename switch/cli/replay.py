"""`switch replay`: send a traffic file at a rate, report throughput and latency."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from switch.cli.common import run_async, settings_from_args

HELP = """\
Replay a traffic file (from `switch gen` or `switch capture`) against a running switch,
open model: each request is sent at its scheduled time whatever the replies are doing,
and its latency runs from that scheduled time to its reply (coordinated omission
corrected). A request that depends on an earlier one (a modify of the image an EIM
entered, the next step of an operator's session) is sent once that reply is in; if it
never comes, the request is skipped and counted. Every mid gets a per-run suffix, so a
file can be replayed again and again.

Reports HDR latency percentiles overall, per MKE and per leg (the legs' `ms`), counts
by status, throughput, and replies still missing after --grace seconds. Progress on
stderr; the summary on stdout (--json: one JSON object). Exit status 1 if any reply is
missing, 2 on bad input.
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("replay", parents=[common], help="replay a traffic file at a rate",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="the traffic file")
    p.add_argument("--rate", type=float, metavar="R", help="requests per second")
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument("--duration", type=float, metavar="D",
                          help="seconds of traffic (rate x D requests); default: the whole file")
    how_many.add_argument("--count", type=int, metavar="N", help="number of requests")
    p.add_argument("--grace", type=float, default=15.0, metavar="S",
                   help="seconds to wait for replies after the last send, and for a parent's "
                        "reply after a dependent step's slot (default %(default)s)")
    p.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson",
                   help="gaps between sends at --rate: exponential (Poisson process, "
                        "the default) or constant")
    p.add_argument("--seed", type=int, default=1, metavar="S",
                   help="seed of the Poisson schedule (default 1)")
    p.add_argument("--original-timing", action="store_true",
                   help="send at the captured times (`switch capture` files) instead of --rate")
    p.add_argument("--speed", type=float, default=1.0, metavar="F",
                   help="with --original-timing: play F times faster (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from switch.loadtest.replay import ReplayOptions, replay
    from switch.loadtest.schedule import ScheduleError
    from switch.loadtest.stats import format_summary
    from switch.loadtest.traffic import TrafficError, read_traffic
    from switch.logs import configure

    if args.rate is None and not args.original_timing:
        print("switch replay: error: give --rate R or --original-timing", file=sys.stderr)
        return 2
    configure("WARNING")
    settings = settings_from_args(args)
    try:
        traffic = read_traffic(args.file)
        options = ReplayOptions(
            rate=args.rate, count=args.count, duration=args.duration, grace=args.grace,
            arrivals=args.arrivals, seed=args.seed, original_timing=args.original_timing,
            speed=args.speed, progress=not args.quiet,
        )
        summary = run_async(replay(settings, traffic, options, name=args.file))
    except (TrafficError, ScheduleError) as exc:
        print(f"switch replay: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        sys.stdout.write(format_summary(summary))
    if summary["planned"] < (args.count or 0):
        print(f"switch replay: note: the file has {summary['planned']} requests, fewer than "
              f"--count {args.count}", file=sys.stderr)
    return 1 if summary["missing"] else 0
