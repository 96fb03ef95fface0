"""ImagePool: the same results as normalise, in-process or on worker processes; an image
that overruns its time is refused and its worker replaced; workers die with their parent."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from switch.images import ImagePool, ImageRejected, normalise
from tests.images.samples import SETTINGS, encode, photo, png_of_zeros

POOLED = replace(SETTINGS, pool_size=2)
IN_PROCESS = replace(SETTINGS, pool_size=0)


@functools.cache
def samples() -> tuple[bytes, ...]:
    return (
        encode(photo((1600, 1200)), quality=92),
        encode(photo((700, 900)), "PNG"),
        encode(photo((300, 400)), quality=85),  # conforming: decoded once by a worker
    )


async def test_pool_of_two_matches_in_process_results() -> None:
    images = samples()
    expected = [normalise(data, SETTINGS) for data in images]
    async with ImagePool(POOLED) as pool:
        results = await asyncio.gather(*(pool.normalise(data) for data in images * 2))
    assert results == [*expected, *expected]
    assert [r.passthrough for r in expected] == [False, False, True]


async def test_rejection_crosses_the_process_boundary_intact() -> None:
    data = encode(photo((800, 600)), quality=95)
    truncated = data[: len(data) // 2]  # the header is fine: only a worker finds out
    with pytest.raises(ImageRejected) as local:
        normalise(truncated, SETTINGS)
    async with ImagePool(POOLED) as pool:
        with pytest.raises(ImageRejected) as pooled:
            await pool.normalise(truncated)
        with pytest.raises(ImageRejected) as by_header:
            await pool.normalise(b"GIF89a" + bytes(64))
    assert type(pooled.value) is ImageRejected
    assert (pooled.value.code, pooled.value.text) == (local.value.code, local.value.text)
    assert pooled.value.text == "IMAGE INVALID: TRUNCATED JPEG"
    assert by_header.value.code == "IMAGE_INVALID"


async def test_a_dead_worker_is_replaced() -> None:
    data = samples()[0]
    async with ImagePool(POOLED) as pool:
        executor = pool._executor
        assert executor is not None
        with pytest.raises(Exception, match="terminated abruptly"):
            await asyncio.wrap_future(executor.submit(os._exit, 1))
        result = await pool.normalise(data)
        assert pool._executor is not executor
    assert result == normalise(data, SETTINGS)


def test_the_pool_is_on_by_default() -> None:
    assert SETTINGS.pool_size >= 1 and SETTINGS.time_budget_s > 0


async def test_pool_size_zero_runs_in_process() -> None:
    async with ImagePool(IN_PROCESS) as pool:
        assert pool._executor is None
        result = await pool.normalise(samples()[1])
    assert not result.passthrough


async def test_unstarted_pool_says_so() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await ImagePool(POOLED).normalise(samples()[0])


@functools.cache
def slow_png() -> bytes:
    """A few-KB 40 MP RGBA PNG: about a second of decoding and ~500 MB (so only with the
    memory budget lifted, as a stand-in for any image that takes too long)."""
    return png_of_zeros(8000, 5000, colour_type=6)


# A time budget that small photos (a few ms each) meet a hundred times over, so also on a
# busy machine, and that the 40 MP image (1.2 s on a free core, more on a busy one) overruns.
TIMED = replace(POOLED, time_budget_s=0.5, max_decode_bytes=1 << 30)


@functools.cache
def small() -> tuple[bytes, ...]:
    return (encode(photo((240, 300)), "PNG"), samples()[2])


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited but not been reaped


async def test_an_image_over_its_time_is_refused_and_its_worker_replaced() -> None:
    slow = slow_png()
    assert len(slow) < 200_000
    normal = small()
    expected = [normalise(data, SETTINGS) for data in normal]
    async with ImagePool(TIMED) as pool:
        before = pool.worker_pids()
        assert len(before) == 2
        # The slow image and others in flight beside it: only the slow one is refused.
        results = await asyncio.gather(
            pool.normalise(slow), *(pool.normalise(d) for d in normal), return_exceptions=True
        )
        assert isinstance(results[0], ImageRejected), results[0]
        assert results[0].code == "IMAGE_TOO_LARGE"
        assert results[0].text == "IMAGE TOO LARGE: SIZING TOOK LONGER THAN 0.5 S"
        assert results[1:] == expected
        assert pool.timeouts == 1
        # The old workers are gone (killed and reaped), new ones serve the next images.
        await pool.ready()
        assert not any(alive(pid) for pid in before)
        after = pool.worker_pids()
        assert len(after) == 2 and not set(after) & set(before)
        assert await pool.normalise(normal[0]) == expected[0]


async def test_one_worker_refuses_slow_images_one_after_another() -> None:
    async with ImagePool(replace(TIMED, pool_size=1)) as pool:
        results = await asyncio.gather(
            *(pool.normalise(slow_png()) for _ in range(2)), pool.normalise(small()[0]),
            return_exceptions=True,
        )
        assert [getattr(r, "code", None) for r in results[:2]] == ["IMAGE_TOO_LARGE"] * 2
        assert results[2] == normalise(small()[0], SETTINGS)
        assert pool.timeouts == 2


_ORPHAN_SCRIPT = """
import asyncio, sys, time
from dataclasses import replace
from switch.images import ImagePool
from switch.settings import ImageSettings

async def main():
    pool = ImagePool(replace(ImageSettings(), pool_size=2))
    await pool.start()
    await pool.ready()
    print(*pool.worker_pids(), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_workers_exit_when_their_parent_is_killed() -> None:
    proc = subprocess.Popen(  # its resource tracker complains of the kill on stderr: expected
        [sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)
