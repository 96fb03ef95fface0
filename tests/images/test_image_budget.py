"""The memory budget: what a decode would need, told from the headers alone, and refused
above `max_decode_bytes` before a pixel is decoded."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from switch.errors import ConfigError
from switch.images import ImageRejected, normalise
from switch.images.checks import draft_scale, inspect, jpeg_decode_bytes, png_decode_bytes
from switch.settings import Settings
from tests.images.samples import SETTINGS, encode, photo, png_claiming, png_of_zeros

MB = 1024 * 1024
FORTY_MP = (8000, 5000)


def test_default_budget_admits_camera_photos_and_refuses_the_hostile_pngs() -> None:
    assert SETTINGS.max_decode_bytes == 128 * MB
    # A 40 MP palette PNG with transparency: P + RGBA + background + RGB + alpha = 14 B/px.
    assert png_decode_bytes(*FORTY_MP, 3, 8, trns=True, iccp=False) == 40_000_000 * 14
    assert png_decode_bytes(*FORTY_MP, 6, 8, trns=False, iccp=False) == 40_000_000 * 13
    # A 4000 x 3000 camera JPEG is decoded at 1/4 (1/8 if it is not turned): ~6 MB.
    assert draft_scale(4000, 3000, (480, 600)) == 4
    camera = jpeg_decode_bytes(4000, 3000, [(2, 2), (1, 1), (1, 1)], False, SETTINGS)
    assert camera == 1000 * 750 * 8
    # ... and even progressive (every coefficient held at full size) it fits.
    progressive = jpeg_decode_bytes(4000, 3000, [(1, 1)] * 3, True, SETTINGS)
    assert camera < progressive < SETTINGS.max_decode_bytes
    # A PNG photo as large as a 10 MiB PNG gets (~6 MP), with alpha and an ICC profile.
    assert png_decode_bytes(3000, 2000, 6, 8, trns=False, iccp=True) < SETTINGS.max_decode_bytes


def test_draft_scale_takes_the_less_favourable_orientation() -> None:
    assert draft_scale(480, 600, (480, 600)) == 1
    assert draft_scale(3840, 4800, (480, 600)) == 8  # 8x or 10x smaller either way
    assert draft_scale(4000, 3000, (480, 600)) == 4  # upright 480 x 360: 8x; turned 600 x 450: 6x
    assert draft_scale(1000, 1000, (480, 600)) == 2


@pytest.mark.parametrize(
    ("colour_type", "trns", "mb"),
    [(3, True, 535), (6, False, 496)],
    ids=["palette-with-transparency", "rgba"],
)
def test_small_forty_megapixel_png_is_refused_by_its_headers(colour_type: int, trns: bool, mb: int) -> None:
    data = png_of_zeros(*FORTY_MP, colour_type=colour_type, trns=trns)
    assert len(data) < 200_000
    with pytest.raises(ImageRejected) as info:
        inspect(data, SETTINGS)  # headers only: nothing is decoded
    assert info.value.code == "IMAGE_TOO_LARGE"
    assert info.value.text == (
        f"IMAGE TOO LARGE: 8000 X 5000 PIXELS WOULD NEED {mb} MB TO DECODE, OVER THE 128 MB LIMIT"
    )
    # A few hundred bytes claiming the same is refused the same way.
    with pytest.raises(ImageRejected, match="WOULD NEED"):
        normalise(png_claiming(*FORTY_MP, colour_type=colour_type), SETTINGS)


def test_budget_is_configurable() -> None:
    data = encode(photo((1000, 800)), "PNG")  # RGB: 8 bytes a pixel counted, 6.1 MB
    assert inspect(data, SETTINGS).decode_bytes == 1000 * 800 * 8
    with pytest.raises(ImageRejected, match="WOULD NEED 7 MB TO DECODE, OVER THE 6 MB LIMIT"):
        normalise(data, replace(SETTINGS, max_decode_bytes=6 * MB))
    env = {"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092", "SWITCH_HOME": "/tmp/x"}
    settings = Settings.from_env({**env, "SWITCH_IMAGE_MAX_DECODE_BYTES": str(64 * MB),
                                  "SWITCH_IMAGE_TIME_BUDGET_S": "0.5"})
    assert settings.images.max_decode_bytes == 64 * MB and settings.images.time_budget_s == 0.5
    default = Settings.from_env(env).images
    assert (default.pool_size, default.time_budget_s) == (2, 2.0)
    with pytest.raises(ConfigError, match="SWITCH_IMAGE_MAX_DECODE_BYTES"):
        Settings.from_env({**env, "SWITCH_IMAGE_MAX_DECODE_BYTES": "1000"})
    with pytest.raises(ConfigError, match="SWITCH_IMAGE_TIME_BUDGET_S"):
        Settings.from_env({**env, "SWITCH_IMAGE_TIME_BUDGET_S": "0"})


# VmHWM, not getrusage: a child's ru_maxrss starts at its parent's (kept across exec).
_MEASURE = """
import re, sys
from dataclasses import replace
from switch.images import normalise
from switch.images.checks import inspect
from switch.settings import ImageSettings
def peak():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024
data = sys.stdin.buffer.read()
settings = replace(ImageSettings(), max_decode_bytes=1 << 40)
estimate = inspect(data, settings).decode_bytes
before = peak()
normalise(data, settings)
print(estimate, peak() - before)
"""


@pytest.mark.parametrize(
    "make",
    [
        lambda: png_of_zeros(4000, 2500, colour_type=3, trns=True),
        lambda: png_of_zeros(3000, 2500, colour_type=6),
        lambda: encode(photo((3000, 2000)), quality=90, progressive=True),
    ],
    ids=["palette-with-transparency", "rgba", "progressive-jpeg"],
)
def test_estimate_matches_the_memory_a_decode_takes(make) -> None:  # type: ignore[no-untyped-def]
    # Measured in a fresh process: its peak RSS grows by what the decode allocates.
    out = subprocess.run([sys.executable, "-c", _MEASURE], input=make(), capture_output=True,
                         check=True).stdout.split()
    estimate, grew = int(out[0]), int(out[1])
    assert estimate > 20 * MB
    assert grew <= estimate * 1.05 + 2 * MB, (estimate, grew)  # never under-counted
    assert grew >= estimate * 0.6, (estimate, grew)  # nor wildly over
