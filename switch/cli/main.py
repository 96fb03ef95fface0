"""Entry point of the `switch` console script.

Each subcommand lives in its own module under `switch.cli` and exposes
`register(subparsers, common)`, which adds its parser and sets `func` to a callable
taking the parsed namespace and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from switch.errors import SwitchError

# Order is the order shown by --help.
COMMANDS = (
    "up",
    "run",
    "broker",
    "topics",
    "seed",
    "submit",
    "console",
    "web",
    "ctl",
    "agency",
    "security",
    "demo",
    "scenario",
    "image",
    "report",
    "gen",
    "replay",
    "capture",
    "schemas",
)

DESCRIPTION = """\
A message-driven transaction switch simulator for LEADS/NCIC image transactions
(EIM enter, MII modify, XIM cancel, QIM query) on Apache Kafka.

Environment: KAFKA_BOOTSTRAP_SERVERS (default: the local broker started by
`switch broker start`), SWITCH_HOME (stores and the local broker's run folder;
default ~/.local/share/switch-sim), SWITCH_TOPIC_PREFIX (default "switch").
See README.md for every setting.
"""


def common_parser() -> argparse.ArgumentParser:
    """Flags every subcommand accepts."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument(
        "--home",
        metavar="DIR",
        help="data directory for stores and the local broker (overrides SWITCH_HOME)",
    )
    g.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (overrides KAFKA_BOOTSTRAP_SERVERS)",
    )
    g.add_argument(
        "--agency", metavar="NAME",
        help="act as agency NAME: its credentials (SWITCH_SECURITY_DIR or <home>/security, "
        "or KAFKA_SASL_*), its own request and reply topics (also SWITCH_AGENCY)",
    )
    g.add_argument(
        "--insecure", action="store_true",
        help="plaintext local broker and clients, no authentication (development only; "
        "also SWITCH_INSECURE=1)",
    )
    g.add_argument(
        "--topic-prefix",
        metavar="PREFIX",
        help="prefix of every topic name (overrides SWITCH_TOPIC_PREFIX; default 'switch')",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switch",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_parser()
    for name in COMMANDS:
        importlib.import_module(f"switch.cli.{name}").register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # aiokafka's own "Unable connect" lines would precede our one-line diagnosis on stderr
    # through logging's last-resort handler; components that log configure a real one.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "insecure", False):
        os.environ["SWITCH_INSECURE"] = "1"  # read by Settings, LocalBroker and child processes
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        return 130
    except SwitchError as exc:
        print(f"switch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        line = _explain(args, exc)
        if line is None:
            raise
        print(f"switch {args.command}: error: {line}", file=sys.stderr)
        return 2
    return int(status or 0)


def _explain(args: argparse.Namespace, exc: KafkaError) -> str | None:
    """One line for a Kafka error (cannot connect, wrong password, not authorized)."""
    from switch.cli.common import settings_from_args
    from switch.security.diagnose import explain

    try:
        settings = settings_from_args(args)
    except SwitchError:
        return None
    return explain(exc, settings.kafka)


if __name__ == "__main__":
    sys.exit(main())
