"""Hostile bytes: whatever arrives, normalise either returns a clean image or raises
ImageRejected, never anything else (and no warning escapes: pytest makes them errors)."""

from __future__ import annotations

import functools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.images import ImageRejected, normalise
from switch.images.checks import JPEG_SIGNATURE, PNG_SIGNATURE
from tests.images.samples import (
    SETTINGS,
    assert_clean_output,
    encode,
    exif_with,
    photo,
    swapped_rgb_profile,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # the tree is shared; failures print their example anyway
    suppress_health_check=[HealthCheck.too_slow],
)
TEXT = re.compile(r"IMAGE (INVALID|TOO LARGE): [A-Z0-9 ,]+")


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Small valid images of each kind the pipeline reads differently."""
    im = photo((48, 40))
    return (
        encode(im, quality=80),
        encode(im, progressive=True, exif=exif_with(6, gps=True), comment=b"note"),
        encode(im.convert("L"), "PNG"),
        encode(im.convert("P"), "PNG", transparency=0),
        encode(im.convert("RGBA"), "PNG", exif=exif_with(3)),
        encode(im.convert("CMYK"), icc_profile=swapped_rgb_profile()),
        encode(im.convert("L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"),
        encode(im, "MPO", save_all=True, append_images=[im]),
    )


SEED = st.integers(0, 7)


def survives(data: bytes) -> None:
    try:
        result = normalise(data, SETTINGS)
    except ImageRejected as exc:
        assert exc.code in ("IMAGE_INVALID", "IMAGE_TOO_LARGE")
        assert TEXT.fullmatch(exc.text), exc.text
        return
    if not result.passthrough:
        assert_clean_output(result)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    survives(data)


@FUZZ
@given(st.sampled_from([JPEG_SIGNATURE, PNG_SIGNATURE]), st.binary(max_size=2048))
def test_random_bytes_behind_a_real_signature(signature: bytes, rest: bytes) -> None:
    survives(signature + rest)


@FUZZ
@given(
    SEED,
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=8),
    st.none() | st.integers(0, 10**6),
)
def test_mutated_valid_images(which: int, flips: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(seeds()[which])
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    if cut is not None:
        del data[cut % len(data) :]
    survives(bytes(data))


@FUZZ
@given(SEED, st.integers(0, 10**6), st.binary(min_size=1, max_size=64))
def test_spliced_valid_images(which: int, position: int, junk: bytes) -> None:
    data = seeds()[which]
    at = position % len(data)
    survives(data[:at] + junk + data[at:])
