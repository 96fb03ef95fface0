"""Colour on a terminal, one way for every command (console, submit, demo, scenario).

Colour only when writing to a terminal, and never when the user said no: `--no-color`,
`NO_COLOR` set to anything (https://no-color.org) or `TERM=dumb`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

RESET = "\x1b[0m"
BOLD = "1"
DIM = "2"
RED = "31"
GREEN = "32"
YELLOW = "33"
MAGENTA = "35"
CYAN = "36"


def use_color(no_color: bool, stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if no_color or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, *codes: str, color: bool) -> str:
    codes = tuple(c for c in codes if c)
    if not color or not codes:
        return text
    return f"\x1b[{';'.join(codes)}m{text}{RESET}"
