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
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
