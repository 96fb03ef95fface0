"""`switch web`: the operators' web console (switch/web/server.py)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiokafka.errors import KafkaError

from switch.cli.common import settings_from_args
from switch.cli.exits import NO_ANSWER, OK, USAGE, quiet_kafka_logs, unreachable
from switch.settings import Settings
from switch.web.server import DEFAULT_HOST, DEFAULT_PORT, WebOptions, serve

HELP = """\
Serve a web page that shows the switch live: each reply as it arrives (status, legs,
times, the operator's lines, a QIM's photos drawn), supplements linked to their first
reply, filters by ORI, MKE and status, counts by status and the rate over the last
minute; a search by cid, mid, LNO or IMN that shows a whole transaction (every audited
hop with its time, and its replies); and the dead letters with their reasons (never
their bytes).

It reads <prefix>.replies (from the end, or --from-beginning), <prefix>.audit and
<prefix>.dlq (the latest records of each partition, then live) read_committed, in no
consumer group: it commits nothing and takes nothing from anyone. It listens on
127.0.0.1 only unless --host says otherwise; the address is printed on start.
"""

EPILOG = """\
examples:
  switch web                        # http://127.0.0.1:8470/
  switch web --port 9000 --from-beginning

exit status: 0 on Ctrl-C; 2 on a bad option or a port in use; 3 when Kafka cannot be
reached.
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "web", parents=[common], help="serve the live web console (replies, search, dead letters)",
        description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--from-beginning", action="store_true",
                   help="replay the replies kept in the topic, not only new ones")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    quiet_kafka_logs()
    if not 0 <= args.port <= 65535:
        print(f"switch web: error: --port {args.port}: expected 0 to 65535", file=sys.stderr)
        return USAGE
    options = WebOptions(host=args.host, port=args.port, from_beginning=args.from_beginning)
    return asyncio.run(_run(settings_from_args(args), options))


async def _run(settings: Settings, options: WebOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(settings, options, stop)
    except KafkaError as exc:
        print(f"switch web: error: {unreachable(settings, exc)}", file=sys.stderr)
        return NO_ANSWER
    except OSError as exc:  # the port is taken, or the address is not ours
        print(f"switch web: error: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return USAGE
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return OK
