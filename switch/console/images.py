"""Saving the images a QIM reply carries, one file per image: `<IMN>-<SYSTEM>.jpg`.

The IMN and system come off the wire, so they are checked before they name a file:
only letters and digits, which every IMN of the domain is, and never a path.
"""

from __future__ import annotations

import re
from pathlib import Path

from switch.contract.messages import ImageRecord, Reply

_SAFE = re.compile(r"[A-Za-z0-9]{1,64}")


def image_filename(image: ImageRecord) -> str | None:
    """`I000012345-NCIC.jpg`, or None when the IMN or system cannot name a file safely."""
    if not (_SAFE.fullmatch(image.imn) and _SAFE.fullmatch(image.system)):
        return None
    return f"{image.imn}-{image.system.upper()}.jpg"


def save_images(reply: Reply, directory: Path) -> dict[tuple[str, str], Path]:
    """Write every image of `reply` that has bytes into `directory`.

    Returns where each went, by (system, imn) as the reply names them.

    A later query of the same IMN overwrites the file: the file is the image as last seen.
    Written to a temporary name first and renamed, so a reader never sees half a JPEG.
    """
    saved: dict[tuple[str, str], Path] = {}
    for image in reply.images:
        name = image_filename(image)
        if name is None or not image.image:
            continue
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        tmp = path.with_suffix(".jpg.part")
        tmp.write_bytes(image.image)
        tmp.replace(path)
        saved[(image.system, image.imn)] = path
    return saved
