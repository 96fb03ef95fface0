"""`switch topics create|list`: create the switch's topics (idempotent) or list them."""

from __future__ import annotations

import argparse

from switch.cli.common import run_async, settings_from_args
from switch.kafka.topics import ensure_topics, topic_specs


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "topics", parents=[common], help="create the switch's topics, or list them",
        description="Create every topic the switch uses with its partitions and configs "
        "(harmless to repeat; existing topics are checked, and --fix resets their configs), "
        "or list them with their purpose.",
    )
    p.add_argument("action", choices=("create", "list"))
    p.add_argument("--fix", action="store_true",
                   help="create: set an existing topic's configs back to the switch's "
                   "(otherwise a difference is an error)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.action == "list":
        for spec in topic_specs(settings):
            configs = ",".join(f"{k}={v}" for k, v in sorted(spec.configs.items()))
            print(f"{spec.name:40} {spec.partitions:3}  {spec.purpose}  [{configs}]")
        return 0
    created = run_async(ensure_topics(settings, fix=args.fix))
    print(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))
    return 0
