"""`switch image`: size a photo the way the switch will, before sending it.

    switch image fit IN OUT [--box 480x600] [--max-bytes N]
    switch image thumb IN OUT [--size 96x120]

`fit` prints one line (bytes, dimensions, quality, passthrough); a rejected image gets
one line on stderr and exit status 1. Limits default to the switch's own settings
(SWITCH_IMAGE_BOX, SWITCH_IMAGE_MAX_BYTES).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from switch.cli.common import settings_from_args
from switch.images import ImageRejected, normalise, thumbnail

# As Settings.validate requires of SWITCH_IMAGE_MAX_BYTES and SWITCH_IMAGE_BOX.
MIN_OUTPUT_BYTES = 4096
MIN_BOX_SIDE = 16


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "image",
        parents=[common],
        help="fit a photo into the boundary box, or make a thumbnail, as the switch would",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="image_command", metavar="ACTION", required=True)

    fit = actions.add_parser(
        "fit",
        parents=[common],
        help="write the stored form of IN (baseline JPEG, inside the box, no metadata) to OUT",
    )
    fit.add_argument("input", metavar="IN", type=Path, help="JPEG or PNG to check")
    fit.add_argument("output", metavar="OUT", type=Path, help="where to write the result")
    fit.add_argument(
        "--box", type=_box, metavar="WxH", help="boundary box (default: SWITCH_IMAGE_BOX, 480x600)"
    )
    fit.add_argument(
        "--max-bytes",
        type=_max_bytes,
        metavar="N",
        help="largest stored image (default: SWITCH_IMAGE_MAX_BYTES, 65536)",
    )
    fit.set_defaults(func=_fit)

    thumb = actions.add_parser("thumb", parents=[common], help="write a small console preview")
    thumb.add_argument("input", metavar="IN", type=Path, help="JPEG or PNG")
    thumb.add_argument("output", metavar="OUT", type=Path, help="where to write the JPEG")
    thumb.add_argument("--size", type=_size, default=(96, 120), metavar="WxH", help="default 96x120")
    thumb.set_defaults(func=_thumb)


def _fit(args: argparse.Namespace) -> int:
    settings = settings_from_args(args).images
    if args.box:
        settings = replace(settings, box_width=args.box[0], box_height=args.box[1])
    if args.max_bytes:
        settings = replace(settings, max_output_bytes=args.max_bytes)
    data = _read(args, args.input)
    if data is None:
        return 2
    try:
        result = normalise(data, settings)
    except ImageRejected as exc:
        return _rejected(args, exc)
    if not _write(args, args.output, result.data):
        return 2
    quality = "-" if result.quality is None else str(result.quality)
    print(
        f"{args.output}: {len(result.data)} bytes, {result.width}x{result.height}, "
        f"quality {quality}, passthrough {'yes' if result.passthrough else 'no'}"
    )
    return 0


def _thumb(args: argparse.Namespace) -> int:
    data = _read(args, args.input)
    if data is None:
        return 2
    try:
        out = thumbnail(data, args.size, settings=settings_from_args(args).images)
    except ImageRejected as exc:
        return _rejected(args, exc)
    return 0 if _write(args, args.output, out) else 2


def _rejected(args: argparse.Namespace, exc: ImageRejected) -> int:
    _complain(args, f"{args.input}: {exc.text} [{exc.code}]")
    return 1


def _complain(args: argparse.Namespace, text: str) -> None:
    print(f"switch image {args.image_command}: {text}", file=sys.stderr)


def _read(args: argparse.Namespace, path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        _complain(args, f"cannot read {path}: {exc.strerror}")
        return None


def _write(args: argparse.Namespace, path: Path, data: bytes) -> bool:
    try:
        path.write_bytes(data)
    except OSError as exc:
        _complain(args, f"cannot write {path}: {exc.strerror}")
        return False
    return True


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 480x600")
    return int(m.group(1)), int(m.group(2))


def _box(text: str) -> tuple[int, int]:
    width, height = _size(text)
    if width < MIN_BOX_SIDE or height < MIN_BOX_SIDE:
        raise argparse.ArgumentTypeError(f"{text!r}: each side at least {MIN_BOX_SIDE}")
    return width, height


def _max_bytes(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_OUTPUT_BYTES:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, at least {MIN_OUTPUT_BYTES}")
    return int(text)
