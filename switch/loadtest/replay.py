"""Replaying a traffic file against a running switch (`switch replay`): the Kafka half.

Requests go to `switch.requests` at their slots (open model, see schedule.py); replies
are read from `switch.replies` (from its end, positions fixed before the first send, so
none slips past) and matched by mid. Latency runs from a request's slot to the moment
its first, non-supplement reply is read. A step that depends on another is due at its
slot but leaves only once the other's reply is in; the wait is part of its latency and
is also reported on its own. If the other step got no reply within the grace period,
was skipped, or returned no IMN that a placeholder needs, the step is not sent and is
counted as skipped (`skipped-dependency`).

After the last send, replies are awaited for `grace` seconds; those still missing then
are reported, and `switch replay` exits with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from switch.kafka.clients import assign_whole_topic, make_consumer, make_producer
from switch.kafka.replies import reply_batches
from switch.loadtest.schedule import Unresolvable, kafka_key, new_run_id, plan, render
from switch.loadtest.stats import Recorder, describe
from switch.loadtest.traffic import Step, Traffic
from switch.settings import Settings

SKIP_DEPENDENCY = "skipped-dependency"
SKIP_NOT_IN_RUN = "skipped-dependency-not-in-run"


class _Leg(msgspec.Struct):
    status: str = ""
    imn: str | None = None
    ms: float | None = None


class _Reply(msgspec.Struct):
    """The fields of a reply the load tester needs; images and text are skipped unread."""

    mid: str | None = None
    status: str = ""
    supplement: bool = False
    duplicate: bool = False
    legs: dict[str, _Leg] = {}


reply_decoder = msgspec.json.Decoder(_Reply)


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    rate: float | None = None
    count: int | None = None
    duration: float | None = None
    grace: float = 15.0
    arrivals: str = "poisson"
    seed: int = 1
    original_timing: bool = False
    speed: float = 1.0
    run_id: str | None = None
    progress: bool = True
    requests_topic: str | None = None  # default: settings.topics.requests
    replies_topic: str | None = None  # default: settings.topics.replies


@dataclass
class _Inflight:
    step: Step
    slot: float
    sent: float


@dataclass
class _Outcome:
    ok: bool  # a reply came (or none was expected)
    imn: str | None = None


def imn_of(reply: _Reply) -> str | None:
    """The IMN an entry returned: the LEADS leg's (it holds every image), else NCIC's."""
    for system in ("LEADS", "NCIC"):
        leg = reply.legs.get(system)
        if leg is not None and leg.imn and leg.status in ("ACK", "QUEUED"):
            return leg.imn
    return None


class Replayer:
    def __init__(self, settings: Settings, traffic: Traffic, options: ReplayOptions,
                 *, name: str = "", out: TextIO | None = None) -> None:
        self.settings = settings
        self.traffic = traffic
        self.opt = options
        self.name = name
        self.out = out or sys.stderr
        self.run_id = options.run_id or new_run_id()
        self.steps, self.offsets = plan(
            traffic.steps, rate=options.rate, count=options.count, duration=options.duration,
            arrivals=options.arrivals, seed=options.seed,
            original_timing=options.original_timing, speed=options.speed,
        )
        self.requests_topic = options.requests_topic or settings.requests_topic
        self.replies_topic = options.replies_topic or settings.replies_topic
        self.planned = {s.id for s in self.steps}
        self.rec = Recorder()
        self.inflight: dict[str, deque[_Inflight]] = {}
        self.outcomes: dict[str, asyncio.Future[_Outcome]] = {}
        self.imns: dict[str, str | None] = {}
        self.waiting: set[asyncio.Task[None]] = set()
        self.deliveries: set[asyncio.Future[Any]] = set()
        self.t0 = 0.0
        self.first_send: float | None = None
        self.last_send: float | None = None
        self.last_reply: float | None = None
        self.scheduled = 0
        self._sending_done = False
        self._drained = asyncio.Event()  # set when the last awaited reply is in

    # ------------------------------------------------------------------ run

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        producer = make_producer(self.settings)
        consumer = make_consumer(self.settings, group_id=None)
        reader: asyncio.Task[None] | None = None
        progress: asyncio.Task[None] | None = None
        started_at = datetime.now(UTC)
        try:
            await producer.start()
            await consumer.start()
            await assign_whole_topic(consumer, self.replies_topic, from_end=True)
            reader = asyncio.create_task(self._read(consumer))
            if self.opt.progress:
                progress = asyncio.create_task(self._progress())
            self.t0 = loop.time() + 0.05
            await self._send_all(producer)
            if self.waiting:
                await asyncio.gather(*self.waiting, return_exceptions=True)
            if self.deliveries:
                await asyncio.gather(*self.deliveries, return_exceptions=True)
            self._sending_done = True
            await self._await_replies()
        finally:
            for task in (progress, reader):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            for task in list(self.waiting):
                task.cancel()
            await consumer.stop()
            await producer.stop()
        if self.opt.progress:
            self._print_progress(final=True)
        for queue in self.inflight.values():
            for f in queue:
                self.rec.on_missing(f.step.mke, f.step.mid)
        end = loop.time()
        first = self.first_send if self.first_send is not None else self.t0
        last_slot = self.t0 + (self.offsets[-1] if self.offsets else 0.0)
        offered = None
        if not self.opt.original_timing:
            offered = self.opt.rate
        elif len(self.offsets) > 1 and self.offsets[-1] > 0:
            offered = (len(self.offsets) - 1) / self.offsets[-1]
        return self.rec.summary(
            elapsed_s=end - self.t0,
            offered_rate=offered,
            send_span_s=(self.last_send - first) if self.last_send is not None else 0.0,
            reply_span_s=(self.last_reply - first) if self.last_reply is not None else 0.0,
            tail_s=(self.last_reply - last_slot) if self.last_reply is not None else None,
            file=self.name,
            run_id=self.run_id,
            started=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            requests_topic=self.requests_topic,
            planned=len(self.steps),
            arrivals="original" if self.opt.original_timing else self.opt.arrivals,
        )

    # ------------------------------------------------------------------ sending

    async def _send_all(self, producer: AIOKafkaProducer) -> None:
        loop = asyncio.get_running_loop()
        for step, offset in zip(self.steps, self.offsets, strict=True):
            slot = self.t0 + offset
            delay = slot - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.scheduled += 1
            deps = step.dependencies()
            if any(d not in self.planned for d in step.references()):
                self._skip(step, SKIP_NOT_IN_RUN)
                continue
            pending = [self.outcome(d) for d in deps if d in self.planned]
            if any(not f.done() for f in pending):
                task = asyncio.create_task(self._send_after(producer, step, slot, pending))
                self.waiting.add(task)
                task.add_done_callback(self.waiting.discard)
                continue
            await self._send(producer, step, slot, pending, None)

    async def _send_after(self, producer: AIOKafkaProducer, step: Step, slot: float,
                          pending: list[asyncio.Future[_Outcome]]) -> None:
        loop = asyncio.get_running_loop()
        left = slot + self.opt.grace - loop.time()
        try:
            await asyncio.wait_for(asyncio.gather(*(asyncio.shield(f) for f in pending)), max(0.0, left))
        except TimeoutError:
            self._skip(step, SKIP_DEPENDENCY)
            return
        await self._send(producer, step, slot, pending, (loop.time() - slot) * 1000)

    async def _send(self, producer: AIOKafkaProducer, step: Step, slot: float,
                    deps: list[asyncio.Future[_Outcome]], waited_ms: float | None) -> None:
        if any(not f.result().ok for f in deps):
            self._skip(step, SKIP_DEPENDENCY)
            return
        try:
            value, mid = render(step, self.run_id, self.imns, self.traffic.images)
        except Unresolvable:
            self._skip(step, SKIP_DEPENDENCY)
            return
        loop = asyncio.get_running_loop()
        expect = step.expect_reply and mid is not None
        now = loop.time()
        if expect:
            assert mid is not None
            self.inflight.setdefault(mid, deque()).append(_Inflight(step, slot, now))
        try:
            delivery = await producer.send(self.requests_topic, value, key=kafka_key(step))
        except Exception:
            self.rec.send_errors += 1
            if expect:
                assert mid is not None
                self._forget(mid)
            self._resolve(step.id, _Outcome(ok=False))
            return
        sent = loop.time()
        if self.first_send is None:
            self.first_send = sent
        self.last_send = sent
        self.rec.on_sent(step.mke, (now - slot) * 1000, waited_ms)
        self.deliveries.add(delivery)
        delivery.add_done_callback(lambda f, s=step, m=mid, e=expect: self._delivered(f, s, m, e))
        if not expect:
            self.rec.no_reply_expected += 1
            self._resolve(step.id, _Outcome(ok=True))

    def _delivered(self, fut: asyncio.Future[Any], step: Step, mid: str | None, expect: bool) -> None:
        self.deliveries.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self.rec.send_errors += 1
            if expect and mid is not None:
                self._forget(mid)
            self._resolve(step.id, _Outcome(ok=False))

    def _forget(self, mid: str) -> None:
        queue = self.inflight.get(mid)
        if queue:
            queue.pop()
            if not queue:
                del self.inflight[mid]

    def _skip(self, step: Step, reason: str) -> None:
        self.rec.skipped[reason] += 1
        self._resolve(step.id, _Outcome(ok=False))

    def outcome(self, step_id: str) -> asyncio.Future[_Outcome]:
        fut = self.outcomes.get(step_id)
        if fut is None:
            fut = self.outcomes[step_id] = asyncio.get_running_loop().create_future()
        return fut

    def _resolve(self, step_id: str, outcome: _Outcome) -> None:
        fut = self.outcome(step_id)
        if not fut.done():
            fut.set_result(outcome)
        self.imns[step_id] = outcome.imn

    # ------------------------------------------------------------------ replies

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        async for replies in reply_batches(consumer, reply_decoder, timeout_ms=100):
            now = loop.time()
            for reply in replies:
                self._on_reply(reply, now)

    def _on_reply(self, reply: _Reply, now: float) -> None:
        assert reply.mid is not None
        queue = self.inflight.get(reply.mid)
        if reply.supplement:
            if queue is not None or reply.mid.endswith("." + self.run_id):
                self.rec.supplements += 1
            return
        if not queue:
            return
        f = queue.popleft()
        if not queue:
            del self.inflight[reply.mid]
            if not self.inflight and self._sending_done:
                self._drained.set()
        self.last_reply = now
        legs = {s: (leg.status, leg.ms) for s, leg in reply.legs.items()}
        self.rec.on_reply(f.step.mke, (now - f.slot) * 1000, reply.status, legs,
                          duplicate=reply.duplicate)
        self._resolve(f.step.id, _Outcome(ok=True, imn=imn_of(reply)))

    async def _await_replies(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = (self.last_send if self.last_send is not None else loop.time()) + self.opt.grace
        if not self.inflight:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), max(0.0, deadline - loop.time()))

    # ------------------------------------------------------------------ progress

    async def _progress(self) -> None:
        tty = self.out.isatty()
        every = 0.5 if tty else 5.0
        while True:
            await asyncio.sleep(every)
            self._print_progress()

    def _print_progress(self, final: bool = False) -> None:
        tty = self.out.isatty()
        loop = asyncio.get_running_loop()
        elapsed = max(0.0, loop.time() - self.t0)
        sent = sum(self.rec.sent.values())
        waiting = sum(len(q) for q in self.inflight.values())
        lat = describe(self.rec.latency["all"]) if "all" in self.rec.latency else {"count": 0}
        p = (f"p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms" if lat["count"] else "no replies yet")
        phase = "awaiting replies" if self._sending_done and not final else ""
        line = (f"replay {elapsed:6.1f} s  sent {sent}/{len(self.steps)}  replies {self.rec.replies}"
                f"  in flight {waiting}  deps waiting {len(self.waiting)}  {p}  {phase}").rstrip()
        if tty:
            self.out.write("\r\x1b[2K" + line + ("\n" if final else ""))
        elif not final:
            self.out.write(line + "\n")
        self.out.flush()


async def replay(settings: Settings, traffic: Traffic, options: ReplayOptions,
                 *, name: str = "", out: TextIO | None = None) -> dict[str, Any]:
    """Replay `traffic` and return the summary (see stats.Recorder.summary)."""
    return await Replayer(settings, traffic, options, name=name, out=out).run()
