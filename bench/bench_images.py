"""Images per second through the image pipeline (a script, not a test).

    .venv/bin/python bench/bench_images.py [--seconds 3] [--sizes]

Measures a camera-sized JPEG (4000 x 3000, generated: blurred shapes, texture and
sensor-like grain, so it compresses like a photograph to about 3 MB) and an image that
already conforms (decoded once to check its data, then passed through), first in this
process, then on an ImagePool of one worker (the default) and of two. "headers only" is
what passing a conforming JPEG through cost before it was decoded. `--sizes` adds the
camera case at other compressed sizes: the cost is dominated by libjpeg's entropy
decoding, which draft mode cannot skip, so it grows with the file's bytes rather than
its pixels.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import PIL
from PIL import Image, ImageDraw, ImageFilter

from switch.images import ImagePool, normalise
from switch.images.checks import inspect
from switch.settings import ImageSettings

CAMERA = (4000, 3000)


def camera_photo(grain: int, size: tuple[int, int] = CAMERA, seed: int = 7) -> bytes:
    """A photo-like JPEG: soft shapes, fine texture, grain. More grain, more bytes."""
    rng = random.Random(seed)
    w, h = size
    small = (w // 8, h // 8)
    gradient = Image.linear_gradient("L")
    base = Image.merge(
        "RGB",
        (
            gradient.resize(small),
            Image.radial_gradient("L").resize(small),
            gradient.rotate(90).resize(small),
        ),
    )
    draw = ImageDraw.Draw(base)
    for _ in range(300):
        x, y, r = rng.randrange(small[0]), rng.randrange(small[1]), rng.randrange(5, small[0] // 6)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    im = base.filter(ImageFilter.GaussianBlur(2)).resize(size, Image.Resampling.BICUBIC)
    texture = Image.effect_noise(size, 64).filter(ImageFilter.GaussianBlur(1.2))
    im = Image.blend(im, Image.merge("RGB", (texture,) * 3), 0.25)
    noise = Image.effect_noise(size, grain)
    im = Image.blend(im, Image.merge("RGB", (noise,) * 3), 0.2)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def rate(work: Callable[[], object], seconds: float) -> tuple[float, float]:
    """Calls per second of wall time, and per second of this process's CPU time.

    The second is the one-core figure even when other work shares the machine.
    """
    work()  # warm caches (plugins, colour transforms)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        count += 1
    return count / elapsed, count / (time.process_time() - cpu)


async def pool_rate(work: Callable[[], Awaitable[object]], seconds: float, in_flight: int) -> float:
    count = 0
    start = time.perf_counter()

    async def lane() -> None:
        nonlocal count
        while time.perf_counter() - start < seconds:
            await work()
            count += 1

    await work()
    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return count / (time.perf_counter() - start)


async def measure_pool(settings: ImageSettings, camera: bytes, sized: bytes, seconds: float) -> None:
    async with ImagePool(settings) as pool:
        r = await pool_rate(lambda: pool.normalise(camera), seconds, in_flight=4)
        print(f"  camera JPEG, pool of {settings.pool_size}:      {r:8.1f} images/s")
        r = await pool_rate(lambda: pool.normalise(sized), seconds, in_flight=4)
        print(f"  conforming JPEG, pool of {settings.pool_size}:  {r:8.1f} images/s (decoded by a worker)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--sizes", action="store_true", help="also time cameras of other file sizes")
    args = parser.parse_args()

    settings = ImageSettings()
    print(
        f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, "
        f"Python {sys.version.split()[0]}, Pillow {PIL.__version__}"
    )
    camera = camera_photo(grain=24)
    result = normalise(camera, settings)
    sized = result.data
    assert normalise(sized, settings).passthrough
    print(
        f"camera JPEG: {CAMERA[0]}x{CAMERA[1]}, {len(camera) / 1e6:.2f} MB"
        f" -> {result.width}x{result.height}, {len(sized)} bytes, quality {result.quality}"
    )
    print("one process:")
    r, c = rate(lambda: normalise(camera, settings), args.seconds)
    print(f"  camera JPEG:               {r:8.1f} images/s ({c:.1f} per CPU-second, {1000 / c:.1f} ms each)")
    r, c = rate(lambda: normalise(sized, settings), args.seconds)
    print(f"  conforming JPEG:           {r:8.1f} images/s ({c:.0f} per CPU-second, passthrough)")
    r, c = rate(lambda: inspect(sized, settings), args.seconds)
    print(f"  conforming, headers only:  {r:8.1f} images/s ({c:.0f} per CPU-second, not decoded)")
    for size in (1, 2):
        asyncio.run(measure_pool(replace(settings, pool_size=size), camera, sized, args.seconds))

    if args.sizes:
        print("camera JPEG by file size, one process:")
        for grain in (4, 12, 24, 48, 96):
            data = camera_photo(grain=grain)
            r, c = rate(functools.partial(normalise, data, settings), args.seconds)
            print(
                f"  {len(data) / 1e6:5.2f} MB: {r:6.1f} images/s ({c:.1f} per CPU-second), "
                f"{c * len(data) / 1e6:4.0f} MB of JPEG per CPU-second"
            )
    return 0


if __name__ == "__main__":  # the pool's workers are spawned and import this module
    sys.exit(main())
