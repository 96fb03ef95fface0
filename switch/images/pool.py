"""Run `normalise` from asyncio code, on a process pool so both cores decode photos.

    async with ImagePool(settings.images) as pool:
        image = await pool.normalise(data)   # NormalisedImage, or raises ImageRejected

With `pool_size == 0` the work runs in the calling process (blocking the event loop for
the few milliseconds a photo takes). Otherwise the headers are checked here first, so
rejections by header and images that pass through unchanged never cross to a worker.
Workers are started with "spawn" (no fork of a process that may hold threads and
sockets) and all at once on `start`, so the first photo does not pay for it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from switch.images.checks import inspect
from switch.images.errors import invalid
from switch.images.pipeline import NormalisedImage, normalise, passthrough
from switch.settings import ImageSettings

_worker_settings: ImageSettings | None = None


def _init_worker(settings: ImageSettings) -> None:
    global _worker_settings
    _worker_settings = settings


def _ready() -> bool:
    return _worker_settings is not None


def _normalise_in_worker(data: bytes) -> NormalisedImage:
    assert _worker_settings is not None, "worker started without settings"
    return normalise(data, _worker_settings)


class ImagePool:
    """`normalise` on `settings.pool_size` worker processes (in-process when 0).

    Use as an async context manager, or call `start()` and `stop()`. A worker that dies
    (a decoder crash on hostile bytes) breaks the pool: it is replaced and the image
    tried once more; if that kills it too, the image is rejected as IMAGE_INVALID.
    """

    def __init__(self, settings: ImageSettings) -> None:
        self._settings = settings
        self._executor: ProcessPoolExecutor | None = None

    @property
    def settings(self) -> ImageSettings:
        return self._settings

    async def start(self) -> None:
        if self._settings.pool_size == 0 or self._executor is not None:
            return
        self._executor = self._new_executor()
        await self._warm_up(self._executor)

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> ImagePool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def normalise(self, data: bytes) -> NormalisedImage:
        """The stored form of `data`; raises ImageRejected."""
        if self._settings.pool_size == 0:
            return normalise(data, self._settings)
        header = inspect(data, self._settings)
        if header.conforming:
            return passthrough(data, header)
        loop = asyncio.get_running_loop()
        for _ in range(2):
            executor = self._executor
            if executor is None:
                raise RuntimeError("ImagePool is not started (use 'async with' or start())")
            try:
                return await loop.run_in_executor(executor, _normalise_in_worker, data)
            except BrokenProcessPool:
                await self._replace(executor)
        raise invalid("DECODER CRASHED")

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._settings.pool_size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._settings,),
        )

    async def _warm_up(self, executor: ProcessPoolExecutor) -> None:
        # One call per worker at once: the pool spawns a process while none is idle.
        loop = asyncio.get_running_loop()
        calls = [loop.run_in_executor(executor, _ready) for _ in range(self._settings.pool_size)]
        await asyncio.gather(*calls)

    async def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:  # the first caller to notice replaces it
            self._executor = self._new_executor()
        await asyncio.to_thread(broken.shutdown, wait=True)
