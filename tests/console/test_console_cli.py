"""`switch console` options: refused early with one line, colour only where it belongs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from switch.cli.main import main
from switch.terminal import use_color


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_when_refused() -> None:
    assert use_color(False, _Tty(), env={})
    assert not use_color(False, io.StringIO(), env={})
    assert not use_color(True, _Tty(), env={})
    assert not use_color(False, _Tty(), env={"NO_COLOR": "1"})
    assert not use_color(False, _Tty(), env={"TERM": "dumb"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--status", "DONE"], "switch console: error: --status DONE: expected one of COMPLETE"),
        (["--ori", "IL01"], "switch console: error: --ori IL01: an ORI is 9 characters"),
        (["--count", "0"], "switch console: error: --count must be 1 or more"),
        (["--footer-every", "-1"], "switch console: error: --footer-every must be 0 or more"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console", *argv, "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_unreachable_kafka_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console", "--home", str(tmp_path), "--bootstrap-servers", "127.0.0.1:1"]) == 3
    assert "switch console: error: cannot reach Kafka at 127.0.0.1:1" in capsys.readouterr().err
