"""Running the switch's components: one (`switch run X`) or all (`switch up`).

Each component runs under a small supervisor: if it fails (a lost broker connection, a
fenced transaction), it is logged, rebuilt from scratch, and started again; its state
comes back from the topics, so a restart loses and doubles nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.loop import run_service
from services.seeding import seed_stores, stores_empty
from switch.correlator.loop import Correlator
from switch.errors import ConfigError
from switch.kafka.topics import ensure_topics
from switch.logs import get_logger
from switch.metrics import Metrics, serve
from switch.router.loop import Router
from switch.settings import Settings

COMPONENTS = ("leads", "ncic", "correlator", "router")
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
log = get_logger("app")


def component_runner(
    name: str, settings: Settings, ready: asyncio.Event, instance: str = "0",
    metrics: Metrics | None = None,
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """A coroutine function running component `name` once until `stop` is set."""
    # Each component is its own principal when credentials come from a security folder.
    settings = settings.as_principal(name)
    if name in ("leads", "ncic"):
        async def run_svc(stop: asyncio.Event) -> None:
            await run_service(settings, name.upper(), stop=stop, ready=ready, metrics=metrics,
                              instance=instance)
        return run_svc
    stages: dict[str, type[Router] | type[Correlator]] = {"router": Router, "correlator": Correlator}
    if name in stages:
        stage = stages[name]

        async def run_stage(stop: asyncio.Event) -> None:
            component = stage(settings, instance=instance, metrics=metrics)
            task = asyncio.create_task(component.run(stop))
            await _signal_when(component.wait_ready(), ready, task)
            await task
        return run_stage
    raise ValueError(f"unknown component {name!r}; one of {', '.join(COMPONENTS)}")


async def _signal_when(waiter: Awaitable[Any], ready: asyncio.Event, task: asyncio.Task[Any]) -> None:
    w = asyncio.ensure_future(waiter)
    done, _ = await asyncio.wait({w, task}, return_when=asyncio.FIRST_COMPLETED)
    if w in done:
        ready.set()
    else:
        w.cancel()


async def supervise(
    name: str, settings: Settings, stop: asyncio.Event, ready: asyncio.Event,
    instance: str = "0", metrics: Metrics | None = None,
) -> None:
    """Run a component until `stop`, restarting it after a failure."""
    failures = 0
    while not stop.is_set():
        runner = component_runner(name, settings, ready, instance, metrics)
        started = time.monotonic()
        try:
            await runner(stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started > 60:
                failures = 0
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
            failures += 1
            log.error("component failed; restarting", component=name, error=repr(exc),
                      restart_in_s=delay, exc_info=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def prepare(settings: Settings, *, seed_count: int = 1000, seed: int = 1) -> bool:
    """Create topics and seed empty stores. Returns True if it seeded."""
    await ensure_topics(settings)
    if stores_empty(settings):
        entries = seed_stores(settings, seed_count, seed)
        out = settings.home / "records.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        import msgspec

        out.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in entries))
        log.info("seeded", records=len(entries), file=str(out))
        return True
    return False


async def run_components(
    settings: Settings,
    names: tuple[str, ...],
    stop: asyncio.Event,
    *,
    on_ready: Callable[[], None] | None = None,
    instance: str = "0",
    metrics: Metrics | None = None,
) -> None:
    """Run the named components until `stop`. LEADS comes up first: it publishes the record
    directory the router needs. They all count into `metrics` (one registry for the
    process; a fresh, unserved one when not given)."""
    metrics = metrics or Metrics()
    server = None
    if settings.metrics_port:
        try:
            server = serve(metrics, settings.metrics_port, settings.metrics_host)
        except OSError as exc:
            raise ConfigError(f"SWITCH_METRICS_PORT={settings.metrics_port}: cannot serve "
                              f"metrics on {settings.metrics_host}: {exc.strerror}") from None
        log.info("metrics served", url=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    tasks: list[asyncio.Task[None]] = []
    readies: dict[str, asyncio.Event] = {}
    try:
        for name in sorted(names, key=lambda n: 0 if n == "leads" else 1):
            readies[name] = asyncio.Event()
            tasks.append(asyncio.create_task(supervise(name, settings, stop, readies[name], instance,
                                                       metrics),
                                             name=name))
            if name == "leads":
                await _wait_any(readies[name].wait(), stop.wait())
        await _wait_any(asyncio.gather(*(e.wait() for e in readies.values())), stop.wait())
        if on_ready and not stop.is_set():
            on_ready()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        for t in tasks:
            if not t.done():
                try:
                    await asyncio.wait_for(t, 30)
                except (TimeoutError, asyncio.CancelledError):
                    t.cancel()


async def _wait_any(*aws: Awaitable[Any]) -> None:
    futs = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(futs, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in futs:
            if not f.done():
                f.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await f


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
