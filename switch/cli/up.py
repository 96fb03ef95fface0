"""`switch up`: the whole switch (router, correlator, LEADS, NCIC) in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from switch.cli.app import COMPONENTS, install_stop_handlers, prepare, run_components
from switch.cli.common import add_metrics_port, settings_from_args
from switch.errors import ConfigError
from switch.kafka.localbroker import LocalBroker
from switch.logs import configure
from switch.settings import Settings
from switch.supervisor import supervise_children
from switch.web.server import DEFAULT_PORT, WebConsole, WebOptions

HELP = """\
Run the whole switch in the foreground until Ctrl-C: router, correlator and the
simulated LEADS and NCIC services. Uses KAFKA_BOOTSTRAP_SERVERS, or starts the local
broker of SWITCH_HOME when none is set (and stops it again on exit). Creates the
topics, and seeds --seed-count synthetic records (written to <home>/records.jsonl) if
the stores are empty. Serves the web console (`switch web`) on 127.0.0.1. Prints one
line when ready, with the console's address.
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", parents=[common], help="run the whole switch until Ctrl-C",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed-count", type=int, default=1000, metavar="N",
                   help="records to seed when the stores are empty (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic population")
    p.add_argument("--instances", type=int, default=1, metavar="N",
                   help="run N of each stage (router, correlator, LEADS, NCIC) as separate "
                   "child processes, restarted when they die, their log lines on stderr "
                   "prefixed [component.instance]; the instances of a stage share its "
                   "partitions (default 1: four processes, so every core is used)")
    p.add_argument("--web-port", type=int, default=DEFAULT_PORT, metavar="PORT",
                   help=f"serve the web console (`switch web`) on 127.0.0.1:PORT (default "
                   f"{DEFAULT_PORT}; 0: any free port); its address is in the ready line")
    p.add_argument("--no-web", action="store_true", help="do not serve the web console")
    p.add_argument("--in-process", action="store_true",
                   help="run all four components in this one process instead (one core; "
                   "the least memory; easiest to debug)")
    add_metrics_port(p, "; one for each child: PORT + its index (LEADS PORT, NCIC PORT+1, "
                     "correlator i PORT+2+2i, router i PORT+3+2i); with --in-process one port "
                     "for all four")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure(settings.log_level)
    if args.instances < 1:
        raise ConfigError(f"--instances {args.instances}: at least 1")
    instances = None if args.in_process else args.instances
    if not 0 <= args.web_port <= 65535:
        raise ConfigError(f"--web-port {args.web_port}: expected 0 to 65535")
    web_port = None if args.no_web else args.web_port
    broker = None
    if not (args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")):
        broker = LocalBroker(settings.home)
        started_here = broker.status() is None
        state = broker.start()
        settings = Settings.from_env(home=settings.home, bootstrap_servers=state.bootstrap,
                                     topic_prefix=settings.topics.prefix,
                                     metrics_port=settings.metrics_port or 0)
        if not started_here:
            broker = None  # someone else's: leave it running
    try:
        asyncio.run(_up(settings, args.seed_count, args.seed, instances, web_port))
    finally:
        if broker is not None:
            broker.stop()
    return 0


async def _up(settings: Settings, seed_count: int, seed: int, instances: int | None,
              web_port: int | None = None) -> None:
    t0 = time.monotonic()
    stop = asyncio.Event()
    install_stop_handlers(stop)
    await prepare(settings, seed_count=seed_count, seed=seed)
    web = await _start_web(settings, web_port)

    def ready() -> None:
        print(f"switch up: ready in {time.monotonic() - t0:.1f} s on "
              f"{settings.kafka.bootstrap_servers}; requests to {settings.topics.requests}, "
              f"replies on {settings.topics.replies}; records in {settings.home / 'records.jsonl'}; "
              + (f"web console on {web.url}; " if web else "")
              + metrics_note(settings, instances) + "Ctrl-C to stop", file=sys.stderr, flush=True)

    try:
        if instances is None:
            await run_components(settings, COMPONENTS, stop, on_ready=ready)
        else:
            await supervise_children(settings, instances, stop, on_ready=ready)
    finally:
        if web is not None:
            await web.stop()


async def _start_web(settings: Settings, port: int | None) -> WebConsole | None:
    """The web console, in this (parent) process; a port in use costs the console, not
    the switch (one line says so)."""
    if port is None:
        return None
    web = WebConsole(settings, WebOptions(port=port))
    try:
        await web.start()
    except OSError as exc:
        await web.stop()
        print(f"switch up: web console not started: port {port}: {exc.strerror or exc}; "
              "use --web-port (0: any free port) or --no-web", file=sys.stderr, flush=True)
        return None
    return web


def metrics_note(settings: Settings, instances: int | None) -> str:
    """Where the metrics are, for the ready line ('' when off)."""
    if not settings.metrics_port:
        return ""
    url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    if instances is None:
        return f"metrics on {url}; "
    last = settings.metrics_port + 4 * instances - 1
    return f"metrics on {url} and the next ports to {last}, one a child; "
