"""Small JPEGs for the operator console, made with the same checks as stored images."""

from __future__ import annotations

from switch.images.checks import inspect
from switch.images.pipeline import decode_fitted, encode_jpeg
from switch.settings import ImageSettings

THUMBNAIL_SIZE = (96, 120)
THUMBNAIL_QUALITY = 80


def thumbnail(
    data: bytes,
    size: tuple[int, int] = THUMBNAIL_SIZE,
    *,
    settings: ImageSettings | None = None,
) -> bytes:
    """A baseline JPEG fitted inside `size`, upright, without metadata.

    Input limits come from `settings` (defaults when omitted); raises ImageRejected.
    """
    settings = settings or ImageSettings()
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"thumbnail size {size}: each side at least 1")
    header = inspect(data, settings)
    return encode_jpeg(decode_fitted(data, header, settings, size), THUMBNAIL_QUALITY)
