"""normalise: every accepted image comes out upright, inside the box, under the byte
limit, as a baseline JPEG with no metadata; conforming JPEGs pass through untouched."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace

import pytest
from PIL import Image

from switch.images import ImageRejected, normalise, thumbnail
from switch.images.pipeline import fit
from tests.images.samples import (
    BLUE,
    BOX,
    GREEN,
    RED,
    SETTINGS,
    STORE_FOR_ORIENTATION,
    WHITE,
    assert_clean_output,
    corner_colours,
    encode,
    exif_with,
    linear_grey_profile,
    near,
    photo,
    quadrants,
    swapped_rgb_profile,
)

SIZES = [
    (1, 1),
    (16, 16),
    (300, 200),
    (480, 600),
    (481, 600),
    (480, 601),
    (600, 480),
    (1200, 1600),
    (1600, 1200),
    (2000, 90),
    (90, 2000),
]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_any_size_fits_the_box_with_its_aspect(size: tuple[int, int], fmt: str) -> None:
    data = encode(photo(size), fmt, **({"progressive": True} if fmt == "JPEG" else {}))
    result = normalise(data, SETTINGS)
    assert_clean_output(result)
    assert not result.passthrough
    assert (result.width, result.height) == fit(size, BOX)
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((4000, 3000), (480, 600), (480, 360)),
        ((3000, 4000), (480, 600), (450, 600)),
        ((960, 1200), (480, 600), (480, 600)),
        ((100, 100), (480, 600), (100, 100)),
        ((10000, 1), (480, 600), (480, 1)),
        ((1, 10000), (480, 600), (1, 600)),
    ],
)
def test_fit_keeps_aspect_and_never_upscales(
    size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert fit(size, box) == expected


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied_first(orientation: int, fmt: str) -> None:
    upright = quadrants((900, 1200))  # portrait; stored landscape for 5-8
    transpose = STORE_FOR_ORIENTATION[orientation]
    stored = upright.transpose(transpose) if transpose is not None else upright
    data = encode(stored, fmt, exif=exif_with(orientation))
    result = normalise(data, SETTINGS)
    im = assert_clean_output(result)
    assert im.size == (450, 600)
    expected = (RED, GREEN, BLUE, WHITE)
    colours = corner_colours(im)
    assert all(near(c, e) for c, e in zip(colours, expected, strict=True)), colours


def test_small_image_with_orientation_is_turned_not_passed_through() -> None:
    stored = quadrants((120, 90)).transpose(Image.Transpose.ROTATE_90)
    result = normalise(encode(stored, exif=exif_with(8)), SETTINGS)
    assert not result.passthrough
    assert (result.width, result.height) == (120, 90)


def test_greyscale_stays_greyscale() -> None:
    for data in (encode(photo((640, 480), "L")), encode(photo((640, 480), "L"), "PNG")):
        im = assert_clean_output(normalise(data, SETTINGS))
        assert im.mode == "L"


def test_colour_becomes_rgb() -> None:
    im = assert_clean_output(normalise(encode(photo((640, 480)), "PNG"), SETTINGS))
    assert im.mode == "RGB"


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(mode: str) -> None:
    im = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 100, 100))
    out = assert_clean_output(normalise(encode(im.convert(mode), "PNG"), SETTINGS))
    assert out.mode == ("L" if mode == "LA" else "RGB")
    left, right = out.convert("RGB").getpixel((50, 50)), out.convert("RGB").getpixel((150, 50))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert near(right, WHITE, 8)
    assert near(left, RED if mode == "RGBA" else (76, 76, 76), 12)


def test_palette_png_with_and_without_transparency() -> None:
    base = Image.new("RGB", (120, 60), BLUE)
    base.paste(RED, (60, 0, 120, 60))
    palette = base.quantize(4)
    out = assert_clean_output(normalise(encode(palette, "PNG"), SETTINGS))
    assert near(corner_colours(out)[0], BLUE) and near(corner_colours(out)[1], RED)
    index = palette.getpixel((100, 10))
    see_through = encode(palette, "PNG", transparency=index)
    out = assert_clean_output(normalise(see_through, SETTINGS))
    assert near(corner_colours(out)[0], BLUE) and near(corner_colours(out)[1], WHITE, 8)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    grey16 = Image.linear_gradient("L").resize((64, 256)).convert("I").point(lambda v: v * 257)
    data = encode(grey16.convert("I;16"), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = assert_clean_output(normalise(data, SETTINGS))
    assert out.mode == "L"
    top, middle, bottom = (out.getpixel((32, y)) for y in (2, 128, 253))
    assert isinstance(top, int) and isinstance(middle, int) and isinstance(bottom, int)
    assert top < 8 and 118 < middle < 138 and bottom > 245


def test_bilevel_png_becomes_greyscale() -> None:
    im = Image.new("1", (64, 64), 1)
    out = assert_clean_output(normalise(encode(im, "PNG"), SETTINGS))
    assert out.mode == "L" and out.getpixel((10, 10)) == 255


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (800, 600), (0, 255, 255, 0))  # red ink
    result = normalise(encode(cmyk), SETTINGS)
    out = assert_clean_output(result)
    assert out.mode == "RGB" and near(corner_colours(out)[0], RED)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_icc_profile_is_applied_then_dropped(fmt: str) -> None:
    im = Image.new("RGB", (64, 64), (255, 0, 0))
    data = encode(im, fmt, icc_profile=swapped_rgb_profile())
    assert Image.open(io.BytesIO(data)).info.get("icc_profile")
    out = assert_clean_output(normalise(data, SETTINGS))
    assert near(corner_colours(out)[0], (0, 255, 0)), "colour-managed: the profile says green"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_grey_icc_profile_is_applied_and_stays_grey(fmt: str) -> None:
    data = encode(Image.new("L", (64, 64), 128), fmt, icc_profile=linear_grey_profile())
    out = assert_clean_output(normalise(data, SETTINGS))
    assert out.mode == "L"
    value = out.getpixel((10, 10))
    assert isinstance(value, int) and abs(value - 188) <= 2  # linear 128 in sRGB


def test_broken_icc_profile_is_ignored() -> None:
    data = encode(Image.new("RGB", (64, 64), RED), icc_profile=b"not a profile" * 20)
    out = assert_clean_output(normalise(data, SETTINGS))
    assert near(corner_colours(out)[0], RED)


def test_metadata_is_stripped() -> None:
    data = encode(
        photo((400, 300)),
        exif=exif_with(1, gps=True),
        comment=b"OFFICER NOTES: DO NOT STORE",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS 41N 87W</x:xmpmeta>',
        icc_profile=swapped_rgb_profile(),
        dpi=(300, 300),
    )
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(0x8825), "the input really carries GPS"
    assert {"comment", "xmp", "icc_profile"} <= set(source.info)
    result = normalise(data, SETTINGS)
    assert_clean_output(result)
    for leak in (b"Exif", b"OFFICER", b"xmpmeta", b"ICC_PROFILE", b"ACME"):
        assert leak not in result.data
    assert not result.passthrough


def test_same_input_same_bytes() -> None:
    for data in (encode(photo((1600, 1200)), quality=95), encode(photo((700, 900)), "PNG")):
        first, second = normalise(data, SETTINGS), normalise(data, SETTINGS)
        assert first == second


def test_output_is_itself_conforming() -> None:
    result = normalise(encode(photo((1600, 1200))), SETTINGS)
    again = normalise(result.data, SETTINGS)
    assert again.passthrough and again.data == result.data and again.sha256 == result.sha256


def test_conforming_jpeg_passes_through_unchanged() -> None:
    for mode in ("RGB", "L"):
        data = encode(photo((300, 400), mode), quality=85)
        result = normalise(data, SETTINGS)
        assert result.passthrough
        assert result.data is data
        assert (result.width, result.height) == (300, 400)
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        assert result.quality is None


@pytest.mark.parametrize(
    "params",
    [
        {"progressive": True},
        {"comment": b"hello"},
        {"exif": exif_with(1)},
        {"icc_profile": swapped_rgb_profile()},
        {"xmp": b"<x/>"},
    ],
    ids=["progressive", "comment", "exif", "icc", "xmp"],
)
def test_small_jpeg_with_something_extra_is_redone(params: dict[str, object]) -> None:
    result = normalise(encode(photo((300, 400)), **params), SETTINGS)
    assert not result.passthrough
    assert_clean_output(result)


def test_small_cmyk_or_oversize_jpeg_is_redone() -> None:
    cmyk = encode(Image.new("CMYK", (100, 100), (0, 255, 255, 0)))
    assert not normalise(cmyk, SETTINGS).passthrough
    big = encode(photo((480, 600)), quality=100)
    assert len(big) > SETTINGS.max_output_bytes
    result = normalise(big, SETTINGS)
    assert not result.passthrough and len(result.data) <= SETTINGS.max_output_bytes


def test_quality_steps_down_until_it_fits() -> None:
    tight = replace(SETTINGS, max_output_bytes=20_000)
    result = normalise(encode(photo((960, 1200)), quality=95), tight)
    assert_clean_output(result, tight)
    assert result.quality is not None and tight.quality_min <= result.quality < 90
    assert (result.width, result.height) == (480, 600)
    # the next quality up would not have fitted
    im = Image.open(io.BytesIO(result.data))
    bigger = encode(im, quality=result.quality + 1, optimize=True, subsampling="4:2:0")
    assert len(bigger) > 20_000


def test_shrinks_when_the_lowest_quality_is_still_too_big() -> None:
    tight = replace(SETTINGS, max_output_bytes=4096, quality_min=60)
    noise = Image.merge("RGB", [Image.effect_noise((480, 600), 120)] * 3)
    result = normalise(encode(noise, "PNG"), tight)
    assert_clean_output(result, tight)
    assert result.quality == 60
    assert result.width < 480 and result.height < 600
    assert abs(result.width / result.height - 480 / 600) < 0.02


def test_mpo_camera_file_is_read_as_its_first_image() -> None:
    first, second = quadrants((800, 600)), Image.new("RGB", (800, 600), BLUE)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out = assert_clean_output(normalise(data, SETTINGS))
    assert near(corner_colours(out)[0], RED)


def test_thumbnail_is_small_upright_and_clean() -> None:
    upright = quadrants((900, 1200))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    data = thumbnail(encode(stored, exif=exif_with(6, gps=True), comment=b"x"))
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.size == (90, 120)
    assert "exif" not in im.info and "comment" not in im.info and "progressive" not in im.info
    assert near(corner_colours(im)[0], RED)
    assert Image.open(io.BytesIO(thumbnail(data, (40, 40)))).size == (30, 40)


def test_thumbnail_rejects_what_normalise_rejects() -> None:
    with pytest.raises(ImageRejected) as info:
        thumbnail(b"GIF89a" + b"\0" * 100)
    assert info.value.code == "IMAGE_INVALID"
