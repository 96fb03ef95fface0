"""`switch image fit|thumb`, driven through a parser built the way main.py builds it."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from PIL import Image

from switch.cli import image
from switch.cli.main import common_parser
from tests.images.samples import encode, exif_with, photo


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="switch")
    sub = parser.add_subparsers(dest="command", required=True)
    image.register(sub, common_parser())
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(autouse=True)
def _no_switch_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SWITCH_IMAGE_BOX", "SWITCH_IMAGE_MAX_BYTES", "SWITCH_IMAGE_POOL",
                 "SWITCH_IMAGE_MAX_DECODE_BYTES", "SWITCH_IMAGE_TIME_BUDGET_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCH_HOME", str(tmp_path / "home"))


def test_fit_writes_the_stored_form_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "in.png", tmp_path / "out.jpg"
    source.write_bytes(encode(photo((1200, 900)), "PNG"))
    assert run(["image", "fit", str(source), str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert len(lines) == 1 and printed.err == ""
    stored = out.read_bytes()
    assert lines[0] == f"{out}: {len(stored)} bytes, 480x360, quality 90, passthrough no"
    assert Image.open(io.BytesIO(stored)).size == (480, 360)


def test_fit_with_box_and_byte_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "in.jpg", tmp_path / "out.jpg"
    source.write_bytes(encode(photo((1200, 900)), exif=exif_with(6)))
    assert run(["image", "fit", str(source), str(out), "--box", "200x300", "--max-bytes", "6000"]) == 0
    line = capsys.readouterr().out.strip()
    assert ", 200x267, quality " in line
    assert len(out.read_bytes()) <= 6000


def test_fit_passthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "in.jpg", tmp_path / "out.jpg"
    source.write_bytes(encode(photo((300, 400))))
    assert run(["image", "fit", str(source), str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("300x400, quality -, passthrough yes")
    assert out.read_bytes() == source.read_bytes()


def test_fit_reject_is_one_line_and_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "in.gif", tmp_path / "out.jpg"
    source.write_bytes(encode(Image.new("P", (8, 8)), "GIF"))
    assert run(["image", "fit", str(source), str(out)]) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err == (
        f"switch image fit: {source}: IMAGE INVALID: GIF, NOT A JPEG OR PNG [IMAGE_INVALID]\n"
    )
    assert not out.exists()


def test_fit_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["image", "fit", str(tmp_path / "nope.jpg"), str(tmp_path / "out.jpg")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--box", "10x10"], ["--box", "big"], ["--max-bytes", "100"]])
def test_fit_refuses_bad_flags(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(["image", "fit", "a.jpg", "b.jpg", *flags])
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_thumb(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jpg", tmp_path / "thumb.jpg"
    source.write_bytes(encode(photo((1200, 900))))
    assert run(["image", "thumb", str(source), str(out)]) == 0
    assert Image.open(io.BytesIO(out.read_bytes())).size == (96, 72)
    assert run(["image", "thumb", str(source), str(out), "--size", "40x40"]) == 0
    assert Image.open(io.BytesIO(out.read_bytes())).size == (40, 30)
