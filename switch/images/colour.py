"""Pixels to 8-bit sRGB or greyscale: alpha flattened on white, ICC profiles applied.

Greyscale stays greyscale (mode L); everything else becomes RGB. A malformed or
mismatched ICC profile is ignored (the pixels are taken as sRGB) rather than rejected:
the stored image is the same for everyone either way.
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms

from switch.images.errors import invalid

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def to_srgb(im: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """`im` as mode L or RGB, in sRGB; the source ICC profile passed separately."""
    im = _eight_bit_no_alpha(im)
    if icc_profile:
        transform = _transform_to_srgb(bytes(icc_profile), im.mode)
        if transform is not None:
            converted = transform.apply(im)
            im = converted.convert("L") if im.mode == "L" else converted
    if im.mode == "CMYK":
        im = im.convert("RGB")
    return im


def _eight_bit_no_alpha(im: Image.Image) -> Image.Image:
    """L, RGB or CMYK, 8 bits a channel, transparency composited on white."""
    mode = im.mode
    if mode in ("L", "RGB") and "transparency" in im.info:
        return _on_white(im.convert("LA" if mode == "L" else "RGBA"))
    if mode in ("L", "RGB", "CMYK"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode in _SIXTEEN_BIT:
        # convert("L") would clip at 255; scale 0..65535 onto 0..255, rounding.
        return im.convert("I").point(lambda v: v * (1 / 257) + 0.5).convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return _on_white(im.convert("RGBA")) if has_alpha else im.convert("RGB")
    if mode in ("LA", "La", "RGBA", "RGBa"):
        return _on_white(im)
    if mode in ("YCbCr", "RGBX"):
        return im.convert("RGB")
    raise invalid(f"UNSUPPORTED PIXEL MODE {mode}")


def _on_white(im: Image.Image) -> Image.Image:
    colour = "L" if im.mode in ("LA", "La") else "RGB"
    if im.mode in ("La", "RGBa"):  # premultiplied: undo before compositing
        im = im.convert("LA" if colour == "L" else "RGBA")
    background = Image.new(colour, im.size, "white")
    background.paste(im.convert(colour), mask=im.getchannel("A"))
    return background


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """Built once per distinct profile (cameras and scanners repeat theirs)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return ImageCms.buildTransform(source, _SRGB, mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
