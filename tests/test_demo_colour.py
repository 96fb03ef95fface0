"""The demo paints as every other command does: on a terminal only, never under NO_COLOR,
TERM=dumb or --no-color (switch/terminal.py)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from switch.cli import demo as demo_cli
from switch.demo import Demo


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "no_color", "painted"),
    [({}, False, True), ({"NO_COLOR": "1"}, False, False), ({"TERM": "dumb"}, False, False),
     ({}, True, False)],
)
def test_the_demo_paints_only_where_colour_is_wanted(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], no_color: bool, painted: bool,
) -> None:
    seen: list[bool] = []

    async def walk(settings: Any, records: Any, color: bool) -> tuple[bool, tuple[int, list[str]]]:
        seen.append(color)
        return True, (1, [])

    monkeypatch.setattr(demo_cli, "_walk", walk)
    monkeypatch.setattr(demo_cli, "_read_records", lambda path: [])
    monkeypatch.setattr(demo_cli, "settings_from_args", lambda args: SimpleNamespace(home=Path()))
    monkeypatch.setattr(sys, "stdout", _Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert demo_cli.run(argparse.Namespace(attach=True, no_color=no_color)) == 0
    assert seen == [painted]


def test_a_plain_demo_writes_no_escape_codes() -> None:
    settings: Any = SimpleNamespace()
    assert Demo(settings, [], io.StringIO(), color=False)._c("1", "step") == "step"
    assert Demo(settings, [], io.StringIO(), color=True)._c("1", "step") == "\x1b[1mstep\x1b[0m"
