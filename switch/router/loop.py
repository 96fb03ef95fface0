"""The router's consume loop: thin I/O around `rules`, `dedupe` and the image pipeline.

Each batch of `switch.requests` is handled in one Kafka transaction: the manifests,
leg requests, rejects, dead letters, mid records and audit entries it causes are
committed together with the input offsets (exactly once across crashes). State that
must survive a restart lives in topics: the mid memory in `<prefix>.mids` (cached on disk
in SQLite, so the router's RAM stays flat), the record directory in `<prefix>.records`,
the shared-IMN sequences (and LEADS's floor) in `<prefix>.imns`, written in each batch's
transaction; all are read back at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from opentelemetry.trace import Span

from switch import tracing
from switch.contract.deadletter import bounded_key, dead_letter
from switch.contract.internal import (
    IMAGE_OWNER_PREFIX,
    DuplicateNotice,
    LegRequest,
    Manifest,
    image_owner_decoder,
    record_decoder,
)
from switch.contract.messages import (
    AnyRequest,
    Codes,
    EnterImage,
    FieldError,
    ModifyImage,
    encode,
    mke_of,
)
from switch.contract.replies import now_rfc3339, reject_reply
from switch.contract.validate import RequestInvalid, Unreadable, echo, parse_request
from switch.images.errors import ImageRejected
from switch.images.pipeline import NormalisedImage
from switch.images.pool import ImagePool
from switch.kafka.audit import audit_entry
from switch.kafka.clients import (
    QUIET_FETCH_WAIT_MS,
    make_consumer,
    make_producer,
    rewind_dropped,
    running,
    topic_partitions,
)
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
from switch.metrics import LagReporter, Metrics, label
from switch.router.dedupe import (
    MARK_PREFIX,
    MidMemory,
    MidRecord,
    OffsetMark,
    Seen,
    fingerprint,
    mark_key,
    mid_key,
    mid_record_decoder,
    offset_mark_decoder,
)
from switch.router.directory import Directory
from switch.router.imns import ImnSequences
from switch.router.partitioning import ori_of, ori_partition, validate_instance
from switch.router.principals import (
    Bindings,
    authorize,
    forward_headers,
    principal_name,
    reply_topic,
    sender_of,
)
from switch.router.rules import Duplicate, Reject, Route, judge
from switch.settings import Settings

COMPONENT = "router"
REPLY_TO_CHECK_S = 5.0
MID_EXPIRY_EVERY_S = 60.0
DIRECTORY_WAIT_S = 60.0  # at start-up, for LEADS to publish the record directory
DIRECTORY_SETTLE_S = 1.0  # ... and for it to stop growing
AGENCY_TOPICS_EVERY_MS = 5000  # how soon a new agency's request topic is read


@dataclass
class _Decoded:
    rec: ConsumerRecord[bytes, bytes]
    request: AnyRequest | None = None
    error: Unreadable | RequestInvalid | None = None
    image: NormalisedImage | None = None
    image_error: ImageRejected | None = None
    reply_to_missing: bool = False
    forward_to: int | None = None  # the partition of requests.byori that owns its ORI
    agency: str | None = None  # who sent it (switch/router/principals.py); None: trusted


class Router:
    def __init__(
        self, settings: Settings, *, instance: str = "0", wall: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._lag = LagReporter(self.metrics, COMPONENT)
        # Counts of the batch under way, by the input that caused them: applied once its
        # transaction commits, without those of an input whose outputs were replaced.
        self._counted: list[tuple[int | None, Any]] = []
        self._origin: int | None = None
        # This host's wall clock (a test gives a skewed one). It stamps `created` and the
        # informational `deadline`; the deadline that counts is `timeout_s` from the
        # broker's append time (switch/kafka/brokerclock.py).
        self.wall = wall
        self.group_id = f"{settings.topics.prefix}.router"
        self.instance = validate_instance(instance)
        self.transactional_id = f"{settings.topics.prefix}.router.{instance}"
        self.directory = Directory()
        self.bindings = Bindings()  # agencies and their ORIs, from `<prefix>.agencies`
        self._agency: str | None = None  # the sender of the request being processed
        self.imns = ImnSequences()  # shared-IMN sequences, from `<prefix>.imns`
        self._imn_batch = self.imns.batch()
        self.mids = MidMemory(settings.mid_retention_s,
                              settings.home / "router" / f"mids-{instance}.sqlite3")
        self._restored_mids: list[tuple[str, MidRecord]] = []
        self._restored_seen: dict[int, int] = {}
        self._restored_marks: dict[tuple[str, int], int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        # Held while a batch is handled; a rebalance waits for it, so a batch never commits
        # offsets of a partition already handed to another instance.
        self._batch_lock = asyncio.Lock()
        self.restored = asyncio.Event()  # set while the state matches the assignment
        # Bumped when an assignment starts and when its restore is done: a batch fetched
        # across either is dropped.
        self.generation = 0
        self.restored_at: dict[TopicPartition, int] = {}  # where the last restore started
        # Per owned input partition: the next offset after what this instance has committed
        # since it got the partition. Input below it is done; it is never handled again.
        self.done: dict[TopicPartition, int] = {}
        self._last_expiry = float("-inf")  # time.monotonic() of the last mid expiry
        self.pool = ImagePool(settings.images)
        self.log = get_logger(COMPONENT)
        self.counts = {"routed": 0, "rejected": 0, "dead_lettered": 0, "duplicates": 0}
        self._directory_task: asyncio.Task[None] | None = None
        self.tracer = tracing.tracer(COMPONENT)
        self._span: Span | None = None  # the hop of the input being handled
        self._traceparent: str | None = None
        self._ready = asyncio.Event()
        self._known_topics: set[str] = {settings.topics.replies}
        self.producer: AIOKafkaProducer | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Restore, then route until `stop` is set."""
        t = self.settings.topics
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self.mids.close)
            self.mids.expire(self.wall())
            stack.push_async_callback(self.pool.stop)
            await self.pool.start()
            # Partition p of requests, of requests.byori and of every agency's requests
            # topic go to the same instance (range assignment over topics of the same
            # partition count): it owns the ORIs of p. A pattern subscription finds a new
            # agency's topic within a few seconds (metadata_max_age_ms).
            consumer = make_consumer(self.settings, group_id=self.group_id, max_poll_records=200,
                                     partition_assignment_strategy=(RangePartitionAssignor,),
                                     metadata_max_age_ms=AGENCY_TOPICS_EVERY_MS)
            self.consumer = consumer
            consumer.subscribe(pattern=t.requests_pattern, listener=_Rebalance(self))
            producer = make_producer(self.settings, transactional_id=self.transactional_id)
            fence_offset_commits(producer, consumer)  # a dropped member's step cannot commit
            self.producer = producer
            directory = make_consumer(self.settings, group_id=None, fetch_max_wait_ms=QUIET_FETCH_WAIT_MS)
            await stack.enter_async_context(running(directory, producer, consumer))
            stack.push_async_callback(self._stop_tailing_directory)
            await self._catch_up_directory(directory)
            await self._restore_imns()  # after producer.start(): no transaction of ours is open
            self._directory_task = asyncio.create_task(self._tail_directory(directory))
            self._ready.set()
            self.log.info("router ready", records=len(self.directory), mids=len(self.mids))
            while not stop.is_set():
                generation = self.generation
                batch = await consumer.getmany(timeout_ms=100, max_records=200)
                await self.restored.wait()
                await self._lag.update(consumer)
                async with self._batch_lock:
                    if generation != self.generation:  # fetched across a rebalance
                        rewind_dropped(consumer, batch, self.restored_at)
                        continue
                    owned = consumer.assignment()
                    records = [r for tp, rs in batch.items() if tp in owned
                               for r in self._not_done(tp, rs)]
                    if records:
                        await self._handle_batch(records, producer)

    async def _stop_tailing_directory(self) -> None:
        if self._directory_task:
            self._directory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._directory_task

    async def wait_ready(self) -> None:
        await self._ready.wait()

    # ------------------------------------------------------------------ restore

    async def restore(self, assigned: list[TopicPartition]) -> None:
        """The state of the partitions just assigned: their mids (partition p of the mids
        topic, from where the on-disk memory last saw it), the IMN sequences, and the
        input positions. Reading the mids partitions read_committed to their end waits for
        any transaction still open there (an instance killed mid-batch: the broker aborts
        it after transaction_timeout_s), so the positions are fetched after it is settled,
        and never start below the offset mark its last committed transaction wrote."""
        assert self.consumer is not None
        t = self.settings.topics
        parts = sorted({tp.partition for tp in assigned})
        if not parts:
            return
        t0 = time.monotonic()
        seen = self.mids.seen()
        mids_ends = await self.consumer.end_offsets([TopicPartition(t.mids, p) for p in parts])
        for tp, end in mids_ends.items():
            if seen.get(tp.partition, 0) > end:  # the mids topic was recreated
                self.mids.forget_partition(tp.partition)
                seen.pop(tp.partition, None)
        read = await read_to_end(self.settings, t.mids, self._restore_mid, partitions=parts,
                                 start_at={p: seen.get(p, 0) for p in parts}, settled=True)
        self._flush_restored_mids()
        await self._read_imns()
        positions: dict[str, int] = {}
        ends = await self.consumer.end_offsets(list(assigned))
        for tp in assigned:
            committed = await self.consumer.committed(tp)
            mark = self.mids.mark(tp.topic, tp.partition)
            if mark is not None and mark > ends[tp]:  # the input topic was recreated
                self.log.warning("offset mark beyond the topic's end; ignored", topic=tp.topic,
                                 partition=tp.partition, mark=mark, end=ends[tp])
                mark = None
            known = [o for o in (committed, mark) if o is not None]
            if known:
                self.consumer.seek(tp, max(known))
                self.restored_at[tp] = max(known)
                self.done[tp] = max(known)
                positions[f"{tp.topic}:{tp.partition}"] = max(known)
        self.log.info("restored", partitions=parts, mids_read_to=read, positions=positions,
                      seconds=round(time.monotonic() - t0, 2))

    def _not_done(self, tp: TopicPartition,
                  records: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
        """The records of `tp` this instance has not committed yet. A fetch that hands back
        input already committed (seen under heavy rebalancing) is dropped, with a warning."""
        done = self.done.get(tp)
        if done is None or not records or records[0].offset >= done:
            return records
        self.log.warning("input handed back after it was committed; skipped", topic=tp.topic,
                         partition=tp.partition, first=records[0].offset,
                         last=records[-1].offset, committed_next=done)
        return [r for r in records if r.offset >= done]

    def _restore_mid(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        """Replay the mids topic from where the on-disk memory last saw it."""
        self._restored_seen[rec.partition] = rec.offset + 1
        if rec.key is not None and rec.key.startswith(MARK_PREFIX.encode()):
            if rec.value is not None:
                try:
                    where = (rec.key.decode()[len(MARK_PREFIX):], rec.partition)
                    nxt = offset_mark_decoder.decode(rec.value).next
                    self._restored_marks[where] = max(self._restored_marks.get(where, 0), nxt)
                except (msgspec.DecodeError, UnicodeDecodeError):
                    self.log.warning("unreadable offset mark", offset=rec.offset)
        elif rec.key is not None and rec.value is not None:
            try:
                self._restored_mids.append(
                    (rec.key.decode(), mid_record_decoder.decode(rec.value)))
            except msgspec.DecodeError:
                self.log.warning("unreadable mid record", offset=rec.offset)
        if len(self._restored_mids) >= 5000:
            self._flush_restored_mids()

    def _flush_restored_mids(self) -> None:
        self.mids.remember_many(self._restored_mids, self._restored_seen, self._restored_marks)
        self._restored_mids = []
        self._restored_seen = {}
        self._restored_marks = {}

    def _apply_directory(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        if rec.topic == self.settings.topics.agencies:
            if not self.bindings.apply(rec.key, rec.value):
                self.log.warning("unreadable agency binding", offset=rec.offset)
            return
        key = rec.key.decode() if rec.key else ""
        if key.startswith(IMAGE_OWNER_PREFIX):
            if rec.value is None:
                self.directory.forget_image(key[len(IMAGE_OWNER_PREFIX):])
                return
            try:
                owner = image_owner_decoder.decode(rec.value)
            except msgspec.DecodeError:
                self.log.warning("unreadable image owner", offset=rec.offset)
                return
            self.directory.note_image(owner.imn, owner.lno)
            return
        if rec.value is None:
            if key:
                self.directory.remove(key)
            return
        try:
            self.directory.put(record_decoder.decode(rec.value))
        except msgspec.DecodeError:
            self.log.warning("unreadable directory record", offset=rec.offset)

    async def _catch_up_directory(self, consumer) -> None:  # type: ignore[no-untyped-def]
        """Read the record directory before routing anything. LEADS may still be publishing
        it (separate processes start in any order): wait until it holds records and has
        stopped growing for a moment, or give up waiting after DIRECTORY_WAIT_S."""
        topic = self.settings.topics.records
        tps = await topic_partitions(consumer, topic)
        tps += await topic_partitions(consumer, self.settings.topics.agencies)  # tailed alike
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DIRECTORY_WAIT_S
        last_growth = loop.time()
        next_note = loop.time() + 5
        while True:
            ends = await consumer.end_offsets(tps)
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for rs in batch.values():
                    for r in rs:
                        self._apply_directory(r)
                last_growth = loop.time()
            now = loop.time()
            if len(self.directory) and now - last_growth >= DIRECTORY_SETTLE_S:
                return
            if now > give_up:
                self.log.warning("record directory still empty; routing anyway",
                                 topic=topic, waited_s=DIRECTORY_WAIT_S)
                return
            if now > next_note and not len(self.directory):
                next_note = now + 5
                self.log.info("waiting for the record directory (is LEADS running?)", topic=topic)
            await asyncio.sleep(0.2)

    async def _restore_imns(self) -> None:
        """Read the IMN sequences, and wait for LEADS's floor in them: LEADS publishes it
        before its directory, but a directory that outlived a recreated imns topic may
        arrive first. Give up waiting after DIRECTORY_WAIT_S, with a warning."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DIRECTORY_WAIT_S
        while True:
            await self._read_imns()
            if self.imns.floor_seen:
                return
            if loop.time() > give_up:
                self.log.warning("no shared-IMN floor from LEADS; allocating without it",
                                 topic=self.settings.topics.imns, waited_s=DIRECTORY_WAIT_S)
                return
            await asyncio.sleep(0.5)

    async def _read_imns(self) -> None:
        await read_to_end(self.settings, self.settings.topics.imns, self._apply_imn, settled=True)

    def _apply_imn(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        if rec.value is not None and not self.imns.apply_raw(rec.value):
            self.log.warning("unreadable imns record", offset=rec.offset)

    async def _tail_directory(self, consumer) -> None:  # type: ignore[no-untyped-def]
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for rs in batch.values():
                for r in rs:
                    self._apply_directory(r)

    # ------------------------------------------------------------------ processing

    async def _handle_batch(self, records: list[ConsumerRecord[bytes, bytes]], producer) -> None:  # type: ignore[no-untyped-def]
        decoded = [self._decode(r) for r in records]
        await asyncio.gather(*(self._size_image(d) for d in decoded))
        for d in decoded:
            if d.request is not None and d.request.reply_to:
                d.reply_to_missing = not await self._topic_exists(producer, d.request.reply_to)
        step = Step()
        staged: dict[str, MidRecord] = {}
        self._imn_batch = self.imns.batch()
        self._counted = []
        for i, d in enumerate(decoded):
            structlog.contextvars.clear_contextvars()
            self._origin = i
            if d.forward_to is not None:  # forwarded unchanged, its trace context too
                with step.caused_by(i):
                    self._process(d, step, staged)
            else:
                span = self._span = tracing.start(
                    self.tracer, "router", tracing.parent_of(d.rec.headers),
                    appended_ms=d.rec.timestamp, attributes=_span_attributes(d))
                headers = tracing.headers_of(span)
                self._traceparent = tracing.traceparent_of(headers)
                with step.caused_by(i, headers):
                    self._process(d, step, staged)
                span.end()
                self._span = None
            step.consumed(d.rec)
        self._origin = None
        # In the batch's transaction, caused by no one input: kept whatever is refused (a
        # number given to a refused EIM is skipped, never used again).
        for key, state in self._imn_batch.records():
            step.send(self.settings.topics.imns, encode(state), key)
        # The input offsets, also into the mids partition of each input partition (see
        # `restore`): every transaction that consumes p writes there.
        for tp, nxt in step.offsets.items():
            step.send(self.settings.topics.mids, encode(OffsetMark(next=nxt)), mark_key(tp.topic),
                      partition=tp.partition)

        def fallback(origin: int, failure: Failure) -> list[Out]:
            self._counted = [(o, c) for o, c in self._counted if o != origin]
            return self._undeliverable(decoded[origin], failure, staged)

        landed = await commit_step(producer, self.group_id, step, fallback=fallback)
        for tp, nxt in step.offsets.items():
            self.done[tp] = max(nxt, self.done.get(tp, 0))
        for _, child in self._counted:
            child.inc()
        self._counted = []
        self._imn_batch.commit()
        seen: dict[int, int] = {}
        for out, meta in zip(step.outputs, landed, strict=True):
            if out.topic == self.settings.topics.mids:
                seen[meta.partition] = max(seen.get(meta.partition, 0), meta.offset + 1)
        marks = {(tp.topic, tp.partition): nxt for tp, nxt in step.offsets.items()}
        self.mids.remember_many(list(staged.items()), seen, marks)
        # How often: a duration (monotonic). What: mids first seen (on this wall clock,
        # which the memory keeps across restarts) more than the retention ago.
        if time.monotonic() - self._last_expiry > MID_EXPIRY_EVERY_S:
            self._last_expiry = time.monotonic()
            self.mids.expire(self.wall())
        structlog.contextvars.clear_contextvars()

    async def _topic_exists(self, producer, topic: str) -> bool:  # type: ignore[no-untyped-def]
        """A reply_to topic must exist (or be auto-created): a send to a missing topic would
        stall the correlator's transaction. Known topics are cached."""
        if topic in self._known_topics:
            return True
        try:
            await asyncio.wait_for(producer.partitions_for(topic), REPLY_TO_CHECK_S)
        except Exception:
            return False
        self._known_topics.add(topic)
        return True

    def _decode(self, rec: ConsumerRecord[bytes, bytes]) -> _Decoded:
        d = _Decoded(rec, agency=sender_of(rec.topic, rec.headers, self.settings.topics))
        if (rec.topic != self.settings.topics.requests_byori and rec.value is not None
                and len(rec.value) <= self.settings.max_request_bytes):
            ori = ori_of(rec.value)
            if ori is not None:
                owner = ori_partition(ori, self.settings.topics.partitions)
                if owner != rec.partition:
                    d.forward_to = owner
                    return d
        if rec.value is None:
            d.error = Unreadable("EMPTY VALUE: A TOMBSTONE IS NOT A REQUEST")
            return d
        try:
            d.request = parse_request(
                # An agency's reply_to is checked by `authorize` (its own topic only).
                rec.value, reply_prefix=self.settings.reply_prefix if d.agency is None else "",
                max_bytes=self.settings.max_request_bytes,
            )
        except (Unreadable, RequestInvalid) as exc:
            d.error = exc
        return d

    async def _size_image(self, d: _Decoded) -> None:
        req = d.request
        data = getattr(req, "image", None) if isinstance(req, EnterImage | ModifyImage) else None
        if not data:
            return
        t0 = time.perf_counter()
        try:
            d.image = await self.pool.normalise(data)
        except ImageRejected as exc:
            d.image_error = exc
        self.metrics.image_sizing.labels("ok" if d.image_error is None else "rejected").observe(
            time.perf_counter() - t0)

    def _process(self, d: _Decoded, step: Step, staged: dict[str, MidRecord]) -> None:
        t = self.settings.topics
        rec = d.rec
        if d.forward_to is not None:
            # Another partition owns this ORI's mids: the request goes there, unchanged.
            ori = ori_of(rec.value)
            # Its trace context travels with it; its sender only as this router says (a
            # header a producer wrote itself is never passed on).
            trace = [(k, v) for k, v in rec.headers or () if k in tracing.TRACE_HEADERS]
            step.send(t.requests_byori, rec.value, ori, partition=d.forward_to,
                      headers=trace + (forward_headers(d.agency) or []) or None)
            self.counts["forwarded"] = self.counts.get("forwarded", 0) + 1
            return
        cid = uuid.uuid4().hex
        if self._span is not None:
            self._span.set_attribute("switch.cid", cid)
        self._agency = d.agency
        if isinstance(d.error, Unreadable):
            self._dead_letter(d.error, rec, cid, step)
            return
        if isinstance(d.error, RequestInvalid):
            e = d.error
            self._reject(step, cid, e.errors, why="invalid", mid=e.mid, ori=e.ori, mke=e.mke,
                         echo=e.echo)
            return
        req = d.request
        assert req is not None
        structlog.contextvars.bind_contextvars(cid=cid, mid=req.mid)
        refused = authorize(d.agency, req.ori, mke_of(req), req.reply_to, self.bindings, t)
        if d.agency is not None:  # an agency's replies go to its own topic, whatever it asked
            req = msgspec.structs.replace(req, reply_to=reply_topic(d.agency, req.reply_to, t))
        fp = fingerprint(req)
        now = self.wall()
        key = mid_key(req.ori, req.mid)
        seen = self.mids.check(key, fp, now)
        if (staged_seen := staged.get(key)) is not None:  # the same mid twice in one batch
            seen = Seen("duplicate" if staged_seen.fp == fp else "conflict", staged_seen.cid)
        outcome = judge(req, agency=d.agency, refused=refused, seen=seen,
                        reply_to_missing=d.reply_to_missing, image_error=d.image_error,
                        directory=self.directory, partition=rec.partition, imns=self._imn_batch)
        if isinstance(outcome, Reject):
            reply_req = msgspec.structs.replace(req, reply_to=None) if outcome.default_reply_to \
                else req
            self._reject(step, cid, outcome.errors, why=outcome.why, mid=req.mid, ori=req.ori,
                         mke=mke_of(req), echo=_echo(rec.value), req=reply_req)
        elif isinstance(outcome, Duplicate):
            notice = DuplicateNotice(principal=principal_name(self._agency, self.settings.secure),
                                     cid=outcome.original_cid, mid=req.mid,
                                     reply_to=req.reply_to, received=now, ori=req.ori)
            step.send(t.responses, encode(notice), outcome.original_cid)
            self._audit(step, "duplicate", outcome.original_cid, req, outcome="DUPLICATE",
                        detail=f"original cid {outcome.original_cid}")
            self.counts["duplicates"] += 1
        else:
            self._fan_out(step, cid, req, outcome, d.image, now)
            mrec = MidRecord(fp=fp, cid=cid, ts=now)
            staged[key] = mrec
            step.send(t.mids, encode(mrec), key, partition=rec.partition)  # the ORI's partition

    def _fan_out(
        self, step: Step, cid: str, req: AnyRequest, decision: Route,
        image: NormalisedImage | None, now: float,
    ) -> None:
        t = self.settings.topics
        deadline = now + self.settings.deadline_s
        if image is not None:
            req = msgspec.structs.replace(req, image=image.data)
        rec = decision.record
        if decision.imn and rec is not None:
            # Known at once to this router, which sees every later request of this ORI;
            # to the others when LEADS publishes the image's owner.
            self.directory.note_image(decision.imn, rec.lno)
        manifest = Manifest(
            cid=cid, mid=req.mid, ori=req.ori, mke=mke_of(req), expected=list(decision.expected),
            skipped=dict(decision.skipped), deadline=deadline, created=now,
            reply_to=req.reply_to, term=req.term,
            lno=getattr(req, "lno", None) or (rec.lno if rec else None),
            imn=getattr(req, "imn", None) or decision.imn,
            nic=getattr(req, "nic", None) or (rec.nic if rec else None),
            imt=getattr(req, "imt", None), doi=getattr(req, "doi", None),
            doc=getattr(req, "doc", None), timeout_s=self.settings.deadline_s,
            traceparent=self._traceparent,
            principal=principal_name(self._agency, self.settings.secure),
        )
        # The manifest goes first: the correlator must know what to expect.
        step.send(t.responses, encode(manifest), cid)
        sha = image.sha256 if image else None
        for system in decision.expected:
            leg = LegRequest(
                cid=cid, system=system, deadline=deadline, request=req,
                rtype=rec.rtype if rec else None, nic=rec.nic if rec else None,
                imn=decision.imn, image_sha256=sha, timeout_s=self.settings.deadline_s,
                principal=principal_name(self._agency, self.settings.secure),
            )
            step.send(t.leg_requests(system), encode(leg), decision.key)
        self._audit(step, "received", cid, req, outcome="RECEIVED", image_sha256=sha)
        self._audit(step, "routed", cid, req, outcome="ROUTED", image_sha256=sha,
                    detail="legs " + ",".join(decision.expected)
                    + "".join(f"; {s} {why}" for s, why in decision.skipped.items()))
        self.counts["routed"] += 1
        self._count(self.metrics.routed.labels(mke_of(req)))
        self.log.debug("routed", legs=decision.expected)

    def _reject(
        self, step: Step, cid: str, errors: list[FieldError], *, why: str, mid: str | None,
        ori: str | None, mke: str | None, echo: str, req: AnyRequest | None = None,
    ) -> None:
        """A REJECTED reply to `req`'s reply_to (without `req`, or without its reply_to, to
        the sender's default replies topic), and its audit entry."""
        reply = reject_reply(cid=cid, mid=mid, ori=ori, mke=mke, errors=errors, echo=echo)
        topic = (req.reply_to if req is not None and req.reply_to else None) or \
            reply_topic(self._agency, None, self.settings.topics) or self.settings.topics.replies
        step.send(topic, encode(reply), ori)
        step.audit(self.settings.topics.audit, audit_entry(
            COMPONENT, "rejected", cid=cid, mid=mid, ori=ori, term=req.term if req else None,
            mke=mke, lno=getattr(req, "lno", None), imn=getattr(req, "imn", None),
            outcome="REJECTED", detail="; ".join(f"{e.field} {e.code}" for e in errors),
            principal=principal_name(self._agency, self.settings.secure),
        ))
        self.counts["rejected"] += 1
        self._count(self.metrics.rejects.labels(label(mke), errors[0].code if errors else "unknown"))
        self.log.info("rejected", reason=why, codes=[e.code for e in errors])

    def _dead_letter(
        self, err: Unreadable, rec: ConsumerRecord[bytes, bytes], cid: str, step: Step
    ) -> None:
        t = self.settings.topics
        letter = dead_letter(err.reason, topic=rec.topic, partition=rec.partition,
                             offset=rec.offset, key=rec.key, value=rec.value, ts=now_rfc3339())
        step.send(t.dlq, encode(letter), bounded_key(rec.key))
        if err.mid and err.ori:
            code = err.code if err.code != Codes.UNREADABLE else Codes.INVALID_FIELD
            fe = FieldError(field="request", code=code, text=f"REJECT {err.reason}")
            self._reject(step, cid, [fe], why="unreadable", mid=err.mid, ori=err.ori, mke=None,
                         echo=err.echo)
        else:
            step.audit(t.audit, audit_entry(
                COMPONENT, "dead_lettered", cid=cid, outcome="DEAD_LETTER", detail=err.reason,
                principal=principal_name(self._agency, self.settings.secure),
            ))
        self.counts["dead_lettered"] += 1
        self._count(self.metrics.dead_letters.labels("unreadable"))
        self.log.info("dead-lettered", reason=err.reason, partition=rec.partition, offset=rec.offset)

    def _undeliverable(self, d: _Decoded, failure: Failure, staged: dict[str, MidRecord]) -> list[Out]:
        """What replaces a request's outputs when one of them cannot be written: a bounded
        dead letter naming the reason and, when its mid and ori are known, a REJECTED reply
        on the default replies topic, so the request still gets exactly one reply."""
        rec, cid, step = d.rec, uuid.uuid4().hex, Step()
        self._agency = d.agency
        known = d.request if d.request is not None else d.error
        mid, ori = (known.mid, known.ori) if known is not None else (None, None)
        if d.request is not None:  # not routed after all: a resubmission is judged anew
            staged.pop(mid_key(d.request.ori, d.request.mid), None)
        letter = dead_letter(failure.reason, topic=rec.topic, partition=rec.partition,
                             offset=rec.offset, key=rec.key, value=rec.value, ts=now_rfc3339())
        step.send(self.settings.topics.dlq, encode(letter), bounded_key(rec.key))
        if mid and ori:
            reply_to = d.request.reply_to if d.request is not None else None
            field, code = (("reply_to", Codes.BAD_REPLY_TO) if failure.topic == reply_to
                           else ("request", Codes.TOO_LARGE if "TOO LARGE" in failure.reason
                                 else Codes.UNREADABLE))
            fe = FieldError(field=field, code=code, text=f"REJECT {failure.reason}")
            mke = mke_of(d.request) if d.request is not None else None
            self._reject(step, cid, [fe], why="undeliverable", mid=mid, ori=ori, mke=mke,
                         echo=_echo(rec.value))
        else:
            step.audit(self.settings.topics.audit, audit_entry(
                COMPONENT, "dead_lettered", cid=cid, outcome="DEAD_LETTER", detail=failure.reason))
        self.counts["dead_lettered"] += 1
        self._count(self.metrics.dead_letters.labels("undeliverable"))
        self.log.warning("dead-lettered: its outputs could not be written", reason=failure.reason,
                         partition=rec.partition, offset=rec.offset)
        return step.outputs

    def _count(self, child: Any) -> None:
        self._counted.append((self._origin, child))

    def _audit(self, step: Step, event: str, cid: str, req: AnyRequest, **fields: str | None) -> None:
        entry = audit_entry(
            COMPONENT, event, cid=cid, mid=req.mid, ori=req.ori, term=req.term, mke=mke_of(req),
            lno=getattr(req, "lno", None), imn=getattr(req, "imn", None),
            nic=getattr(req, "nic", None),
            principal=principal_name(self._agency, self.settings.secure), **fields,
        )
        step.audit(self.settings.topics.audit, entry)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions handed over from another router instance continue its state: its mids,
    its IMN sequences, its offsets. A revoke waits for the batch being handled."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.router._batch_lock:
            self.router.restored.clear()
            for tp in revoked:
                self.router.done.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            self.router.generation += 1
            if self.router.producer is not None:  # see txloop.wait_own_commits
                await wait_own_commits(self.router.settings, self.router.producer)
            await self.router.restore(list(assigned))
        finally:
            # Again once the restore has moved the positions: a fetch that started while it
            # ran still read from the old ones, and its batch must be dropped, not handled
            # (handled, the restore's seek would then hand the same input back).
            self.router.generation += 1
            self.router.restored.set()


def _span_attributes(d: _Decoded) -> dict[str, str | None]:
    known = d.request if d.request is not None else d.error
    return {"switch.mid": getattr(known, "mid", None), "switch.ori": getattr(known, "ori", None),
            "switch.mke": mke_of(d.request) if d.request is not None else getattr(known, "mke", None),
            "messaging.kafka.partition": str(d.rec.partition)}


def _echo(raw: bytes | None) -> str:
    """Only on a reject: redacting hashes the image, which a routed request need not pay."""
    return echo(raw or b"")
