"""`switch broker start|stop|status`: the local single-node Kafka for development and tests."""

from __future__ import annotations

import argparse
import sys
import time

from switch.cli.common import settings_from_args
from switch.kafka.localbroker import LocalBroker

HELP = """\
Run a local single-node Apache Kafka (KRaft) from Maven Central artifacts, no Docker.
The jars are fetched once into ~/.cache/switch-sim; the broker's run folder (data, log,
pid) is <home>/broker. `start` returns once the broker answers and prints its bootstrap
address; starting twice is harmless. `stop` leaves no JVM behind.
Secured by default: SASL_SSL with SCRAM-SHA-512, a CA and certificate made into
<home>/security (or SWITCH_SECURITY_DIR) with every principal's credentials, and Kafka's
ACL authorizer (docs/SECURITY.md). --insecure (SWITCH_INSECURE=1): plaintext, no users.
Needs Java 17+ and Maven (the first time only).
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "broker", parents=[common], help="start, stop or show the local Kafka broker",
        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--port", type=int, default=None,
                   help="preferred port (default 19092; a free one if taken)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    broker = LocalBroker(settings.home, **({"preferred_port": args.port} if args.port else {}))
    if args.action == "start":
        t0 = time.monotonic()
        state = broker.start()
        print(f"{state.bootstrap}")
        print(f"switch: broker pid {state.pid} ready in {time.monotonic() - t0:.1f} s; "
              f"log {broker.log_file}; export KAFKA_BOOTSTRAP_SERVERS={state.bootstrap}",
              file=sys.stderr)
        if state.security == "SASL_SSL":
            print(f"switch: secured (SASL_SSL, SCRAM-SHA-512, ACLs); credentials and CA in "
                  f"{broker.security_dir}; add agencies with `switch agency add NAME`",
                  file=sys.stderr)
        return 0
    if args.action == "stop":
        stopped = broker.stop()
        print("stopped" if stopped else "not running")
        return 0
    status = broker.status()
    if status is None:
        print(f"not running (home {settings.home})")
        return 3
    print(f"running pid {status.pid} at {status.bootstrap} (home {settings.home}, "
          f"{status.security})")
    return 0
