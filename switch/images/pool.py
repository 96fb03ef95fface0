"""Run `normalise` from asyncio code, on worker processes, each image within a time budget.

    async with ImagePool(settings.images) as pool:
        image = await pool.normalise(data)   # NormalisedImage, or raises ImageRejected

With `pool_size == 0` the work runs in the calling process (blocking the event loop for
as long as a photo takes, with no time budget). Otherwise the headers are checked here
first (cheap: they refuse what is malformed or would need more memory than the budget
to decode), and everything else, a conforming JPEG included (it is decoded once to
check it), is sized by a worker. At most `pool_size` images are handed to the workers
at once, so each starts as soon as it is handed over and its time can be measured from
here: an image still running after `time_budget_s` is refused, and the workers are
killed (a ProcessPoolExecutor cannot cancel a running call) and replaced by fresh ones.
The other images that were running on them are tried again; that does not count
against them. Workers are started with "spawn" (no fork of a process that may hold
threads and sockets), ignore Ctrl-C (the parent stops them), and exit if the parent
dies without stopping them (kill -9).
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from PIL import Image

from switch.images.checks import inspect
from switch.images.errors import invalid, too_large
from switch.images.pipeline import NormalisedImage, normalise
from switch.settings import ImageSettings

_worker_settings: ImageSettings | None = None


def _init_worker(settings: ImageSettings) -> None:
    global _worker_settings
    _worker_settings = settings
    _first_image()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _first_image() -> None:
    """Size a tiny PNG once, so that Pillow's plugins and codecs are loaded before the
    worker's first real image (whose time is counted) and not during it."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, "PNG")
    assert _worker_settings is not None
    normalise(buffer.getvalue(), _worker_settings)


def _exit_with(parent_sentinel: int) -> None:
    """Leave no orphan behind when the parent is killed without stopping the pool."""
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


def _ready() -> int:
    assert _worker_settings is not None, "worker started without settings"
    return os.getpid()


def _normalise_in_worker(data: bytes) -> NormalisedImage:
    assert _worker_settings is not None, "worker started without settings"
    return normalise(data, _worker_settings)


class ImagePool:
    """`normalise` on `settings.pool_size` worker processes (in-process when 0).

    Use as an async context manager, or call `start()` and `stop()`. A worker that dies on
    its own (a decoder crash on hostile bytes) breaks the pool: it is replaced and the
    image tried once more; if that kills it too, the image is rejected as IMAGE_INVALID.
    """

    def __init__(self, settings: ImageSettings) -> None:
        self._settings = settings
        self._executor: ProcessPoolExecutor | None = None
        self._warm: asyncio.Future[None] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._killed: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()
        self.timeouts = 0

    @property
    def settings(self) -> ImageSettings:
        return self._settings

    def worker_pids(self) -> list[int]:
        """The pids of the current workers (for tests and diagnostics)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]

    async def start(self) -> None:
        """Start the workers (all at once, so the first photo does not wait for them);
        returns before they are up: the first image waits for them if it must."""
        if self._settings.pool_size == 0 or self._executor is not None:
            return
        self._slots = asyncio.Semaphore(self._settings.pool_size)
        self._executor = self._new_executor()
        self._warm = asyncio.ensure_future(self._warm_up(self._executor))

    async def ready(self) -> None:
        """Wait until the workers are up."""
        if self._warm is not None:
            await asyncio.shield(self._warm)

    async def stop(self) -> None:
        if self._warm is not None and not self._warm.done():
            self._warm.cancel()
            try:
                await self._warm
            except (asyncio.CancelledError, Exception):
                pass
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> ImagePool:
        await self.start()
        await self.ready()
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
        inspect(data, self._settings)  # header refusals never cross to a worker
        if self._slots is None:
            raise RuntimeError("ImagePool is not started (use 'async with' or start())")
        crashes = 0
        async with self._slots:
            while True:
                warm = self._warm
                if warm is None:
                    raise RuntimeError("ImagePool is stopped")
                try:
                    await asyncio.shield(warm)  # the workers are up (again)
                except BrokenProcessPool:  # fresh workers died starting
                    crashes += 1
                    if crashes >= 2:
                        raise invalid("DECODER CRASHED") from None
                    if warm is self._warm and self._executor is not None:
                        self._replace(self._executor, kill=False)
                    continue
                executor = self._executor
                if warm is not self._warm or executor is None:
                    continue  # replaced meanwhile, or stopped
                try:
                    future = executor.submit(_normalise_in_worker, data)
                    return await asyncio.wait_for(asyncio.wrap_future(future), self._settings.time_budget_s)
                except TimeoutError:
                    self.timeouts += 1
                    self._replace(executor, kill=True)
                    raise too_large(f"SIZING TOOK LONGER THAN {self._settings.time_budget_s:g} S") from None
                except BrokenProcessPool:
                    if executor in self._killed:
                        continue  # killed because another image overran its time: not this one's fault
                    crashes += 1  # a worker died on this image or on one beside it
                    self._replace(executor, kill=False)
                    if crashes >= 2:
                        raise invalid("DECODER CRASHED") from None

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._settings.pool_size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._settings,),
        )

    async def _warm_up(self, executor: ProcessPoolExecutor) -> None:
        # One call per worker at once: the pool spawns a process while none is idle, and an
        # image's time is counted only once its worker is there.
        loop = asyncio.get_running_loop()
        calls = [loop.run_in_executor(executor, _ready) for _ in range(self._settings.pool_size)]
        await asyncio.gather(*calls)

    def _replace(self, executor: ProcessPoolExecutor, *, kill: bool) -> None:
        """Replace `executor` by a fresh one (the first caller to get here does); with
        `kill`, kill its workers first: whatever they run fails with BrokenProcessPool.

        The new workers are spawned only once the old executor is shut down: spawning
        while another thread closes the old one's pipes can fail with EBADF. Images wait
        for `_warm`, which covers both."""
        if self._executor is not executor:
            return
        if kill:
            self._killed.add(executor)
            # ProcessPoolExecutor has no public way to stop a running call before 3.14.
            processes = getattr(executor, "_processes", None) or {}
            for process in list(processes.values()):
                if process.is_alive():
                    process.kill()
        self._warm = asyncio.ensure_future(self._renew(executor))

    async def _renew(self, old: ProcessPoolExecutor) -> None:
        await asyncio.to_thread(old.shutdown, wait=True, cancel_futures=True)
        if self._executor is not old:
            return  # stopped meanwhile
        self._executor = self._new_executor()
        await self._warm_up(self._executor)
