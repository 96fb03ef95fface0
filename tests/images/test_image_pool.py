"""ImagePool: the same results as normalise, in-process or on worker processes."""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import replace

import pytest

from switch.images import ImagePool, ImageRejected, normalise
from tests.images.samples import SETTINGS, encode, photo

POOLED = replace(SETTINGS, pool_size=2)


@functools.cache
def samples() -> tuple[bytes, ...]:
    return (
        encode(photo((1600, 1200)), quality=92),
        encode(photo((700, 900)), "PNG"),
        encode(photo((300, 400)), quality=85),  # conforming: never leaves this process
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


async def test_pool_size_zero_runs_in_process() -> None:
    async with ImagePool(SETTINGS) as pool:
        assert pool._executor is None
        result = await pool.normalise(samples()[1])
    assert not result.passthrough


async def test_unstarted_pool_says_so() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await ImagePool(POOLED).normalise(samples()[0])
