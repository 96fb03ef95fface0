"""`python -m switch.services --system LEADS|NCIC`: one service as its own process.

Settings come from the environment (SWITCH_HOME, KAFKA_BOOTSTRAP_SERVERS,
SWITCH_TOPIC_PREFIX, ...). SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from switch.errors import SwitchError
from switch.logs import configure
from switch.services.loop import run_service
from switch.settings import Settings


async def _main(settings: Settings, system: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_service(settings, system, stop=stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m switch.services", description=__doc__)
    parser.add_argument("--system", required=True, type=str.upper, choices=("LEADS", "NCIC"))
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        configure(settings.log_level)
        asyncio.run(_main(settings, args.system))
    except SwitchError as exc:
        print(f"switch {args.system.lower()}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
