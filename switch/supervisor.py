"""`switch up --instances N`: the stages as separate `switch run` child processes.

Each child is one component, one instance: N routers (`--instance 0..N-1`), N
correlators, N LEADS and N NCIC (the services share the work by partition: their stores
are per partition, services/stores.py). The parent restarts a child that dies (with a backoff;
the same instance id, so the new process fences its predecessor's transactions), stops
them all on Ctrl-C or SIGTERM (SIGTERM, then SIGKILL after a grace period), and leaves no
orphan: each child is also asked by the kernel to die with its parent
(PR_SET_PDEATHSIG), so even a `kill -9` of `switch up` takes them down. The children's
log lines go to stderr prefixed with `[name.instance]`. With metrics on
(SWITCH_METRICS_PORT=base), each child serves its own on base + its index in
`child_specs` (LEADS base, NCIC base+1, then correlator i base+2+2i, router i base+3+2i,
then LEADS i and NCIC i, i >= 1, after them); the parent serves none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from switch.logs import get_logger
from switch.metrics import instance_port
from switch.settings import Settings

GRACE_S = 20.0  # after SIGTERM, before SIGKILL
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
log = get_logger("supervisor")


@dataclass(frozen=True)
class ChildSpec:
    component: str
    instance: str

    @property
    def label(self) -> str:
        return f"{self.component}.{self.instance}"

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "switch.cli.main", "run", self.component]
        args += ["--instance", self.instance]
        return args


def child_specs(instances: int) -> list[ChildSpec]:
    """LEADS first (it publishes the record directory), then NCIC, then N of each stage,
    then the other LEADS and NCIC instances (so the first children keep their ports)."""
    if instances < 1:
        raise ValueError("--instances: at least 1")
    specs = [ChildSpec("leads", "0"), ChildSpec("ncic", "0")]
    for i in range(instances):
        specs += [ChildSpec("correlator", str(i)), ChildSpec("router", str(i))]
    for i in range(1, instances):
        specs += [ChildSpec("leads", str(i)), ChildSpec("ncic", str(i))]
    return specs


def child_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        SWITCH_HOME=str(settings.home),
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
        SWITCH_TOPIC_PREFIX=settings.topics.prefix,
    )
    env.pop("SWITCH_INSTANCE", None)  # each child is told its own
    if settings.metrics_port:
        env["SWITCH_METRICS_HOST"] = settings.metrics_host
    return env


def child_envs(settings: Settings, specs: list[ChildSpec],
               base: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Each child's environment: the common one, and its own metrics port (base + index)."""
    common = child_env(settings, base)
    envs = []
    for i, _spec in enumerate(specs):
        env = dict(common)
        port = instance_port(settings.metrics_port, i)
        env["SWITCH_METRICS_PORT"] = str(port or 0)
        envs.append(env)
    return envs


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    def __init__(self, spec: ChildSpec, env: dict[str, str]) -> None:
        self.spec = spec
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.argv(), env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops them in order
        )

    async def pump(self) -> None:
        """Copy the child's lines to stderr, prefixed; notice its readiness."""
        assert self.proc is not None and self.proc.stdout is not None
        prefix = f"[{self.spec.label}] ".encode()
        while line := await self.proc.stdout.readline():
            if b"router ready" in line or b"service ready" in line or b"restored" in line:
                self.ready.set()
            sys.stderr.buffer.write(prefix + line)
            sys.stderr.buffer.flush()


async def supervise_children(
    settings: Settings, instances: int, stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
    children: list[Child] | None = None,
) -> None:
    """Run the children until `stop`. `children`, if given, is filled with them."""
    specs = child_specs(instances)
    if children is None:
        children = []
    children.extend(Child(spec, env) for spec, env in zip(specs, child_envs(settings, specs),
                                                           strict=True))
    tasks = [asyncio.create_task(_keep(c, stop)) for c in children]
    waiter = asyncio.create_task(_all_ready(children, stop, on_ready))
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        waiter.cancel()
        for t in tasks:
            if not t.done():
                t.cancel()
        await _stop_all(children)


async def _all_ready(children: list[Child], stop: asyncio.Event,
                     on_ready: Callable[[], None] | None) -> None:
    routers = [c for c in children if c.spec.component == "router"]
    await asyncio.gather(*(c.ready.wait() for c in routers))
    if on_ready and not stop.is_set():
        on_ready()


async def _keep(child: Child, stop: asyncio.Event) -> None:
    """Run the child until `stop`; restart it when it exits on its own."""
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        await child.start()
        assert child.proc is not None
        pump = asyncio.create_task(child.pump())
        exited = asyncio.create_task(child.proc.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not exited.done():
            return  # stop: _stop_all ends it
        await pump
        if stop.is_set():
            return
        if time.monotonic() - started > 60:
            failures = 0
        delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
        failures += 1
        child.restarts += 1
        log.error("child exited; restarting", child=child.spec.label,
                  returncode=child.proc.returncode, restart_in_s=delay)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def _stop_all(children: list[Child]) -> None:
    live = [c.proc for c in children if c.proc is not None and c.proc.returncode is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), GRACE_S)
    except TimeoutError:
        for p in live:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        await asyncio.gather(*(p.wait() for p in live))
