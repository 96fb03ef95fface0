"""Helpers shared by subcommands: settings from flags, running a coroutine."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from switch.settings import Settings

T = TypeVar("T")


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        home=getattr(args, "home", None),
        bootstrap_servers=getattr(args, "bootstrap_servers", None),
        topic_prefix=getattr(args, "topic_prefix", None),
        metrics_port=getattr(args, "metrics_port", None),
        agency=getattr(args, "agency", None),
    )


def add_metrics_port(p: argparse.ArgumentParser, extra: str = "") -> None:
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics (host: "
                   "SWITCH_METRICS_HOST); default SWITCH_METRICS_PORT; 0: off, the default"
                   + extra)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
