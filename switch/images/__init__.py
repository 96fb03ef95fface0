"""Image pipeline: fit a mugshot into the boundary box as a clean baseline JPEG.

Pure functions (no Kafka). `normalise` is the whole step; `ImagePool` runs it on a
process pool from asyncio code; `thumbnail` makes console previews.
"""

from __future__ import annotations

from switch.images.errors import ImageRejected
from switch.images.pipeline import NormalisedImage, normalise
from switch.images.pool import ImagePool
from switch.images.thumbnail import thumbnail

__all__ = ["ImagePool", "ImageRejected", "NormalisedImage", "normalise", "thumbnail"]
