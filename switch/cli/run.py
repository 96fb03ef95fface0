"""`switch run router|correlator|leads|ncic`: one component, as its own process."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping

from switch.cli.app import COMPONENTS, install_stop_handlers, prepare, run_components
from switch.cli.common import add_metrics_port, settings_from_args
from switch.errors import ConfigError
from switch.kafka.topics import ensure_topics
from switch.logs import configure
from switch.router.partitioning import validate_instance


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
    p.add_argument("--instance", default=None, metavar="ID",
                   help="this instance's id (letters, digits, '-', '_'; default: "
                   "SWITCH_INSTANCE, else 0). Router, correlator: it names the transactional id "
                   "and the local cache files: a restart with the same id fences its "
                   "predecessor; each running instance needs its own. LEADS, NCIC: the "
                   "instances share the partitions' stores under SWITCH_HOME; the id names "
                   "the instance in the logs")
    add_metrics_port(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure(settings.log_level)
    try:
        instance = validate_instance(instance_from(args.instance, os.environ))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        if args.seed_if_empty is not None:
            await prepare(settings, seed_count=args.seed_if_empty)
        else:
            await ensure_topics(settings)
        await run_components(settings, (args.component,), stop, instance=instance)

    asyncio.run(main())
    return 0


def instance_from(flag: str | None, env: Mapping[str, str]) -> str:
    """The flag wins over SWITCH_INSTANCE; instance 0 when neither is given."""
    if flag is not None:
        return flag
    return env.get("SWITCH_INSTANCE", "0")
