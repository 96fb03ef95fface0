"""What normalise refuses, with which wire code and operator text."""

from __future__ import annotations

import io
import os
import pickle
import struct
from dataclasses import replace

import pytest
from PIL import Image

from switch.errors import SwitchError
from switch.images import ImageRejected, normalise
from switch.images.checks import inspect
from tests.images.samples import SETTINGS, encode, photo, png_chunk, png_claiming

INVALID, TOO_LARGE = "IMAGE_INVALID", "IMAGE_TOO_LARGE"


def rejected(data: bytes, settings: object = SETTINGS) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        normalise(data, settings)  # type: ignore[arg-type]
    exc = info.value
    assert exc.code in (INVALID, TOO_LARGE)
    assert exc.text == exc.text.upper() and "\n" not in exc.text
    assert exc.text.startswith("IMAGE INVALID: " if exc.code == INVALID else "IMAGE TOO LARGE: ")
    return exc


def test_rejection_is_a_switch_error_and_pickles_intact() -> None:
    exc = ImageRejected(TOO_LARGE, "IMAGE TOO LARGE: 1 X 2 PIXELS")
    assert isinstance(exc, SwitchError) and str(exc) == exc.text
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is ImageRejected and (copy.code, copy.text) == (exc.code, exc.text)


@pytest.mark.parametrize("data", [b"", b"hello world", os.urandom(4096), b"\xff\xd8"])
def test_not_an_image(data: bytes) -> None:
    exc = rejected(data)
    assert (exc.code, exc.text) == (INVALID, "IMAGE INVALID: NOT A JPEG OR PNG")


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("WEBP", "WEBP")]
)
def test_format_outside_the_allow_list(fmt: str, name: str) -> None:
    exc = rejected(encode(Image.new("RGB", (32, 32), "red"), fmt))
    assert (exc.code, exc.text) == (INVALID, f"IMAGE INVALID: {name}, NOT A JPEG OR PNG")


def test_allow_list_is_configurable() -> None:
    jpeg_only = replace(SETTINGS, allowed_formats=("JPEG",))
    exc = rejected(encode(photo((32, 32)), "PNG"), jpeg_only)
    assert exc.text == "IMAGE INVALID: PNG, NOT A JPEG"


def test_animated_png() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    exc = rejected(data)
    assert (exc.code, exc.text) == (INVALID, "IMAGE INVALID: ANIMATED PNG")


def test_oversize_input_bytes() -> None:
    small = replace(SETTINGS, max_input_bytes=10_000)
    exc = rejected(encode(photo((400, 400)), "PNG"), small)
    assert exc.code == TOO_LARGE and exc.text.endswith("BYTES EXCEEDS 10000")


def test_bomb_header_is_refused_before_decoding() -> None:
    bomb = png_claiming(13000, 9000)  # 117 megapixels in a few hundred bytes
    exc = rejected(bomb)
    assert (exc.code, exc.text) == (TOO_LARGE, "IMAGE TOO LARGE: 13000 X 9000 PIXELS EXCEEDS 40000000")
    # even without an IDAT or IEND: the IHDR alone is enough
    exc = rejected(bomb[:33])
    assert exc.code == TOO_LARGE


def test_long_side_is_refused() -> None:
    exc = rejected(png_claiming(20000, 10))
    assert (exc.code, exc.text) == (
        TOO_LARGE,
        "IMAGE TOO LARGE: 20000 X 10 PIXELS, A SIDE EXCEEDS 12000",
    )


def test_jpeg_bomb_header_is_refused() -> None:
    data = bytearray(encode(photo((64, 48))))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 60000, 60000)
    exc = rejected(bytes(data))
    assert (exc.code, exc.text) == (
        TOO_LARGE,
        "IMAGE TOO LARGE: 60000 X 60000 PIXELS EXCEEDS 40000000",
    )


def test_pillow_bomb_limits_never_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's own limit below ours: its warning (an error under pytest) and its error
    # must both stay inside normalise.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    warned = normalise(encode(photo((40, 40)), "PNG"), SETTINGS)  # 1600 > 1000: warning
    assert (warned.width, warned.height) == (40, 40)
    exc = rejected(encode(photo((100, 100)), "PNG"))  # 10000 > 2000: DecompressionBombError
    assert (exc.code, exc.text) == (TOO_LARGE, "IMAGE TOO LARGE: DECOMPRESSION BOMB")


def test_zero_size() -> None:
    assert rejected(png_claiming(0, 10)).text == "IMAGE INVALID: 0 X 10 PIXELS, EMPTY IMAGE"


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9, 0.99])
def test_truncated_jpeg(fraction: float) -> None:
    data = encode(photo((800, 600)), quality=95)
    exc = rejected(data[: int(len(data) * fraction)])
    assert exc.code == INVALID and "TRUNCATED" in exc.text


@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.5, 0.99])
def test_truncated_png(fraction: float) -> None:
    data = encode(photo((300, 200)), "PNG")
    exc = rejected(data[: int(len(data) * fraction)])
    assert exc.code == INVALID and "TRUNCATED" in exc.text


def test_corrupt_png_data() -> None:
    ihdr = struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"definitely not zlib")
        + png_chunk(b"IEND", b"")
    )
    exc = rejected(data)
    assert (exc.code, exc.text) == (INVALID, "IMAGE INVALID: CORRUPT PNG DATA")


def test_progressive_jpeg_with_too_many_scans() -> None:
    data = encode(photo((64, 64)), progressive=True)
    few = replace(SETTINGS, max_input_scans=3)
    exc = rejected(data, few)
    assert exc.code == INVALID and "SCANS EXCEEDS 3" in exc.text


def test_jpeg_header_walk_limits() -> None:
    header = b"\xff\xd8" + b"\xff\xfe\x00\x02" * 2000 + b"\xff\xd9"
    assert "HEADER SEGMENTS" in rejected(header).text
    chunks = b"".join(png_chunk(b"tEXt", b"") for _ in range(10_001))
    png = png_claiming(8, 8)
    assert "CHUNKS" in rejected(png[:33] + chunks + png[33:]).text


def test_inspect_reads_only_headers() -> None:
    header = inspect(png_claiming(300, 200), SETTINGS)
    assert (header.format, header.width, header.height, header.conforming) == (
        "PNG",
        300,
        200,
        False,
    )


def test_conforming_headers_over_data_libjpeg_refuses_are_not_passed_through() -> None:
    # Every header a passed-through JPEG may have, but three components sampled 2 x 2 each:
    # 12 blocks an MCU, more than the 10 a baseline scan allows. Only decoding finds out;
    # before, the bytes were stored as they were.
    data = bytearray(encode(photo((300, 400)), quality=85))
    sof = data.index(b"\xff\xc0")
    for k in range(3):
        data[sof + 11 + 3 * k] = 0x22
    assert inspect(bytes(data), SETTINGS).conforming
    exc = rejected(bytes(data))
    assert (exc.code, exc.text) == (INVALID, "IMAGE INVALID: CORRUPT JPEG DATA")


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


@pytest.mark.parametrize("damage", ["zeros", "cut", "noise"])
def test_damaged_scan_data_behind_conforming_headers_is_refused(damage: str) -> None:
    # libjpeg only warns about these (and Pillow decodes them as grey): a strict decode
    # must refuse them, or arbitrary bytes behind a valid header are stored as they are.
    good = encode(photo((300, 400)), quality=85)
    start = _scan_start(good)
    if damage == "zeros":
        data = good[: start + 200] + bytes(len(good) - start - 600) + good[-400:]
    elif damage == "cut":
        data = good[: start + (len(good) - start) // 2] + b"\xff\xd9"
    else:
        noise = bytes((i * 7919 + 13) % 255 for i in range(len(good) - start - 2))
        data = good[:start] + noise.replace(b"\xff", b"\xfe") + b"\xff\xd9"
    assert inspect(data, SETTINGS).conforming
    Image.open(io.BytesIO(data)).load()  # Pillow alone lets it through
    exc = rejected(data)
    assert exc.code == INVALID
    assert exc.text.startswith("IMAGE INVALID: CORRUPT JPEG DATA")


def test_a_conforming_photo_still_passes_through_byte_for_byte() -> None:
    good = encode(photo((300, 400)), quality=85)
    assert inspect(good, SETTINGS).conforming
    out = normalise(good, SETTINGS)
    assert out.passthrough and out.data == good
