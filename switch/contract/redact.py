"""Keeping photos out of dead letters, reject echoes and logs.

A request's bytes are copied in three places for people to read: a dead letter's `raw`
and `key`, and the echo in a reject's text. A photo carries personal data beyond the
face (EXIF: camera, time, GPS position), so none of its bytes may be copied there, even
when the input is broken JSON, cut mid-image, raw JPEG/PNG bytes rather than JSON, or
has the image in some other field. `redact` replaces each of these by its size and
SHA-256 (of the bytes as received), e.g. `"image":"<4188 bytes base64, sha256 ab12...>"`:

- the value of an `"image"` key: a JSON string up to its closing quote; anything else
  (a string never closed, raw bytes) up to the end of the input;
- raw image bytes (a JPEG, PNG, GIF, WebP, TIFF, HEIF signature or an EXIF block), up to
  the end of the input;
- any run of at least `RUN` base64 characters, wherever it is (a misnamed field, a key).

Pure and bounded: it stops once `limit` bytes are written.
"""

from __future__ import annotations

import hashlib
import re

RUN = 64  # base64 runs this long or longer are taken for image data

_IMAGE_KEY = rb'"image"\s*:\s*'
_MAGIC = (
    rb"\xff\xd8\xff"  # JPEG
    rb"|\x89PNG\r\n\x1a\n"
    rb"|GIF8[79]a"
    rb"|RIFF....WEBP"
    rb"|II\*\x00|MM\x00\*"  # TIFF (and EXIF's own header)
    rb"|Exif\x00\x00"
    rb"|\x00\x00\x00.ftyp(?:heic|heix|mif1|avif)"
)
_B64_RUN = rb"(?:[A-Za-z0-9+/=]|\\/){%d,}" % RUN
_NEXT = re.compile(rb"(?P<key>" + _IMAGE_KEY + rb")|(?P<magic>" + _MAGIC + rb")|(?P<run>"
                   + _B64_RUN + rb")", re.DOTALL)
_RUN = re.compile(_B64_RUN)
# A value after "image": that is not image data (null, a number, true/false).
_SCALAR = re.compile(rb"(?:null|true|false|-?[0-9][0-9.eE+-]*)")


def placeholder(data: bytes, kind: str) -> bytes:
    """What stands in for removed bytes: their size and SHA-256, never the bytes."""
    return b"<%d bytes %s, sha256 %s>" % (len(data), kind.encode(), hashlib.sha256(data).hexdigest().encode())


def redact(raw: bytes, limit: int) -> bytes:
    """`raw` with image data replaced (see the module), cut to at most `limit` bytes."""
    out = bytearray()
    pos, end = 0, len(raw)
    while pos < end and len(out) < limit:
        # Look no further than the output can still take (plus one run's length).
        m = _NEXT.search(raw, pos, min(end, pos + limit - len(out) + RUN))
        if m is None:
            out += raw[pos:pos + limit - len(out)]
            break
        out += raw[pos:m.start()]
        if m.group("run") is not None:
            run = _RUN.match(raw, m.start())  # the whole run, past the window
            assert run is not None
            out += placeholder(run.group(), "base64")
            pos = run.end()
        elif m.group("magic") is not None:
            out += placeholder(raw[m.start():], "binary image")
            pos = end
        else:
            out += m.group()
            pos = _image_value(raw, m.end(), out)
    return bytes(out[:limit])


def _image_value(raw: bytes, start: int, out: bytearray) -> int:
    """Write the stand-in for the value at `start`; return where reading goes on."""
    scalar = _SCALAR.match(raw, start)
    if scalar is not None:
        out += scalar.group()
        return scalar.end()
    if raw[start:start + 1] != b'"':
        out += placeholder(raw[start:], "image value")
        return len(raw)
    close = _closing_quote(raw, start + 1)
    if close < 0:
        out += b'"' + placeholder(raw[start + 1:], "base64, cut")
        return len(raw)
    out += b'"' + placeholder(raw[start + 1:close], "base64") + b'"'
    return close + 1


def _closing_quote(raw: bytes, i: int) -> int:
    """Index of the quote that ends a JSON string whose text starts at `i`, or -1."""
    while True:
        j = raw.find(b'"', i)
        if j < 0:
            return -1
        k = j
        while k > i and raw[k - 1] == 0x5C:  # backslash
            k -= 1
        if (j - k) % 2 == 0:
            return j
        i = j + 1


def redact_text(raw: bytes, chars: int) -> str:
    """The first `chars` characters of `raw` as text, redacted (a reject's echo)."""
    return redact(raw, 4 * chars + 128).decode("utf-8", "replace")[:chars]
