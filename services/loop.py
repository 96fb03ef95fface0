"""The Kafka loop of a simulated system of record (LEADS or NCIC). Thin: the rules are
in `rules.py`, the controls in `controls.py`.

Records are partitioned: the store of leg partition p holds the records whose LNO
hashes to p (services/stores.py), so any number of instances share the work, each
applying the partitions the consumer group gives it.

Exactly-once effect from at-least-once delivery: each batch of leg requests is applied
in one SQLite transaction per partition (the answers stored with the changes), then the answers and
audit entries are sent, and the consumer offsets are committed only once the broker
has acknowledged all of them. A crash anywhere re-delivers the batch; applying it again
changes nothing and sends the same stored answers (queries excepted: they are answered
afresh, see rules.py).

Simulated latency delays each answer by its own draw; the answers of a batch wait
concurrently, and up to MAX_IN_FLIGHT batches are in flight at once (the next batch is
applied while earlier answers wait out their latency and their acks), so latency does
not serialise throughput. Batches are applied in order, so one record's entries are
too; offsets are committed in order. If a batch's answers cannot be sent, it and every
batch after it are redelivered from their first offsets (only the fetch loop moves
the consumer, after the batches in flight are done). Before partitions are revoked
in a rebalance, the batches in flight are finished and committed.

Controls arrive on the compacted control topic, read from the beginning without a
consumer group, so a restarted service resumes the last mode given to it:
- `down_forward`: the request partitions are paused; entries wait in the topic and are
  applied when the system is `up` again. Queries whose deadline passed meanwhile are
  dropped unanswered (the correlator has answered TIMEOUT for them). The deadline is the
  leg's `timeout_s` from the broker's append time of its record, against the broker's
  clock as estimated from every record read (deadline.py): the `up` command is itself a
  fresh broker timestamp, so the estimate is right when the old queries are fetched.
- `down_drop`: every request is answered UNAVAILABLE at once, without applying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from opentelemetry.trace import Span

from services.changelog import Pending, pending_changes, restore_many, send_changes
from services.controls import DOWN_FORWARD, Controls
from services.deadline import LOG_APPEND_TIME, overdue_s
from services.directory import (
    publish_directory,
    publish_image_owners,
    publish_imn_floor,
    send_image_owner,
)
from services.rules import DeadlinePassed, serve_leg
from services.store import Store, StoreFull
from services.storefull import FullStoreGuard
from services.stores import SystemStores
from switch import tracing
from switch.contract.internal import LegRequest, leg_request_decoder, parse_shared_imn
from switch.contract.messages import (
    Control,
    control_decoder,
    mke_of,
)
from switch.kafka.audit import audit_entry, audit_record
from switch.kafka.brokerclock import BrokerClock
from switch.kafka.clients import QUIET_FETCH_WAIT_MS, make_consumer, make_producer, refresh_metadata
from switch.logs import get_logger
from switch.metrics import LagReporter, Metrics
from switch.settings import Settings

MAX_RECORDS = 500  # per getmany: one SQLite transaction and one commit per batch
MAX_IN_FLIGHT = 4  # batches applied and waiting for their answers to be acknowledged
POLL_MS = 200
DIRECTORY_REFRESH_S = 5.0  # LEADS re-publishes records seeded while it runs
APPLIED_KEEP_S = 7 * 24 * 3600.0  # redeliveries come within minutes; a week is ample
PRUNE_EVERY_S = 3600.0
CONTROL_CATCH_UP_S = 30.0
DRAIN_TIMEOUT_S = 30.0

_encoder = msgspec.json.Encoder()


async def run_service(
    settings: Settings,
    system: str,
    *,
    stop: asyncio.Event | None = None,
    control: Control | None = None,
    controls: Controls | None = None,
    ready: asyncio.Event | None = None,
    wall: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    instance: str = "0",
) -> None:
    """Serve `system`'s leg requests until `stop` is set (or the task is cancelled).

    `control` is applied at start, after the control topic's history; `controls` lets a
    caller (a test) share the controls object and its seeded random source; `ready` is
    set once the service consumes requests (for LEADS: after the directory is out);
    `wall` is this host's wall clock (a test gives a skewed one).
    """
    service = Service(settings, system, controls=controls, wall=wall, metrics=metrics,
                      instance=instance)
    await service.run(stop=stop or asyncio.Event(), control=control, ready=ready)


class Service:
    """One system's service: its store, its clients and the loop that feeds the rules."""

    def __init__(
        self,
        settings: Settings,
        system: str,
        *,
        controls: Controls | None = None,
        wall: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        instance: str = "0",
    ):
        self.settings = settings
        self.instance = instance  # for the logs: the work is shared by partition
        self.metrics = metrics or Metrics()
        self.tracer = tracing.tracer(system.lower())
        # This host's wall clock: for local facts only (dates of entries, `answered`,
        # pruning). Deadlines count on the broker's clock (see deadline.py).
        self.wall = wall
        self.clock = BrokerClock(wall=wall)  # the broker's time: what deadlines count on
        self.system = system.upper()
        if self.system not in ("LEADS", "NCIC"):
            raise ValueError(f"unknown system {system!r}: LEADS or NCIC")
        self.component = self.system.lower()
        self._lag = LagReporter(self.metrics, self.component)
        self.controls = controls or Controls(self.system)
        self.log = get_logger(self.component).bind(instance=instance)
        self.topics = settings.topics
        self.stores: SystemStores | None = None
        self.producer: AIOKafkaProducer | None = None
        self.answered = 0
        self.dropped = 0
        self.unreadable = 0
        self._tail: asyncio.Task[None] | None = None  # the last batch in flight
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._redeliver: dict[TopicPartition, int] = {}  # first offsets to read again
        # The store changelog (changelog.py), per partition: how far into the store's
        # outbox changes were read for sending; the (outbox entry, changelog position)
        # the broker has acknowledged, to be recorded by the store's next transaction;
        # and an epoch bumped when a send fails (acks of sends begun before it don't count).
        self._read_upto: dict[int, int] = {}
        self._acked: dict[int, tuple[int, int | None]] = {}
        self._epoch: dict[int, int] = {}
        self._owned: set[int] = set()  # the partitions whose stores this instance writes
        self.full = FullStoreGuard(self.system, settings.store_dir(self.system), self.log)

    # ------------------------------------------------------------------ lifecycle

    async def run(
        self,
        *,
        stop: asyncio.Event,
        control: Control | None = None,
        ready: asyncio.Event | None = None,
    ) -> None:
        stores = self.stores = SystemStores(self.settings, self.system)
        producer = self.producer = make_producer(self.settings)
        ctl = make_consumer(self.settings, self.topics.control, group_id=None,
                            fetch_max_wait_ms=QUIET_FETCH_WAIT_MS)
        requests = make_consumer(
            self.settings,
            group_id=f"{self.topics.prefix}.{self.component}",
            max_poll_records=MAX_RECORDS,
        )
        requests.subscribe([self.topics.leg_requests(self.system)], listener=_Handover(self))
        tasks: list[asyncio.Task[Any]] = []
        try:
            await producer.start()
            await ctl.start()
            t0 = time.monotonic()
            await self._catch_up_controls(ctl)
            self.log.info("controls read", mode=self.controls.mode,
                          took_s=round(time.monotonic() - t0, 3))
            if control is not None:
                self._apply_control(control, source="argument")
            tasks.append(asyncio.create_task(self._follow_controls(ctl)))
            if self.system == "LEADS":
                floor = await publish_imn_floor(stores, producer, self.topics.imns)
                self.log.info("shared IMN floor published", highest=floor)
                count, last = await publish_directory(stores, producer, self.topics.records)
                images = await publish_image_owners(stores, producer, self.topics.records)
                await producer.flush()
                self.log.info("directory published", records=count, shared_images=images)
                tasks.append(asyncio.create_task(self._refresh_directory(last)))
            await requests.start()
            self.log.info(
                "serving",
                topic=self.topics.leg_requests(self.system),
                mode=self.controls.mode,
                records=stores.record_count(),
                partitions=stores.partitions,
            )
            if ready is not None:
                ready.set()
            await self._serve(requests, stop)
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._drain(), DRAIN_TIMEOUT_S)
            self._record_acked()  # a clean stop leaves every store clean
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # Every client, started or not: an unstopped one warns when collected.
            for client in (requests, ctl, producer):
                with contextlib.suppress(Exception):
                    await client.stop()
            stores.close()
            self.log.info(
                "stopped", answered=self.answered, dropped=self.dropped, unreadable=self.unreadable
            )

    # ------------------------------------------------------------------ controls

    async def _catch_up_controls(self, ctl: AIOKafkaConsumer) -> None:
        """Read the control topic to its end, so the last command given to this system
        holds before the first request is served. The consumer has no group, so it is
        given every partition and starts from the beginning."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONTROL_CATCH_UP_S
        while not ctl.assignment():  # metadata of a just-created topic may lag
            # Without asking, the client waits for its next periodic refresh (minutes).
            with contextlib.suppress(Exception):
                await refresh_metadata(ctl)
            if loop.time() > deadline:
                self.log.warning("control topic not readable yet; serving in the current mode",
                                 topic=self.topics.control)
                return
            await self._read_controls(ctl, POLL_MS)
        ends = await ctl.end_offsets(list(ctl.assignment()))
        while not await self._caught_up(ctl, ends):
            if loop.time() > deadline:
                self.log.warning("control topic not read to its end in time")
                return
            await self._read_controls(ctl, POLL_MS)

    async def _read_controls(self, ctl: AIOKafkaConsumer, timeout_ms: int) -> None:
        batch = await ctl.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            for record in records:
                self._on_control(record)

    @staticmethod
    async def _caught_up(ctl: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await ctl.position(tp) < end:
                return False
        return True

    async def _follow_controls(self, ctl: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._read_controls(ctl, 500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker hiccup must not end the control feed
                self.log.warning("control read failed", error=repr(exc))
                await asyncio.sleep(1.0)

    def _on_control(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self._observe(record)
        if record.value is None:
            return  # a tombstone: nothing to apply
        try:
            control = control_decoder.decode(record.value)
        except msgspec.DecodeError as exc:
            self.log.warning("unreadable control command skipped", error=str(exc),
                             offset=record.offset)
            return
        self._apply_control(control, source="topic")

    def _apply_control(self, control: Control, *, source: str) -> None:
        if self.controls.apply(control):
            s = self.controls.state
            self.log.info(
                "control applied",
                source=source,
                mode=s.mode,
                p50_ms=s.p50_ms,
                p99_ms=s.p99_ms,
                reject_rate=s.reject_rate,
            )

    # ------------------------------------------------------------------ directory

    async def _refresh_directory(self, last: dict[int, int]) -> None:
        assert self.stores is not None and self.producer is not None
        while True:
            await asyncio.sleep(DIRECTORY_REFRESH_S)
            try:
                count, last = await publish_directory(
                    self.stores, self.producer, self.topics.records, after_rowid=last
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("directory refresh failed", error=repr(exc))
                continue
            if count:
                self.log.info("directory refreshed", records=count)

    # ------------------------------------------------------------------ requests

    async def _serve(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        paused = False
        last_prune = float("-inf")  # monotonic: a step of the wall clock neither stops nor floods it
        while not stop.is_set():
            if self._redeliver:
                # Only this loop moves the consumer: wait for the batches in flight,
                # then go back to the first offset not safely answered.
                await self._drain()
                self._rewind(consumer)
                await asyncio.sleep(self.full.pause_s)  # grows while the store is full
                continue
            if self.controls.mode == DOWN_FORWARD:
                # Re-paused every round: a rebalance hands over partitions unpaused.
                consumer.pause(*consumer.assignment())
                if not paused:
                    self.log.info("down, forwarding: requests wait in the topic")
                paused = True
            elif paused:
                consumer.resume(*consumer.assignment())
                paused = False
                self.log.info("up again: applying the requests that waited")
            try:
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
                await self._lag.update(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("fetch failed", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            # A partition new to this instance: its store catches up first, and sends its
            # queued rows (records seeded here), whether or not a request came for it yet
            # (aiokafka may hand over records before its rebalance callback has finished).
            given = {tp.partition for tp in consumer.assignment()} | {tp.partition for tp in batch}
            if new := sorted(given - self._owned):
                await self._take(new)
                # Revoked meanwhile (a rebalance during the restore): taken again if it
                # comes back, since another instance may have written it in between.
                self._owned &= {tp.partition for tp in consumer.assignment()}
                self.log.info("partitions ready", taken=new, owned=sorted(self._owned))
                batch = {tp: rs for tp, rs in batch.items() if tp.partition in self._owned}
            for records in batch.values():  # the broker's clock, before any deadline is judged
                for record in records:
                    self._observe(record)
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                self._prune()
            if not batch:
                continue
            if self.controls.mode == DOWN_FORWARD:
                # Fetched before the pause took hold: leave them for later.
                for tp, records in batch.items():
                    consumer.seek(tp, records[0].offset)
                continue
            await self._slots.acquire()
            self._start_batch(consumer, batch)
        await self._drain()

    def _start_batch(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Apply a batch, then leave its sends and commit to a task, so the next batch
        is applied while this one's answers wait out their latency and their acks."""
        assert self.stores is not None
        started = time.perf_counter()
        starts = {tp: records[0].offset for tp, records in batch.items()}
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        sends: list[Coroutine[Any, Any, None]] = []
        # The answers wait for the broker to have the batch's store changes (changelog.py).
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # One SQLite transaction per partition of the batch (each request in its own
        # savepoint): one disk sync per partition store, and nothing is sent before the
        # changes are durable. If one partition fails, the batch is redelivered whole:
        # what was stored answers again with its stored answers.
        try:
            for tp, records in batch.items():
                p = tp.partition
                store = self.stores.store(p)
                acked = self._acked.get(p)
                with store.transaction():
                    if acked is not None:  # the changes sent before: out of the outbox
                        store.outbox_done(*acked)
                    others = self.stores.others(p)
                    for record in records:
                        sends.extend(self._handle(record, store, others, gate))
                if acked is not None and self._acked.get(p) == acked:
                    del self._acked[p]
        except Exception as exc:  # e.g. the disk is full: nothing applied, nothing sent
            for send in sends:
                send.close()
            structlog.contextvars.clear_contextvars()  # the batch's, not one request's
            if isinstance(exc, StoreFull):
                self.full.failed(exc)  # one clear line, then quiet retries
            else:
                self.log.error("store commit failed; batch will be retried", error=repr(exc))
            self._mark_redeliver(starts)
            self._slots.release()
            return
        finally:
            structlog.contextvars.clear_contextvars()
        self.full.stored(self.stores.wrote)
        pending = {}
        for tp in batch:
            p = tp.partition
            pending[p] = pending_changes(self.stores.store(p), self._read_upto.get(p, 0))
            self._read_upto[p] = pending[p].upto
        changes = asyncio.create_task(self._send_changes(pending, gate))
        applied = time.perf_counter()
        self._tail = asyncio.create_task(
            self._finish(consumer, sends, starts, offsets, self._tail, started, applied, changes)
        )

    async def _send_changes(self, pending: dict[int, Pending], gate: asyncio.Future[None]) -> None:
        """Send a batch's store changes to the changelog; open the gate its answers wait at."""
        assert self.producer is not None
        epochs = {p: self._epoch.get(p, 0) for p in pending}
        topic = self.topics.store_changelog(self.system)
        try:
            parts = [p for p, pend in pending.items() if pend.changes]
            positions = await asyncio.gather(
                *(send_changes(self.producer, topic, p, pending[p].changes) for p in parts))
            acks = dict(zip(parts, positions, strict=True))
        except Exception as exc:
            # Not all of them are in: read every queued change again next time (current
            # values, so sending one twice is harmless), and keep no later ack.
            for p in pending:
                self._epoch[p] = self._epoch.get(p, 0) + 1
                self._read_upto.pop(p, None)
                self._acked.pop(p, None)
            gate.set_exception(exc)
            gate.exception()  # retrieved: _finish reports it (a batch may have no answers)
            raise
        for p, position in acks.items():
            if self._epoch.get(p, 0) == epochs[p]:
                self._acked[p] = (pending[p].upto, position)
        gate.set_result(None)

    def _record_acked(self, partitions: Iterable[int] | None = None) -> None:
        """Drop the acknowledged changes from the stores' outboxes (each in its own
        transaction): a store left this way is clean (changelog.py)."""
        assert self.stores is not None
        for p in list(self._acked if partitions is None else partitions):
            acked = self._acked.pop(p, None)
            if acked is None:
                continue
            try:
                with self.stores.store(p).transaction():
                    self.stores.store(p).outbox_done(*acked)
            except Exception as exc:
                self.log.warning("store changelog position not recorded", partition=p,
                                 error=repr(exc))

    async def _take(self, partitions: list[int]) -> None:
        """These partitions are now this instance's: bring their stores up to date from
        the changelog, then send what their outboxes still hold (records seeded here),
        before any of their leg requests is applied. Retries until done: a stale store
        must not serve."""
        assert self.stores is not None and self.producer is not None
        stores = {p: self.stores.store(p) for p in partitions}
        topic = self.topics.store_changelog(self.system)
        for p in partitions:
            self._read_upto.pop(p, None)
            self._acked.pop(p, None)
        for attempt in range(1_000_000):
            try:
                t0 = time.monotonic()
                restored = await restore_many(self.settings, stores, self.system)
                sent = {}
                for p, store in stores.items():
                    pend = pending_changes(store, 0)
                    position = await send_changes(self.producer, topic, p, pend.changes)
                    with store.transaction():
                        store.outbox_done(pend.upto, position)
                    sent[p] = len(pend.changes)
                break
            except Exception as exc:
                self.log.warning("partition stores not restored yet; retrying",
                                 partitions=partitions, attempt=attempt + 1, error=repr(exc))
                await asyncio.sleep(min(5.0, 0.5 * (attempt + 1)))
        self._owned.update(partitions)
        for p, r in restored.items():
            say = self.log.warning if r.rebuilt else self.log.info
            if r.read or r.rebuilt or sent[p]:
                say("partition store brought up to date", partition=p, read=r.read,
                    rebuilt=r.rebuilt, dropped_unsent=r.dropped, sent=sent[p],
                    took_s=round(time.monotonic() - t0, 3))

    async def _finish(
        self,
        consumer: AIOKafkaConsumer,
        sends: list[Coroutine[Any, Any, None]],
        starts: dict[TopicPartition, int],
        offsets: dict[TopicPartition, int],
        previous: asyncio.Task[None] | None,
        started: float,
        applied: float,
        changes: asyncio.Task[None],
    ) -> None:
        try:
            ok = True
            try:
                await asyncio.gather(changes, *sends)
            except Exception as exc:
                ok = False
                self.log.error("sending answers failed; batch will be redelivered",
                               error=repr(exc))
            sent = time.perf_counter()
            if previous is not None:  # commits go in order
                with contextlib.suppress(Exception):
                    await previous
            if not ok or self._redeliver:
                # This batch, or an earlier one, is not safely answered: redeliver from
                # there. The store answers again with the answers it stored.
                self._mark_redeliver(starts)
                return
            try:
                await consumer.commit(offsets)
            except Exception as exc:
                # A rebalance took the partitions: their next owner re-reads the batch
                # and gets the stored answers. Duplicates of an answer are identical.
                self.log.warning("offset commit failed", error=repr(exc))
            self.log.debug(
                "batch done",
                size=sum(offsets[tp] - starts[tp] for tp in offsets),
                apply_ms=round((applied - started) * 1000, 1),
                send_ms=round((sent - applied) * 1000, 1),
                total_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        finally:
            self._slots.release()

    async def _drain(self) -> None:
        """Wait until every batch in flight is answered and committed (or marked)."""
        tail = self._tail
        if tail is not None:
            with contextlib.suppress(Exception):
                await tail  # each batch waits for the one before it
            if self._tail is tail:
                self._tail = None

    def _mark_redeliver(self, starts: dict[TopicPartition, int]) -> None:
        for tp, offset in starts.items():
            self._redeliver[tp] = min(offset, self._redeliver.get(tp, offset))

    def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        for tp, offset in self._redeliver.items():
            with contextlib.suppress(Exception):  # the partition may have been revoked
                consumer.seek(tp, offset)
        say = self.log.debug if self.full.active else self.log.warning
        say("redelivering", partitions={str(tp): o for tp, o in self._redeliver.items()})
        self._redeliver.clear()

    def _handle(
        self, record: ConsumerRecord[bytes, bytes], store: Store, others: list[Store],
        gate: asyncio.Future[None],
    ) -> list[Coroutine[Any, Any, None]]:
        """Apply one leg request to its partition's store; return the sends it causes
        (answer, audit, and for a shared IMN LEADS entered: the image's owner)."""
        structlog.contextvars.clear_contextvars()
        try:
            leg = leg_request_decoder.decode(record.value or b"")
        except msgspec.DecodeError as exc:
            self.unreadable += 1
            self.log.error(
                "unreadable leg request skipped",
                error=str(exc),
                partition=record.partition,
                offset=record.offset,
            )
            return []
        req = leg.request
        mke = mke_of(req)
        structlog.contextvars.bind_contextvars(cid=leg.cid, mid=req.mid, mke=mke)
        if leg.system.upper() != self.system:
            self.unreadable += 1
            self.log.error("leg request for another system skipped", to=leg.system)
            return []
        # This system's hop in the transaction's trace: from the leg request's append time
        # to its answer being sent (the simulated latency included).
        span = tracing.start(self.tracer, self.system, tracing.parent_of(record.headers),
                             appended_ms=record.timestamp, attributes={
                                 "switch.cid": leg.cid, "switch.mid": req.mid,
                                 "switch.ori": req.ori, "switch.mke": mke,
                                 "switch.system": self.system})
        headers = tracing.headers_of(span)
        # Never `leg.deadline` (the router's wall clock): see deadline.py.
        late = overdue_s(append_ms=record.timestamp, timestamp_type=record.timestamp_type,
                         timeout_s=leg.timeout_s, broker_now=self.clock.now())
        try:
            outcome = serve_leg(store, leg, self.controls, late_s=late, others=others,
                                now=datetime.fromtimestamp(self.wall(), UTC),
                                renewal_days=self.settings.renewal_days)
        except StoreFull:
            span.set_attribute("switch.outcome", "STORE_FULL")
            span.end()
            raise  # the whole batch is rolled back: nothing may be answered (storefull.py)
        if isinstance(outcome, DeadlinePassed):
            self.dropped += 1
            self.log.info("query past its deadline dropped", late_s=round(outcome.late_s, 3))
            span.set_attribute("switch.outcome", "DEADLINE_PASSED")
            span.end()
            return [self._audit(leg, mke, "dropped", headers, outcome="DEADLINE_PASSED")]
        if outcome.failed is not None:  # refused, and the loop goes on
            self.log.error("applying failed", error=repr(outcome.failed), exc_info=outcome.failed)
        applied, delay = outcome.applied, outcome.delay_s
        self.answered += 1
        a = applied.answer
        self.metrics.answers.labels(self.system, a.leg.status).inc()
        self.log.debug(
            "answered",
            status=a.leg.status,
            code=a.leg.code,
            redelivered=applied.redelivered,
            delay_ms=round(delay * 1000, 1),
        )
        status = a.leg.status if not a.leg.code else f"{a.leg.status}/{a.leg.code}"
        span.set_attribute("switch.outcome", status)
        sends = []
        if (self.system == "LEADS" and mke == "EIM" and applied.imn and applied.lno
                and parse_shared_imn(applied.imn) is not None):
            sends.append(self._send_owner(applied.imn, applied.lno))
        return [*sends,
            self._send_answer(leg.cid, applied.encoded, delay, headers, span, gate),
            self._audit(
                leg,
                mke,
                "answered",
                headers,
                outcome=status,
                lno=applied.lno or getattr(req, "lno", None),
                imn=applied.imn or getattr(req, "imn", None),
                nic=applied.nic or leg.nic,
                image_sha256=applied.image_sha256,
                detail=("redelivered: stored answer; " if applied.redelivered else "")
                + a.leg.text,
            ),
        ]

    def _observe(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Feed the broker clock. Only a broker's append time counts: a CreateTime stamp
        is some producer's wall clock and would drag the estimate along with its skew."""
        if record.timestamp_type == LOG_APPEND_TIME:
            self.clock.observe(record.timestamp)

    async def _send_answer(self, cid: str, value: bytes, delay: float, headers: tracing.Headers,
                           span: Span, gate: asyncio.Future[None]) -> None:
        assert self.producer is not None
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await gate  # the store's changes are on the changelog first
            fut = await self.producer.send(self.topics.responses, key=cid.encode(), value=value,
                                           headers=headers)
            await fut
        finally:
            span.end()

    async def _send_owner(self, imn: str, lno: str) -> None:
        assert self.producer is not None
        await (await send_image_owner(self.producer, self.topics.records, imn, lno))

    async def _audit(self, leg: LegRequest, mke: str, event: str, headers: tracing.Headers,
                     **fields: Any) -> None:
        assert self.producer is not None
        req = leg.request
        entry = audit_entry(
            self.component,
            event,
            cid=leg.cid,
            mid=req.mid,
            ori=req.ori,
            term=req.term,
            mke=mke,
            principal=leg.principal,
            **fields,
        )
        key, value = audit_record(entry)
        fut = await self.producer.send(self.topics.audit, key=key, value=value, headers=headers)
        await fut

    def _prune(self) -> None:
        assert self.stores is not None
        try:
            # Only the stores this instance owns: another instance may own the others.
            gone = sum(self.stores.store(p).prune_applied(self.wall() - APPLIED_KEEP_S)
                       for p in sorted(self._owned))
        except Exception as exc:
            self.log.warning("pruning applied answers failed", error=repr(exc))
            return
        if gone:
            self.log.info("applied answers pruned", count=gone)


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go to another member, finish (and commit) the batches in flight,
    so the new owner does not answer them a second time, and leave their stores clean.
    Partitions that come are brought up to date by the loop, before their first batch."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.service._drain()
        self.service._record_acked([tp.partition for tp in revoked])
        for tp in revoked:
            self.service._read_upto.pop(tp.partition, None)
            self.service._owned.discard(tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass
