"""`switch run router|correlator|leads|ncic`: one component, as its own process."""

from __future__ import annotations

import argparse
import asyncio

from switch.cli.app import COMPONENTS, install_stop_handlers, prepare, run_components
from switch.cli.common import settings_from_args
from switch.kafka.topics import ensure_topics
from switch.logs import configure


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run", parents=[common], help="run one component (router, correlator, leads, ncic)",
        description="Run one component of the switch in the foreground until Ctrl-C, for "
        "running them as separate processes. Creates the topics if missing. The broker must "
        "be running (KAFKA_BOOTSTRAP_SERVERS, or `switch broker start`).",
    )
    p.add_argument("component", choices=COMPONENTS)
    p.add_argument("--seed-if-empty", type=int, nargs="?", const=1000, default=None, metavar="N",
                   help="leads: seed N synthetic records (default 1000) if the stores are empty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure(settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        if args.seed_if_empty is not None:
            await prepare(settings, seed_count=args.seed_if_empty)
        else:
            await ensure_topics(settings)
        await run_components(settings, (args.component,), stop)

    asyncio.run(main())
    return 0
