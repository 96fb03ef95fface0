"""`switch capture`: record live requests, with their send times, as a traffic file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from switch.cli.common import settings_from_args

HELP = """\
Record the requests on the requests topic (from now on, or --from-beginning) with their
Kafka timestamps, until --duration seconds, --count requests, or Ctrl-C, and write them
as a traffic file. `switch replay FILE --original-timing [--speed F]` plays it back at
the recorded pace. Replies are read alongside, so a captured modify, cancel or query of
an IMN that a captured EIM returned is replayed against the IMN the replay's own EIM
gets. Images are stored once each.
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("capture", parents=[common], help="record live requests to a traffic file",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="FILE", help="the traffic file to write")
    how_long = p.add_mutually_exclusive_group()
    how_long.add_argument("--duration", type=float, metavar="D", help="seconds to record")
    how_long.add_argument("--count", type=int, metavar="N", help="requests to record")
    p.add_argument("--from-beginning", action="store_true",
                   help="read the topics from their beginning instead of from now")
    p.add_argument("--reply-grace", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the replies of captured EIMs at the end "
                        "(default %(default)s)")
    p.add_argument("--no-link", action="store_true",
                   help="keep captured IMNs as they are (do not read replies)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from switch.cli.app import install_stop_handlers
    from switch.loadtest.capture import CaptureOptions, capture, to_traffic
    from switch.loadtest.traffic import write_traffic

    if args.count is not None and args.count < 1:
        print("switch capture: error: --count must be at least 1", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    options = CaptureOptions(duration=args.duration, count=args.count,
                             from_beginning=args.from_beginning, reply_grace=args.reply_grace,
                             link=not args.no_link)

    async def main() -> Any:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        ready = asyncio.Event()
        task = asyncio.create_task(capture(settings, options, stop=stop, ready=ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if ready.is_set():
            until = (f"{args.duration:g} s" if args.duration else
                     f"{args.count} requests" if args.count else "Ctrl-C")
            print(f"switch capture: recording {settings.topics.requests} until {until}",
                  file=sys.stderr, flush=True)
        return await task

    got = asyncio.run(main())
    traffic, counts = to_traffic(got, topic=settings.topics.requests, link=not args.no_link)
    try:
        write_traffic(args.out, traffic)
    except OSError as exc:
        print(f"switch capture: error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    span = traffic.steps[-1].t if traffic.steps and traffic.steps[-1].t else 0.0
    print(f"switch capture: {len(traffic.steps)} requests over {span:.1f} s "
          f"({counts['raw']} unreadable kept raw, {counts['images']} distinct images, "
          f"{counts['linked']} IMNs linked to captured EIMs) -> {args.out}", file=sys.stderr)
    return 0
