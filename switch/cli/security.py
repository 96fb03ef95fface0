"""`switch security init|acls`: the secured broker's files for a container, and its ACLs.

The local broker (`switch broker start`) does both by itself. These are for a broker the
project does not start: docker-compose.yml's `apache/kafka` service.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from switch.cli.common import settings_from_args
from switch.errors import ConfigError

HELP = """\
init: write into DIR (SWITCH_SECURITY_DIR) the CA, the broker's certificate for --host,
the users' credentials, server.properties (the same SASL_SSL/SCRAM listeners and
StandardAuthorizer as the local broker) and start-kafka.sh, which formats the storage with
the SCRAM users and starts Kafka. Harmless to repeat: what exists is kept.
acls: create the components' and operator's ACLs on the broker (as `admin`).
passwd --user NAME: give principal NAME (router, correlator, leads, ncic, operator, or
agency-X) a new random password on the broker at once, and store it in the security
folder; restart the processes that use it.
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("security", parents=[common], help="secured-broker files and ACLs "
                       "for a broker in a container", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("init", "acls", "passwd"))
    p.add_argument("--user", metavar="NAME", help="the principal whose password to rotate (passwd)")
    p.add_argument("--dir", type=Path, default=None,
                   help="the security folder (default SWITCH_SECURITY_DIR, else <home>/security)")
    p.add_argument("--host", default="kafka", help="the broker's host name (init)")
    p.add_argument("--port", type=int, default=9092, help="client listener port (init)")
    p.add_argument("--controller-port", type=int, default=9093, help="(init)")
    p.add_argument("--data-dir", default="/var/lib/kafka/data", help="log.dirs (init)")
    p.add_argument("--owner", type=int, default=None, metavar="UID",
                   help="chown the files to this uid (init; the image's Kafka user)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from switch.security import broker
    from switch.security.client import security_dir

    if args.action == "init":
        home = Path(args.home or os.environ.get("SWITCH_HOME") or ".")
        folder = args.dir or security_dir(home, os.environ)
        folder.mkdir(parents=True, exist_ok=True)
        files = broker.write_container_files(
            folder, host=args.host, port=args.port, cport=args.controller_port,
            data_dir=args.data_dir, owner=args.owner)
        print(f"switch security: {len(files)} files in {folder}")
        return 0
    settings = settings_from_args(args)
    folder = Path(args.dir or settings.kafka.security_dir or "")
    if args.action == "passwd":
        from switch.cli.common import run_async
        from switch.security.users import rotate

        if not args.user:
            raise ConfigError("passwd: name the principal with --user NAME")
        run_async(rotate(settings, folder, args.user))
        print(f"switch security: new password for {args.user} set and stored in "
              f"{folder / 'users' / (args.user + '.json')}")
        return 0
    broker.apply_trusted_acls(settings.kafka.bootstrap_servers, folder)
    print("switch security: ACLs of the components and the operator are in place")
    return 0
