"""The state bulletin's "size the photo into the dotted boundary" step.

`normalise` turns any acceptable JPEG or PNG into the one image every system stores:
a baseline JPEG, right way up, 8-bit sRGB or greyscale, inside the box, at most the
byte limit, with no metadata at all. A JPEG that already is all that is decoded once
(so that its data, not only its headers, is known to be a JPEG) and stored byte for
byte. The same input always gives the same output.

Order of work, cheapest first: header checks (checks.py, including the memory the
decode would need), then Pillow opens the file
(headers only) and the size is checked again, then the JPEG is decoded in draft mode
(libjpeg scales by 1/2, 1/4 or 1/8 while decoding), turned, converted (colour.py),
resized, and encoded at falling quality until it fits.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import simplejpeg
from PIL import Image, UnidentifiedImageError

from switch.images.checks import Header, check_dimensions, count_scans, fit, inspect
from switch.images.colour import to_srgb
from switch.images.errors import ImageRejected, invalid, too_large
from switch.settings import ImageSettings

# The same table as PIL.ImageOps.exif_transpose, applied here to a drafted image: the
# orientation has to be known before decoding to choose the draft scale.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
_SHRINK_ATTEMPTS = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class NormalisedImage:
    """The image to store. `quality` is the JPEG quality used (None when passed through)."""

    data: bytes
    sha256: str
    width: int
    height: int
    passthrough: bool
    quality: int | None = None


def normalise(data: bytes, settings: ImageSettings) -> NormalisedImage:
    """Fit `data` into the box as a clean baseline JPEG; raise ImageRejected if unusable."""
    header = inspect(data, settings)
    if header.conforming:
        verify_jpeg(data)
        return passthrough(data, header)
    im = decode_fitted(data, header, settings, (settings.box_width, settings.box_height))
    out, quality, im = encode_within(im, settings)
    return NormalisedImage(
        data=out,
        sha256=hashlib.sha256(out).hexdigest(),
        width=im.width,
        height=im.height,
        passthrough=False,
        quality=quality,
    )


def verify_jpeg(data: bytes) -> None:
    """Decode the whole entropy-coded data once, strictly: any damage raises ImageRejected.

    libjpeg treats much damage inside the scan (a bad Huffman code, a marker too early or
    too late, bytes left over before the end marker) as a warning: it fills the rest with
    grey, and Pillow never hears of it, so a valid header over arbitrary bytes decoded
    "fine". simplejpeg (libjpeg-turbo) in strict mode turns every warning into an error.
    Decoded at the smallest DCT scale: every coefficient is still entropy-decoded (that is
    what is checked), but almost no pixels are made, so it costs about 1 ms.
    """
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True,
                               min_width=1, min_height=1, fastdct=True)
    except ValueError as exc:  # libjpeg's message names a programmer's detail: not repeated
        early = "premature end" in str(exc).lower()
        raise invalid("CORRUPT JPEG DATA, THE SCAN ENDS EARLY" if early
                      else "CORRUPT JPEG DATA") from None
    except MemoryError:
        raise too_large("NOT ENOUGH MEMORY TO DECODE") from None


def passthrough(data: bytes, header: Header) -> NormalisedImage:
    return NormalisedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        width=header.width,
        height=header.height,
        passthrough=True,
    )


def decode_fitted(data: bytes, header: Header, settings: ImageSettings, box: tuple[int, int]) -> Image.Image:
    """Decode, turn upright, convert to L/RGB sRGB and fit inside `box`; no metadata."""
    if header.progressive and (scans := count_scans(data)) > settings.max_input_scans:
        raise invalid(f"PROGRESSIVE JPEG WITH {scans} SCANS EXCEEDS {settings.max_input_scans}")
    with pillow_errors(header.format):
        im: Image.Image = Image.open(io.BytesIO(data), formats=[header.format])
        if im.size != (header.width, header.height):
            raise invalid(f"{header.format} HEADERS DISAGREE ON THE SIZE")
        check_dimensions(im.width, im.height, settings)
        if header.format == "PNG" and getattr(im, "n_frames", 1) != 1:
            raise invalid("ANIMATED PNG")
        # An MPO (a camera JPEG with previews appended) is read as its first image.
        if header.format == "JPEG":
            orientation = _orientation(im)
            target = fit(_turned(im.size, orientation), box)
            im.draft(im.mode, _turned(target, orientation))
            im.load()
        else:
            im.load()
            orientation = _orientation(im)  # a PNG's eXIf may follow the image data
            target = fit(_turned(im.size, orientation), box)
        icc_profile = im.info.get("icc_profile")
        if orientation in _TRANSPOSE:
            im = im.transpose(_TRANSPOSE[orientation])
        im = to_srgb(im, icc_profile if isinstance(icc_profile, bytes) else None)
        if im.size != target:
            im = im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    im.info = {}  # the JPEG encoder would copy a comment from here
    return im


def encode_within(im: Image.Image, settings: ImageSettings) -> tuple[bytes, int, Image.Image]:
    """The highest quality in [quality_min, quality_start] that fits the byte limit.

    Found by bisection (JPEG size grows with quality), so a photo that does not fit at
    quality_start costs about six more encodes, not one per step. If even quality_min
    is too big, the image is shrunk (still inside the box) until it fits.
    """
    limit, high = settings.max_output_bytes, settings.quality_start
    low = min(settings.quality_min, high)
    out = encode_jpeg(im, high)
    if len(out) <= limit:
        return out, high, im
    best: tuple[bytes, int] | None = None
    smallest = len(out)
    lo, hi = low, high - 1
    while lo <= hi:
        quality = (lo + hi) // 2
        out = encode_jpeg(im, quality)
        if len(out) <= limit:
            best, lo = (out, quality), quality + 1
        else:
            smallest, hi = len(out), quality - 1
    if best is not None:
        return best[0], best[1], im
    source = im
    for _ in range(_SHRINK_ATTEMPTS):
        factor = math.sqrt(limit / smallest) * 0.95
        size = (max(1, int(im.width * factor)), max(1, int(im.height * factor)))
        im = source.resize(size, Image.Resampling.LANCZOS)
        out = encode_jpeg(im, low)
        if len(out) <= limit:
            return out, low, im
        smallest = len(out)
    raise too_large(f"CANNOT FIT IN {limit} BYTES")


def encode_jpeg(im: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, optimised Huffman tables, 4:2:0, and nothing but a bare JFIF APP0."""
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality, optimize=True, progressive=False, subsampling="4:2:0")
    return buffer.getvalue()


@contextlib.contextmanager
def pillow_errors(fmt: str) -> Iterator[None]:
    """Whatever Pillow raises or warns about while reading untrusted bytes → ImageRejected.

    Warnings are silenced: ours come from checks made before Pillow looks (Pillow's
    DecompressionBombWarning fires at its own, higher, MAX_IMAGE_PIXELS, and a malformed
    EXIF or MPO index only costs metadata we drop anyway). Every other failure means
    the pixels cannot be trusted. `catch_warnings` is process-wide, which is fine here:
    images are handled on one thread per process.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        raise too_large("DECOMPRESSION BOMB") from None
    except MemoryError:
        raise too_large("NOT ENOUGH MEMORY TO DECODE") from None
    except Exception as exc:  # a decoder of untrusted bytes fails in many ways
        raise invalid(_describe(fmt, exc)) from None


def _describe(fmt: str, exc: Exception) -> str:
    """Pillow's messages are for programmers (some name object addresses): not repeated."""
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return f"TRUNCATED {fmt}"
    if isinstance(exc, UnidentifiedImageError):
        return f"CORRUPT {fmt} HEADER"
    return f"CORRUPT {fmt} DATA"


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8; anything unreadable counts as upright (metadata is dropped)."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF raises from deep in TiffImagePlugin
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _turned(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """`size` after applying `orientation` (5-8 swap the sides). Its own inverse."""
    return (size[1], size[0]) if orientation >= 5 else size
