"""The correlator's consume loop: thin I/O around `pending.PendingTable`.

Reads `<prefix>.responses` (manifests, leg answers, duplicate notices) in a consumer
group; each step's replies, the `Decision` records that say they were sent, audit
entries and the input offsets are committed in one Kafka transaction. On partition
assignment the table is rebuilt from the partition's log: inputs before the committed
offset are replayed silently, and every Decision (wherever it sits) marks a reply as
already sent. So a restart neither loses a transaction nor sends a reply twice.
"""

from __future__ import annotations

import asyncio
import functools
import time

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from switch.contract.internal import (
    Decision,
    DuplicateNotice,
    LegAnswer,
    Manifest,
    response_decoder,
)
from switch.contract.messages import encode
from switch.contract.replies import undelivered_reply
from switch.correlator.pending import Emit, PendingTable
from switch.kafka.audit import audit_entry
from switch.kafka.clients import make_consumer, make_producer
from switch.kafka.readall import read_to_end
from switch.kafka.txloop import Failure, Out, Step, commit_step
from switch.logs import get_logger
from switch.settings import Settings

COMPONENT = "correlator"
TICK_MS = 50
STATS_EVERY_S = 30.0


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, correlator: Correlator) -> None:
        self.c = correlator

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.c.restored.clear()
        self.c.table.drop_partitions({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            await self.c.restore(assigned)
        finally:
            self.c.restored.set()


class Correlator:
    def __init__(self, settings: Settings, *, instance: str = "0") -> None:
        self.settings = settings
        self.group_id = f"{settings.topics.prefix}.correlator"
        self.transactional_id = f"{settings.topics.prefix}.correlator.{instance}"
        self.table = PendingTable(retention_s=settings.mid_retention_s)
        self.log = get_logger(COMPONENT)
        self.consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()
        # Set while the table matches the assigned partitions. A batch fetched while a
        # restore runs must wait for it: its answers need the manifests being replayed.
        self.restored = asyncio.Event()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self, stop: asyncio.Event) -> None:
        t = self.settings.topics
        self.consumer = make_consumer(self.settings, group_id=self.group_id, max_poll_records=500)
        producer = make_producer(self.settings, transactional_id=self.transactional_id)
        await producer.start()
        await self.consumer.start()
        self.consumer.subscribe([t.responses], listener=_Rebalance(self))
        last_stats = time.monotonic()
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=TICK_MS, max_records=500)
                await self.restored.wait()
                if self.consumer.assignment():
                    self._ready.set()
                step = Step()
                emits: list[Emit] = []
                for records in batch.values():
                    for rec in records:
                        emits.extend(self._dispatch(rec))
                        step.consumed(rec)
                now = time.time()
                emits.extend(self.table.expire(now, await self._caught_up()))
                self._stage(step, emits)
                await commit_step(producer, self.group_id, step,
                                  fallback=functools.partial(self._undelivered, emits))
                self._flush_events()
                if time.monotonic() - last_stats > STATS_EVERY_S:
                    last_stats = time.monotonic()
                    self.table.sweep(now)
                    c = self.table.counters
                    self.log.info("stats", open=self.table.open_count, done=len(self.table.done),
                                  done_bytes=self.table.done_bytes,
                                  replies=c.replies, supplements=c.supplements, late=c.late,
                                  duplicate_answers=c.duplicate_answers, orphans=c.orphans,
                                  timeouts=c.timeouts)
        finally:
            await self.consumer.stop()
            await producer.stop()

    async def _caught_up(self) -> set[int]:
        """Partitions read up to their last stable offset: only there may a deadline fire."""
        assert self.consumer is not None
        done: set[int] = set()
        for tp in self.consumer.assignment():
            lso = self.consumer.last_stable_offset(tp)
            if lso is None:
                continue
            if await self.consumer.position(tp) >= lso:
                done.add(tp.partition)
        return done

    # ------------------------------------------------------------------ restore

    async def restore(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        parts = [tp.partition for tp in assigned]
        if not parts:
            return
        committed: dict[int, int] = {}
        for tp in assigned:
            off = await self.consumer.committed(tp)
            committed[tp.partition] = off if off is not None else 0
        t0 = time.monotonic()
        count = 0

        def replay(rec: ConsumerRecord[bytes, bytes]) -> None:
            nonlocal count
            count += 1
            msg = _decode(rec)
            if isinstance(msg, Decision):
                self.table.on_decision(msg)
            elif msg is not None and rec.offset < committed[rec.partition]:
                self._apply(msg, rec.partition)  # already acted on: replies are not re-sent

        await read_to_end(self.settings, self.settings.topics.responses, replay, partitions=parts)
        self.table.sweep(time.time())
        self.log.info("restored", partitions=parts, committed=committed, records=count,
                      open=self.table.open_count,
                      seconds=round(time.monotonic() - t0, 2))

    # ------------------------------------------------------------------ processing

    def _dispatch(self, rec: ConsumerRecord[bytes, bytes]) -> list[Emit]:
        msg = _decode(rec)
        if msg is None:
            self.log.warning("unreadable response", partition=rec.partition, offset=rec.offset)
            return []
        if isinstance(msg, Decision):
            return []  # our own record, applied when it was written
        return self._apply(msg, rec.partition)

    def _apply(self, msg: Manifest | LegAnswer | DuplicateNotice, partition: int) -> list[Emit]:
        if isinstance(msg, Manifest):
            return self.table.on_manifest(msg, partition)
        if isinstance(msg, LegAnswer):
            return self.table.on_answer(msg)
        return self.table.on_duplicate(msg)

    def _stage(self, step: Step, emits: list[Emit]) -> None:
        t = self.settings.topics
        for i, e in enumerate(emits):
            step.origin = i  # what to replace if this reply cannot be written
            r = e.reply
            step.send(e.topic or t.replies, encode(r), r.ori)
            if e.decision is not None:
                step.send(t.responses, encode(e.decision), e.cid)
            event = "supplement" if r.supplement else ("duplicate" if r.duplicate else "replied")
            step.audit(t.audit, audit_entry(
                COMPONENT, event, cid=r.cid, mid=r.mid, ori=r.ori, mke=r.mke,
                imn=next((leg.imn for leg in r.legs.values() if leg.imn), None),
                outcome=r.status,
                detail=" ".join(f"{s}={leg.status}" for s, leg in r.legs.items()),
            ))
            structlog.contextvars.bind_contextvars(cid=r.cid, mid=r.mid)
            self.log.debug(event, status=r.status)
            structlog.contextvars.clear_contextvars()
        step.origin = None

    def _undelivered(self, emits: list[Emit], origin: int, failure: Failure) -> list[Out]:
        """A reply that cannot be written is sent without its images, with a line saying
        why, to the default replies topic when its reply_to topic is the problem."""
        t, e = self.settings.topics, emits[origin]
        moved = e.topic is not None and failure.topic == e.topic
        reply = undelivered_reply(e.reply, failure.reason, moved_to=t.replies if moved else None)
        step = Step()
        self._stage(step, [Emit(reply, None if moved else e.topic, e.decision, e.cid)])
        self.log.warning("reply not deliverable; sent without images", cid=e.cid,
                         reason=failure.reason)
        return step.outputs

    def _flush_events(self) -> None:
        for kind, cid, detail in self.table.events:
            self.log.info(kind.replace("_", " "), cid=cid, detail=detail)
        self.table.events.clear()


def _decode(rec: ConsumerRecord[bytes, bytes]) -> Manifest | LegAnswer | DuplicateNotice | Decision | None:
    if rec.value is None:
        return None
    try:
        msg: Manifest | LegAnswer | DuplicateNotice | Decision = response_decoder.decode(rec.value)
        return msg
    except msgspec.DecodeError:
        return None
