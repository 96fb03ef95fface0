"""The correlator's consume loop: thin I/O around `pending.PendingTable`.

Reads `<prefix>.responses` (manifests, leg answers, duplicate notices) in a consumer
group; each step's replies, audit entries, changelog records and the input offsets are
committed in one Kafka transaction. The changelog (`<prefix>.correlator`, compacted,
keyed by cid, partition p for responses partition p) holds every transaction that has
had its first reply and still waits, each finished transaction's final reply (until the
mid retention has passed: then a tombstone), and per partition a `~checkpoint`: the
responses offset from which a restore must replay (the lowest manifest still without
its first reply, else the committed offset). So the changelog always matches the
committed offset.

On partition assignment: read the changelog's tail into the local store (SQLite, under
`<home>/correlator/`; it remembers how far it has seen), load the waiting transactions,
then replay responses from the checkpoint to the committed offset silently. So a restart
neither loses a transaction nor sends a reply twice, reads only what is new, and the
responses topic's retention bounds only that replay. Finished replies stay on disk, not
in RAM. Every time is the broker's (`BrokerClock`), never this host's wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import RecordMetadata
from opentelemetry.trace import SpanKind

from switch import tracing
from switch.contract.internal import (
    CHECKPOINT_KEY,
    Checkpoint,
    Decision,
    DuplicateNotice,
    LegAnswer,
    Manifest,
    response_decoder,
)
from switch.contract.messages import encode
from switch.contract.replies import undelivered_reply
from switch.correlator.pending import Emit, PendingTable
from switch.correlator.store import ReplyStore
from switch.kafka.audit import audit_entry
from switch.kafka.brokerclock import BrokerClock
from switch.kafka.clients import make_consumer, make_producer, rewind_dropped, running
from switch.kafka.fencing import fence_offset_commits
from switch.kafka.readall import read_to_end
from switch.kafka.txloop import (
    Failure,
    Out,
    Step,
    commit_step,
    wait_own_commits,
)
from switch.logs import get_logger
from switch.metrics import LagReporter, Metrics, counter_deltas, counter_values, label, reply_kind
from switch.router.partitioning import validate_instance
from switch.settings import Settings

COMPONENT = "correlator"
TICK_MS = 50
STATS_EVERY_S = 30.0
SWEEP_EVERY_S = 10.0  # up to SWEEP_BATCH tombstones each time: 30,000 a minute
SWEEP_BATCH = 5000
LOG_APPEND_TIME = 1  # ConsumerRecord.timestamp_type
# A step that sends nothing but offsets and checkpoints (a manifest, the first of two
# answers) is not committed on its own: its offsets go with the next step that replies,
# or after this long. A request then costs one transaction here instead of up to three,
# and its last answer does not wait behind the commit of its first.
DEFER_MAX_S = 0.5


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, correlator: Correlator) -> None:
        self.c = correlator

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.c.step_lock.acquire()  # the step under way commits before we let go
        try:
            self._revoked(revoked)
        finally:
            self.c.step_lock.release()

    def _revoked(self, revoked: list[TopicPartition]) -> None:
        self.c.restored.clear()
        self.c.generation += 1  # a step being committed now must not go on (txloop)
        gone = {tp.partition for tp in revoked}
        self.c.table.drop_partitions(gone)
        self.c.forget_deferred(gone)
        for p in gone:
            self.c.next_offsets.pop(p, None)
            self.c.checkpoints.pop(p, None)
            self.c.committed.pop(p, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.c.generation += 1
        try:
            await self.c.restore(assigned)
        finally:
            # Again once the restore has moved the positions: a fetch that started while it
            # ran read from the old ones; its batch is dropped (see the router's).
            self.c.generation += 1
            self.c.restored.set()


class Correlator:
    def __init__(
        self, settings: Settings, *, instance: str = "0", clock: BrokerClock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._lag = LagReporter(self.metrics, COMPONENT)
        self.group_id = f"{settings.topics.prefix}.correlator"
        self.transactional_id = f"{settings.topics.prefix}.correlator.{validate_instance(instance)}"
        self.clock = clock or BrokerClock()
        self.store = ReplyStore(settings.home / "correlator" / f"replies-{instance}.sqlite3")
        self.table = PendingTable(lookup=self.store.finished, clock=self.clock.now)
        self.next_offsets: dict[int, int] = {}  # responses partition -> committed offset
        self.checkpoints: dict[int, int] = {}  # responses partition -> last checkpoint written
        self.committed: dict[int, int] = {}  # responses partition -> offset in that checkpoint
        self.last_restore: dict[str, int] = {}  # records read by the last restore, by topic
        self.log = get_logger(COMPONENT)
        self.tracer = tracing.tracer(COMPONENT)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        # Set while the table matches the assigned partitions. A batch fetched while a
        # restore runs must wait for it: its answers need the manifests being replayed.
        self.restored = asyncio.Event()
        self.step_lock = asyncio.Lock()  # held by a step; a revoke waits for it
        self.generation = 0  # assignments so far: a batch fetched before one is dropped
        self.restored_at: dict[TopicPartition, int] = {}  # where the last restore started
        # The pending table's counters as last exported: a restore's silent replay moves
        # them too, and is not counted again.
        self._exported = counter_values(self.table.counters)
        self._replaced: dict[int, Emit] = {}  # emits replaced by `_undelivered` in this step
        # Offsets of steps that sent nothing, not committed yet (DEFER_MAX_S), and since when.
        self._deferred: dict[TopicPartition, int] = {}
        self._deferred_since = 0.0

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self, stop: asyncio.Event) -> None:
        t = self.settings.topics
        self.consumer = make_consumer(self.settings, group_id=self.group_id, max_poll_records=500)
        producer = make_producer(self.settings, transactional_id=self.transactional_id)
        fence_offset_commits(producer, self.consumer)  # a dropped member's step cannot commit
        self.producer = producer
        last_stats = last_sweep = time.monotonic() - SWEEP_EVERY_S
        clients = contextlib.AsyncExitStack()
        try:
            # Started inside `try`: a failed start stops what did start (the supervisor retries).
            await clients.enter_async_context(running(producer, self.consumer))
            self.consumer.subscribe([t.responses], listener=_Rebalance(self))
            while not stop.is_set():
                generation = self.generation
                batch = await self.consumer.getmany(timeout_ms=TICK_MS, max_records=500)
                await self.restored.wait()
                await self._lag.update(self.consumer)
                if generation != self.generation:  # fetched across a rebalance
                    rewind_dropped(self.consumer, batch, self.restored_at)
                    continue
                if self.consumer.assignment():
                    self._ready.set()
                await self.step_lock.acquire()
                try:
                    last_stats, last_sweep = await self._step(producer, batch, last_stats,
                                                              last_sweep)
                finally:
                    self.step_lock.release()
        finally:
            await clients.aclose()
            self.store.close()

    async def _step(
        self, producer: AIOKafkaProducer,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        last_stats: float, last_sweep: float,
    ) -> tuple[float, float]:
        """One step: the batch's replies, changelog and offsets in one transaction (or
        none yet, when it sends nothing: see `_defer`)."""
        step = Step()
        emits: list[Emit] = []
        for records in batch.values():
            for rec in records:
                done = self.next_offsets.get(rec.partition)
                if done is not None and rec.offset < done:
                    # Input this instance already committed, handed back by a fetch under
                    # heavy rebalancing: never handled twice.
                    self.log.warning("input handed back after it was committed; skipped",
                                     partition=rec.partition, offset=rec.offset, next=done)
                    continue
                emits.extend(self._dispatch(rec))
                step.consumed(rec)
                self.next_offsets[rec.partition] = rec.offset + 1
        now = self.clock.now()
        emits.extend(self.table.expire(now, await self._caught_up()))
        sweep_due = time.monotonic() - last_sweep > SWEEP_EVERY_S
        if not self._defer(step, emits, sweep_due):
            self._stage(step, emits)
            changes = self._stage_changelog(step)
            if sweep_due:
                last_sweep = time.monotonic()
                changes += self._sweep(step, now)
            self._replaced = {}
            landed = await commit_step(producer, self.group_id, step,
                                       fallback=functools.partial(self._undelivered, emits))
            self._stored(step, landed, changes)
        self._export(emits)
        self._flush_events()
        if time.monotonic() - last_stats > STATS_EVERY_S:
            last_stats = time.monotonic()
            c = self.table.counters
            self.log.info("stats", open=self.table.open_count,
                          replies=c.replies, supplements=c.supplements, late=c.late,
                          duplicate_answers=c.duplicate_answers, orphans=c.orphans,
                          timeouts=c.timeouts, swept=c.swept)
        return last_stats, last_sweep

    def _defer(self, step: Step, emits: list[Emit], sweep_due: bool) -> bool:
        """Leave a step that sends nothing uncommitted for now (True), or fold the steps
        left so into this one (False): their input offsets commit with it. Nothing is lost
        by waiting: until then the inputs are simply read again after a crash or a move,
        as those of a step under way are, and they caused no output to repeat."""
        if emits or self.table.changed or sweep_due:
            self._fold_deferred(step)
            return False
        if not step.offsets and not self._deferred:
            return True  # nothing read, nothing to commit
        if not self._deferred:
            self._deferred_since = time.monotonic()
        for tp, off in step.offsets.items():
            self._deferred[tp] = max(off, self._deferred.get(tp, off))
        if time.monotonic() - self._deferred_since < DEFER_MAX_S:
            return True
        step.offsets = {}
        self._fold_deferred(step)
        return False

    def _fold_deferred(self, step: Step) -> None:
        for tp, off in self._deferred.items():
            step.offsets[tp] = max(off, step.offsets.get(tp, off))
        self._deferred = {}

    def forget_deferred(self, partitions: set[int]) -> None:
        """Partitions taken away: their next owner reads the deferred inputs again."""
        self._deferred = {tp: o for tp, o in self._deferred.items() if tp.partition not in partitions}

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
        t = self.settings.topics
        parts = [tp.partition for tp in assigned]
        if not parts:
            return
        if self.producer is not None:  # see txloop: the group's offsets may lag ours
            await wait_own_commits(self.settings, self.producer)
        t0 = time.monotonic()

        # 1. The changelog's tail (all of a partition never seen) into the local store.
        seen = self.store.seen()
        ends = await self.consumer.end_offsets([TopicPartition(t.correlator, p) for p in parts])
        for tp, end in ends.items():
            if seen.get(tp.partition, 0) > end:  # the changelog was recreated
                self.store.forget_partition(tp.partition)
                seen.pop(tp.partition, None)
        batch: list[tuple[int, str, bytes | None]] = []
        changelog = 0

        def tail(rec: ConsumerRecord[bytes, bytes]) -> None:
            nonlocal changelog
            changelog += 1
            self._observe(rec)
            if rec.key is not None:
                batch.append((rec.partition, rec.key.decode(), rec.value))
            if len(batch) >= 2000:
                self.store.apply(batch)
                batch.clear()

        read = await read_to_end(self.settings, t.correlator, tail, partitions=parts,
                                 start_at={p: seen.get(p, 0) for p in parts}, settled=True)
        self.store.apply(batch, read)

        # The committed offsets only now: reading the changelog to its high watermark
        # waited for a transaction still open there (a killed instance's, aborted by the
        # broker after transaction_timeout_s), so they are settled.
        committed: dict[int, int] = {}
        for tp in assigned:
            off = await self.consumer.committed(tp)
            committed[tp.partition] = off if off is not None else 0

        # 2. Transactions that had their first reply and still wait.
        known: set[str] = set()
        # The group's committed offset can lag the changelog's after a broker restart (the
        # transaction's offset commit not yet materialised): the changelog's is exact.
        behind = {}
        for p in parts:
            logged = self.store.committed(p)
            if logged is not None and logged > committed[p]:
                behind[p] = committed[p]
                committed[p] = logged
                self.consumer.seek(TopicPartition(t.responses, p), logged)
        if behind:
            self.log.warning("group offset behind the changelog; resuming after it",
                             group=behind, changelog={p: committed[p] for p in behind})
        for partition, w in self.store.waiting(set(parts)):
            self.table.load(w, partition)
            known.add(w.manifest.cid)

        # 3. Responses from the checkpoint to the committed offset, silently. Without a
        # checkpoint (a log written before the changelog existed) all of it, to the end,
        # and its Decision records say which replies were sent.
        start = {p: self.store.checkpoint(p) for p in parts}
        replayed = 0

        def replay(rec: ConsumerRecord[bytes, bytes]) -> None:
            nonlocal replayed
            replayed += 1
            self._observe(rec)
            msg = _decode(rec)
            if isinstance(msg, Decision):
                self.table.on_decision(msg)
            elif msg is None or rec.offset >= committed[rec.partition]:
                return
            elif msg.cid in known or self.table.finished(msg.cid) is not None:
                return  # the changelog already accounts for it
            else:
                self._apply(msg, rec)  # already acted on: replies are not re-sent

        await read_to_end(
            self.settings, t.responses, replay, partitions=parts,
            start_at={p: off for p, off in start.items() if off is not None},
            stop_at={p: committed[p] for p, off in start.items() if off is not None},
        )
        for tp in assigned:
            self.consumer.seek(tp, committed[tp.partition])  # where the replay stopped
            self.restored_at[tp] = committed[tp.partition]
        for p in parts:
            self.next_offsets[p] = committed[p]
            cp = start[p]
            if cp is not None:
                self.checkpoints[p] = cp
            else:
                self.checkpoints.pop(p, None)
        self.last_restore = {"changelog": changelog, "responses": replayed}
        self._sync_counters(export=False)  # the replay's counts were exported before
        self.metrics.pending.set(self.table.open_count)
        self.log.info("restored", partitions=parts, committed=committed, checkpoints=start,
                      changelog_records=changelog, responses_replayed=replayed,
                      open=self.table.open_count, seconds=round(time.monotonic() - t0, 2))

    # ------------------------------------------------------------------ processing

    def _dispatch(self, rec: ConsumerRecord[bytes, bytes]) -> list[Emit]:
        self._observe(rec)
        msg = _decode(rec)
        if msg is None:
            self.log.warning("unreadable response", partition=rec.partition, offset=rec.offset)
            return []
        if isinstance(msg, Decision):
            return []  # written by an older correlator; the changelog replaced them
        emits = self._apply(msg, rec)
        if any(e.traceparent is None for e in emits):  # a duplicate's: its own request's trace
            here = tracing.traceparent_of(rec.headers or ())
            emits = [e if e.traceparent else dataclasses.replace(e, traceparent=here)
                     for e in emits]
        return emits

    def _apply(
        self, msg: Manifest | LegAnswer | DuplicateNotice, rec: ConsumerRecord[bytes, bytes]
    ) -> list[Emit]:
        if isinstance(msg, Manifest):
            return self.table.on_manifest(msg, rec.partition, offset=rec.offset,
                                          start=self._appended(rec))
        if isinstance(msg, LegAnswer):
            return self.table.on_answer(msg, self.clock.now())
        return self.table.on_duplicate(msg)

    def _observe(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        if rec.timestamp_type == LOG_APPEND_TIME:
            self.clock.observe(rec.timestamp)

    def _appended(self, rec: ConsumerRecord[bytes, bytes]) -> float:
        """When the broker appended `rec`: its timestamp on a LogAppendTime topic. On an old
        topic (CreateTime: the router's clock) the same, but never later than the broker's
        now, so a router clock running ahead cannot postpone a deadline."""
        now = self.clock.now()
        if rec.timestamp is None or rec.timestamp <= 0:
            return now
        ts = rec.timestamp / 1000.0
        return ts if rec.timestamp_type == LOG_APPEND_TIME else float(min(ts, now))

    def _stage(self, step: Step, emits: list[Emit]) -> None:
        t = self.settings.topics
        for i, e in enumerate(emits):
            step.origin = i  # what to replace if this reply cannot be written
            r = e.reply
            span = tracing.start(self.tracer, "correlator", tracing.parent_of(
                traceparent=e.traceparent), kind=SpanKind.PRODUCER, attributes={
                    "switch.cid": r.cid, "switch.mid": r.mid, "switch.ori": r.ori,
                    "switch.mke": r.mke, "switch.status": r.status})
            step.headers = tracing.headers_of(span)  # the reply carries the trace on
            step.send(e.topic or t.replies, encode(r), r.ori)
            event = "supplement" if r.supplement else ("duplicate" if r.duplicate else "replied")
            step.audit(t.audit, audit_entry(
                COMPONENT, event, cid=r.cid, mid=r.mid, ori=r.ori, mke=r.mke,
                imn=next((leg.imn for leg in r.legs.values() if leg.imn), None),
                outcome=r.status, principal=e.principal,
                detail=" ".join(f"{s}={leg.status}" for s, leg in r.legs.items()),
            ))
            structlog.contextvars.bind_contextvars(cid=r.cid, mid=r.mid)
            self.log.debug(event, status=r.status)
            structlog.contextvars.clear_contextvars()
            span.end()
        step.origin = None
        step.headers = None

    def _undelivered(self, emits: list[Emit], origin: int, failure: Failure) -> list[Out]:
        """A reply that cannot be written is sent without its images, with a line saying
        why, to the default replies topic when its reply_to topic is the problem."""
        t, e = self.settings.topics, emits[origin]
        moved = e.topic is not None and failure.topic == e.topic
        reply = undelivered_reply(e.reply, failure.reason, moved_to=t.replies if moved else None)
        step = Step()
        self._replaced[origin] = Emit(reply, None if moved else e.topic, e.cid, e.traceparent,
                                      e.principal)
        self._stage(step, [self._replaced[origin]])
        self.log.warning("reply not deliverable; sent without images", cid=e.cid,
                         reason=failure.reason)
        return step.outputs

    def _export(self, emits: list[Emit]) -> None:
        """After the commit: the replies sent, and what the pending table counted."""
        m = self.metrics
        for i, e in enumerate(emits):
            r = self._replaced.get(i, e).reply
            kind = reply_kind(r.supplement, r.duplicate)
            m.replies.labels(label(r.mke), r.status, kind).inc()
            if kind == "first":
                for system, leg in r.legs.items():
                    if leg.ms is not None:
                        m.leg_latency.labels(system).observe(leg.ms / 1000.0)
        self._replaced = {}
        self._sync_counters()
        m.pending.set(self.table.open_count)

    def _sync_counters(self, *, export: bool = True) -> None:
        now = counter_values(self.table.counters)
        if export:
            for field, n in counter_deltas(self._exported, now).items():
                if n:
                    self.metrics.pending_events[field].inc(n)
        self._exported = now

    def _stage_changelog(self, step: Step) -> list[tuple[int, str, bytes | None]]:
        """What changed in this step, and each partition's new checkpoint, to the changelog
        (same transaction as the replies and offsets). Returns the records, for the store."""
        topic = self.settings.topics.correlator
        out: list[tuple[int, str, bytes | None]] = []
        for partition, cid, record in self.table.take_changes():
            for key, value in self.store.changelog_records(partition, cid, record):
                step.send(topic, value, key, partition=partition)
                out.append((partition, key, value))
        for p, nxt in self.next_offsets.items():
            cp = self.table.checkpoint(p, nxt)
            if self.checkpoints.get(p) != cp or self.committed.get(p) != nxt:
                self.checkpoints[p] = cp
                self.committed[p] = nxt
                value = msgspec.json.encode(Checkpoint(offset=cp, committed=nxt))
                step.send(topic, value, CHECKPOINT_KEY, partition=p)
                out.append((p, CHECKPOINT_KEY, value))
        return out

    def _sweep(self, step: Step, now: float) -> list[tuple[int, str, bytes | None]]:
        """Tombstones for finished replies older than the mid retention, and for the images
        no finished reply names any more."""
        old = self.store.expired(now - self.settings.mid_retention_s, set(self.next_offsets),
                                 limit=SWEEP_BATCH)
        # Images no finished reply names any more (store.py): a sweep behind the replies.
        images = self.store.expired_images(now - self.settings.mid_retention_s,
                                           set(self.next_offsets), limit=SWEEP_BATCH)
        for key, p in [*old, *images]:
            step.send(self.settings.topics.correlator, None, key, partition=p)
        self.table.counters.swept += len(old)
        return [(p, key, None) for key, p in [*old, *images]]

    def _stored(
        self, step: Step, landed: list[RecordMetadata], changes: list[tuple[int, str, bytes | None]]
    ) -> None:
        """After the commit: the changelog records into the local store, with how far the
        changelog has been seen."""
        if not changes:
            return
        topic = self.settings.topics.correlator
        seen: dict[int, int] = {}
        for out, meta in zip(step.outputs, landed, strict=True):
            if out.topic == topic:
                seen[meta.partition] = max(seen.get(meta.partition, 0), meta.offset + 1)
        self.store.apply(changes, seen)
        self.table.stored([cid for _, cid, _ in changes])

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
