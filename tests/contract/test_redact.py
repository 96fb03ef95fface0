"""No image byte is copied into a dead letter, a reject echo or a key (switch/contract/redact.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from switch.contract.redact import RUN, redact, redact_text
from switch.contract.validate import RequestInvalid, Unreadable, parse_request

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def gps_jpeg(size: tuple[int, int] = (64, 48)) -> tuple[bytes, bytes]:
    """A JPEG whose EXIF block holds a GPS position; returns (jpeg, exif block)."""
    exif = Image.Exif()
    exif[0x010F] = "ACME CAMERA"
    exif.get_ifd(0x8825).update({1: "N", 2: (41.0, 52.0, 30.5), 3: "W", 4: (87.0, 37.0, 12.25)})
    im = Image.new("RGB", size, (10, 20, 30))
    for x in range(0, size[0], 4):
        for y in range(0, size[1], 4):
            im.putpixel((x, y), ((x * 7) % 256, (y * 3) % 256, (x * y) % 256))
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue(), exif.tobytes()


def windows(data: bytes, n: int) -> set[bytes]:
    return {data[i:i + n] for i in range(0, max(1, len(data) - n + 1))}


def assert_no_run_of(secret: bytes, out: bytes, n: int = RUN) -> None:
    leaked = [w for w in windows(secret, n) if w in out]
    assert not leaked, f"{len(leaked)} windows of {n} bytes leaked, e.g. {leaked[0][:20]!r}"


JPEG, EXIF = gps_jpeg()
B64 = base64.b64encode(JPEG)


def test_image_value_is_replaced_by_its_size_and_sha256() -> None:
    raw = b'{"mke":"EIM","image":"' + B64 + b'","mid":"m1"}'
    out = redact(raw, 4096)
    digest = hashlib.sha256(B64).hexdigest().encode()
    assert out == b'{"mke":"EIM","image":"<%d bytes base64, sha256 %s>","mid":"m1"}' % (len(B64), digest)


def test_image_first_in_broken_json_cut_mid_image() -> None:
    raw = b'{"image":"' + B64[:500]  # truncated mid-image: never closed
    out = redact(raw, 4096)
    assert out.startswith(b'{"image":"<500 bytes base64, cut, sha256 ')
    assert_no_run_of(B64, out, 16)


def test_raw_jpeg_bytes_lose_everything_from_the_signature() -> None:
    out = redact(b"garbage before " + JPEG, 4096)
    assert out.startswith(b"garbage before <%d bytes binary image" % len(JPEG))
    assert EXIF[6:] not in out and b"ACME" not in out
    assert_no_run_of(JPEG, out, 8)


def test_image_anywhere_and_base64_in_any_field() -> None:
    raw = json.dumps({"mke": "EIM", "mid": "m-1", "ori": "IL0160000", "photo": B64.decode(),
                      "image": B64.decode()}).encode()
    out = redact(raw, 100_000)
    assert_no_run_of(B64, out, 16)
    assert b'"mid": "m-1"' in out and b'"ori": "IL0160000"' in out


def test_image_as_raw_bytes_after_the_key_and_escaped_slashes() -> None:
    out = redact(b'{"mid":"a","image":' + JPEG, 4096)
    assert out.startswith(b'{"mid":"a","image":<%d bytes image value' % len(JPEG))
    escaped = B64.replace(b"/", b"\\/")
    out = redact(b'{"img":"' + escaped + b'"}', 4096)
    assert_no_run_of(B64, out.replace(b"\\/", b"/"), 16)


def test_ordinary_input_and_null_image_are_kept() -> None:
    raw = b'{"mke":"MII","mid":"abc","image":null,"mis":"NEW GLASSES"}'
    assert redact(raw, 4096) == raw
    assert redact(b"\xff\xfe not json", 4096) == b"\xff\xfe not json"
    assert redact(b"x, " * 10_000, 4096) == (b"x, " * 10_000)[:4096]
    assert redact(b"x" * 10_000, 4096).startswith(b"<10000 bytes base64")


def test_output_is_bounded() -> None:
    raw = b" ".join([B64[:70]] * 10_000)
    assert len(redact(raw, 4096)) <= 4096
    assert len(redact_text(raw, 100)) <= 100


def test_echo_of_invalid_and_unreadable_requests_holds_no_image() -> None:
    bad_field = json.dumps({"image": B64.decode(), "mke": "EIM", "mid": "m-2", "ori": "IL0160000",
                            "lno": "nope"}).encode()
    with pytest.raises(RequestInvalid) as invalid:
        parse_request(bad_field)
    assert invalid.value.echo.startswith(f'{{"image": "<{len(B64)} bytes base64')
    broken = b'{"image":"' + B64 + b'","mke":"EIM","mid":"m-3","ori":"IL0160000",'
    with pytest.raises(Unreadable) as unreadable:
        parse_request(broken)
    assert unreadable.value.mid == "m-3" and unreadable.value.ori == "IL0160000"
    assert_no_run_of(B64, unreadable.value.echo.encode(), 16)


images = st.binary(min_size=48, max_size=1500)  # base64 of 48 bytes is 64 characters
shapes = st.sampled_from(["first", "last", "other_field", "cut", "broken", "raw", "key_only"])


def embed(image: bytes, shape: str, cut: int) -> bytes:
    b64 = base64.b64encode(image)
    if shape == "first":
        return b'{"image":"' + b64 + b'","mke":"EIM","mid":"m"}'
    if shape == "last":
        return b'{"mke":"EIM","mid":"m","image" : "' + b64 + b'"}'
    if shape == "other_field":
        return b'{"mke":"EIM","picture":"' + b64 + b'"}'
    if shape == "cut":
        return (b'{"mid":"m","image":"' + b64)[: 20 + max(RUN, cut % (len(b64) + 1))]
    if shape == "broken":
        return b'{"image":"' + b64 + b'",,,}}'
    if shape == "raw":
        return b"\xff\xd8\xff\xe1" + image
    return b64


@FAST
@given(images, shapes, st.integers(0, 10_000), st.sampled_from([100, 400, 4096, 100_000]))
def test_no_base64_window_of_an_image_survives(image: bytes, shape: str, cut: int, limit: int) -> None:
    raw = embed(image, shape, cut)
    out = redact(raw, limit)
    assert len(out) <= limit
    if shape == "raw":
        assert_no_run_of(image, out, 16)
    else:
        assert_no_run_of(base64.b64encode(image), out)
    assert_no_run_of(base64.b64encode(image), redact_text(raw, 100).encode())
