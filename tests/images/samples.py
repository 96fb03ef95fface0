"""Images made in memory for the image tests, and readers that check the results."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageDraw

from switch.images import NormalisedImage
from switch.settings import ImageSettings

SETTINGS = ImageSettings()
BOX = (SETTINGS.box_width, SETTINGS.box_height)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 255, 255)

# How to store an upright image so that the EXIF orientation turns it upright again
# (the inverse of the transform each orientation value asks a viewer to apply).
STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def encode(im: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    if fmt == "PNG":
        params.setdefault("compress_level", 1)  # zlib's default level costs most of a test
    buffer = io.BytesIO()
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


def photo(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Gradients and a little noise: compresses like a photograph, not like a flat fill."""
    w, h = size
    a = Image.linear_gradient("L").resize(size)
    b = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 24)
    im = Image.merge("RGB", (a, b, Image.blend(a, noise, 0.5)))
    ImageDraw.Draw(im).ellipse((w // 4, h // 5, 3 * w // 4, 4 * h // 5), outline=WHITE)
    return im.convert(mode)


def quadrants(size: tuple[int, int]) -> Image.Image:
    """Upright reference: red top-left, green top-right, blue bottom-left, white rest."""
    w, h = size
    im = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, w // 2 - 1, h // 2 - 1), fill=RED)
    draw.rectangle((w // 2, 0, w - 1, h // 2 - 1), fill=GREEN)
    draw.rectangle((0, h // 2, w // 2 - 1, h - 1), fill=BLUE)
    return im


def corner_colours(im: Image.Image) -> tuple[tuple[int, ...], ...]:
    """Colours sampled well inside each quadrant: TL, TR, BL, BR."""
    im = im.convert("RGB")
    w, h = im.size
    points = ((w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4))
    return tuple(_pixel(im, p) for p in points)


def _pixel(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def exif_with(orientation: int | None = None, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "ACME CAMERA"  # Make
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        info = exif.get_ifd(0x8825)
        info[1] = "N"
        info[2] = (41.0, 52.0, 30.0)
        info[3] = "W"
        info[4] = (87.0, 37.0, 40.0)
    return exif


# --------------------------------------------------------------------------- ICC


_D50 = (0.9642, 1.0, 0.8249)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(v: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)


def _gamma(value: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(value * 256)) + b"\0\0"


def swapped_rgb_profile() -> bytes:
    """An ICC v2 RGB profile whose red and green primaries are sRGB's, swapped.

    A pixel (255, 0, 0) tagged with it *is* green: only a colour-managed pipeline turns
    it green, so the test can tell colour management happened.
    """
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    curve = _gamma(2.2)
    tags = [(b"rXYZ", _xyz(green)), (b"gXYZ", _xyz(red)), (b"bXYZ", _xyz(blue))]
    tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    return _icc_profile(b"RGB ", b"swapped primaries", tags)


def linear_grey_profile() -> bytes:
    """An ICC v2 greyscale profile with gamma 1.0: linear 128 is sRGB 188."""
    return _icc_profile(b"GRAY", b"linear grey", [(b"kTRC", _gamma(1.0))])


def _icc_profile(space: bytes, name: bytes, colour_tags: list[tuple[bytes, bytes]]) -> bytes:
    text = name + b"\0"
    desc = (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(text))
        + text
        + b"\0" * 8  # no Unicode description
        + b"\0" * 3  # no ScriptCode description
        + b"\0" * 67
    )
    tags = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0public domain\0"),
        (b"wtpt", _xyz(_D50)),
        *colour_tags,
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = [], b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table.append(struct.pack(">4sII", signature, offset + len(body), len(data)))
        body += data
    header = (
        struct.pack(">I4sI", offset + len(body), b"none", 0x02100000)
        + b"mntr"
        + space
        + b"XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual
        + b"".join(_s15(c) for c in _D50)
        + b"\0" * 4  # creator
        + b"\0" * 44  # profile id, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body


# --------------------------------------------------------------------------- PNG by hand


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_claiming(width: int, height: int, *, colour_type: int = 0) -> bytes:
    """A tiny PNG whose IHDR claims `width` x `height` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    rows = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- readers


def jpeg_markers(data: bytes) -> list[int]:
    """The markers from SOI up to the first SOS, in order."""
    assert data[:2] == b"\xff\xd8"
    pos, markers = 2, []
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


def assert_clean_output(result: NormalisedImage, settings: ImageSettings = SETTINGS) -> Image.Image:
    """Everything a stored image must be; returns it decoded."""
    data = result.data
    assert len(data) <= settings.max_output_bytes
    markers = jpeg_markers(data)
    assert markers.count(0xC0) == 1, "baseline frame header"
    assert set(markers) <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDD, 0xDA}, [hex(m) for m in markers]
    assert markers.count(0xE0) <= 1
    assert data.endswith(b"\xff\xd9")
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    assert im.mode in ("L", "RGB")
    assert im.size == (result.width, result.height)
    assert result.width <= settings.box_width and result.height <= settings.box_height
    for key in ("exif", "icc_profile", "comment", "xmp", "progressive", "progression", "adobe"):
        assert key not in im.info, key
    assert not im.getexif()
    im.load()
    return im


def png_of_zeros(width: int, height: int, *, colour_type: int = 3, trns: bool = False) -> bytes:
    """A valid PNG of `width` x `height` zero pixels in a few KB (zlib shrinks the runs of
    zeros ~1000:1): the hostile image of a memory budget, decodable to the end."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = bytes(1 + width * channels)  # filter byte 0, then the samples
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if colour_type == 3:
        chunks.append(png_chunk(b"PLTE", bytes(range(256)) * 3))
    if trns:
        chunks.append(png_chunk(b"tRNS", b"\0" if colour_type == 3 else bytes(2 * channels)))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
