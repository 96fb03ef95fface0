"""Synthetic mugshot-like JPEGs of a chosen size, made with Pillow (never fetched). Pure.

A picture is a head-and-shoulders scene (gradient backdrop, face, shirt) with seeded
noise blended in: the noise share sets how well the JPEG compresses, so a bisection on
it hits a byte size to within a few per cent. Sizes are grouped in buckets on a
logarithmic scale (12 % apart) and a few variants are kept per bucket, so a traffic
file of thousands of photos needs only tens of encodes.

Up to about 60 KB a photo is 480 x 600 (the default box), a baseline JPEG with nothing
but a JFIF header: what an operator who "sized the photo" (bulletin step 3) sends, and
what the switch stores as it is. Larger targets are larger pictures (camera-like), which
the switch must decode and shrink; smaller ones are smaller pictures.
"""

from __future__ import annotations

import base64
import io
import math
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFilter

BUCKET_RATIO = 1.12
BOX = (480, 600)
SMALL_UNDER_KB = 8.0
BOXED_UP_TO_KB = 60.0
TOLERANCE = 0.05
QUALITY = 85


def bucket_of(kb: float) -> int:
    """The bucket of a size in KB (1 KB and up)."""
    return round(math.log(max(1.0, kb)) / math.log(BUCKET_RATIO))


def bucket_kb(bucket: int) -> float:
    return float(BUCKET_RATIO**bucket)


def _dims_for(kb: float) -> tuple[int, int]:
    if kb < 3.0:
        return 120, 150
    if kb < SMALL_UNDER_KB:
        return 240, 300
    if kb <= BOXED_UP_TO_KB:
        return BOX
    scale = math.sqrt(kb / 40.0)  # ~40 KB at a mid noise share in the box
    return int(BOX[0] * scale) // 8 * 8, int(BOX[1] * scale) // 8 * 8


def _scene(size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    backdrop = Image.new("RGB", size, tuple(rng.randrange(60, 200) for _ in range(3)))
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    im = Image.blend(backdrop, gradient, 0.3)
    d = ImageDraw.Draw(im)
    skin = (rng.randrange(120, 230), rng.randrange(90, 190), rng.randrange(70, 160))
    cx = w // 2 + rng.randrange(-w // 12, w // 12 + 1)
    d.ellipse([cx - w * 0.22, h * 0.18, cx + w * 0.22, h * 0.62], fill=skin)
    d.rectangle([cx - w * 0.4, h * 0.7, cx + w * 0.4, h],
                fill=tuple(rng.randrange(0, 120) for _ in range(3)))
    eye = (rng.randrange(0, 80),) * 3
    for dx in (-0.08, 0.08):
        ex, ey = cx + w * dx, h * 0.36
        d.ellipse([ex - w * 0.025, ey - h * 0.012, ex + w * 0.025, ey + h * 0.012], fill=eye)
    return im


def _noise(size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    channels = [Image.frombytes("L", size, rng.randbytes(w * h)) for _ in range(3)]
    return Image.merge("RGB", channels).filter(ImageFilter.GaussianBlur(0.7))


def encode_jpeg(im: Image.Image, quality: int = QUALITY) -> bytes:
    """Baseline JPEG with a bare JFIF header (no EXIF, no comment)."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True, progressive=False, subsampling="4:2:0")
    return buf.getvalue()


def make_photo(target_bytes: int, seed: int) -> bytes:
    """A JPEG of about `target_bytes` (within 5 % where the picture size allows)."""
    rng = random.Random(seed)
    size = _dims_for(target_bytes / 1024)
    scene = _scene(size, rng)
    noise = _noise(size, rng)
    lo, hi = 0.0, 1.0
    best = encode_jpeg(scene)
    if len(best) >= target_bytes:
        return best
    for _ in range(14):
        mid = (lo + hi) / 2
        data = encode_jpeg(Image.blend(scene, noise, mid))
        if abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data
        if abs(len(data) - target_bytes) <= TOLERANCE * target_bytes:
            break
        if len(data) < target_bytes:
            lo = mid
        else:
            hi = mid
    return best


@dataclass
class PhotoCache:
    """A few photos per size bucket, made on first use. Ids look like `31k-b30v2`
    (about 31 KB: bucket 30, variant 2). Deterministic: the same seed, the same bytes."""

    seed: int = 1
    variants: int = 4
    images: dict[str, str] = field(default_factory=dict)  # id -> base64
    sizes: dict[str, int] = field(default_factory=dict)  # id -> bytes
    _by_bucket: dict[int, list[str]] = field(default_factory=dict)

    def pick(self, kb: float, rng: random.Random, avoid: set[str] | frozenset[str] = frozenset()) -> str:
        """An image id of about `kb` KB, not one of `avoid` (images active on the record:
        the systems reject a duplicate image). Makes another variant if every one is."""
        bucket = bucket_of(kb)
        ids = self._by_bucket.setdefault(bucket, [])
        while len(ids) < self.variants:
            ids.append(self._make(bucket, len(ids)))
        free = [i for i in ids if i not in avoid]
        if not free:
            ids.append(self._make(bucket, len(ids)))
            return ids[-1]
        return free[int(rng.random() * len(free))]

    def _make(self, bucket: int, variant: int) -> str:
        kb = bucket_kb(bucket)
        image_id = f"{kb:.0f}k-b{bucket}v{variant}"
        data = make_photo(int(kb * 1024), self.seed * 1_000_003 + bucket * 1009 + variant)
        self.images[image_id] = base64.b64encode(data).decode()
        self.sizes[image_id] = len(data)
        return image_id
