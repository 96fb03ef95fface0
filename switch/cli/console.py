"""`switch console`: tail the replies topic, rendered the way the operator reads it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from aiokafka.errors import KafkaError

from switch.cli.common import settings_from_args
from switch.cli.exits import NO_ANSWER, OK, USAGE, UsageError, quiet_kafka_logs, unreachable
from switch.console.filters import FilterError, ReplyFilter
from switch.console.tail import Console, TailOptions, tail
from switch.settings import Settings
from switch.terminal import use_color

HELP = """\
Tail the replies topic (<prefix>.replies) live and show each reply as the operator
reads it: a header line (time, status, MKE, ORI, mid, cid), the systems' own lines,
then one row per leg (status, reject code, IMN, milliseconds) and, for a QIM, one row
per image. A supplement (the later reply that completes a PENDING one) is shown linked
to the reply it completes: "SUPPLEMENT to <mid> (cid ...) - was PENDING, now COMPLETE".

The console joins no consumer group and commits nothing: any number can watch at once.
It starts at the end of the topic (only new replies) unless --from-beginning, and reads
read_committed. Colour is used when standard output is a terminal (not with --no-color,
NO_COLOR set, or TERM=dumb). A count of what was shown, by status, goes to standard
error every --footer-every replies and on exit. Ctrl-C stops it (exit status 0).
Memory stays flat however long it runs.

Filters take several values, repeated or comma-separated (--status PENDING,PARTIAL);
a reply must match every filter given.
"""

EPILOG = """\
examples:
  switch console                                   # every new reply, as it comes
  switch console --ori IL0160000 --status REJECTED,PARTIAL
  switch console --mke QIM --save-images photos/   # writes photos/<IMN>-<SYSTEM>.jpg
  switch console --from-beginning --json | jq -r .status
  switch console --from-beginning --count 10 --no-color

exit status: 0 on Ctrl-C or after --count replies; 2 on a bad option; 3 when Kafka
cannot be reached (KAFKA_BOOTSTRAP_SERVERS, `switch broker start`).
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "console", parents=[common], help="tail the replies topic, rendered for the operator",
        description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f = p.add_argument_group("filters")
    f.add_argument("--ori", action="append", metavar="ORI",
                   help="only replies to this sending agency, e.g. IL0160000")
    f.add_argument("--mke", action="append", metavar="MKE",
                   help="only these message keys: EIM, MII, XIM, QIM")
    f.add_argument("--status", action="append", metavar="STATUS",
                   help="only these overall statuses: COMPLETE, PARTIAL, PENDING, REJECTED")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at the oldest reply kept in the topic, not at its end")
    p.add_argument("--save-images", metavar="DIR", type=Path,
                   help="write each image a QIM reply carries to DIR/<IMN>-<SYSTEM>.jpg")
    p.add_argument("--json", action="store_true",
                   help="print each reply as one line of JSON (the contract's form), for piping")
    p.add_argument("--no-color", action="store_true", help="never use colour")
    p.add_argument("--footer-every", type=int, default=100, metavar="N",
                   help="print the counts to standard error every N shown replies "
                        "(default 100; 0: only on exit)")
    p.add_argument("--count", type=int, metavar="N", help="exit after showing N replies")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace, *, color: bool) -> TailOptions:
    """Checked options; raises UsageError with the line to show."""
    try:
        flt = ReplyFilter.parse(ori=args.ori, mke=args.mke, status=args.status)
    except FilterError as exc:
        raise UsageError(str(exc)) from None
    if args.footer_every < 0:
        raise UsageError("--footer-every must be 0 or more")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be 1 or more")
    save = args.save_images
    if save is not None:
        try:
            save.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--save-images {save}: cannot create the folder: {exc.strerror}") from None
        if not os.access(save, os.W_OK):
            raise UsageError(f"--save-images {save}: the folder is not writable")
    return TailOptions(filter=flt, from_beginning=args.from_beginning, json=args.json, color=color,
                       save_images=save, footer_every=args.footer_every)


def run(args: argparse.Namespace) -> int:
    quiet_kafka_logs()
    try:
        options = options_from_args(args, color=use_color(args.no_color, sys.stdout))
    except UsageError as exc:
        print(f"switch console: error: {exc}", file=sys.stderr)
        return USAGE
    settings = settings_from_args(args)
    console = Console(options, sys.stdout, sys.stderr)
    try:
        return asyncio.run(_run(settings, console, args.count))
    except BrokenPipeError:  # `switch console | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK


async def _run(settings: Settings, console: Console, count: int | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"switch console: {settings.replies_topic} on {settings.kafka.bootstrap_servers}, "
          f"{console.options.filter.describe()}; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        await tail(settings, console, stop=stop, max_count=count)
    except BrokenPipeError:
        console.write_footer()
        raise
    except (KafkaError, OSError) as exc:
        print(f"switch console: error: {unreachable(settings, exc)}", file=sys.stderr)
        if console.counts.read:
            console.write_footer()
        return NO_ANSWER
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    console.write_footer()
    return OK
