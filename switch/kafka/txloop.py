"""Consume-transform-produce in Kafka transactions: the exactly-once step of a stage.

A batch's outputs and its input offsets are committed in one transaction, so a crash
either loses the whole step (and the input is read again) or none of it. Every send is
awaited before the commit: aiokafka would otherwise commit a transaction in which a send
failed.

One input must not block its partition. Each output records its `origin` (the input that
caused it). When a send fails for a reason that belongs to that output alone (too large
for the producer or for the topic, a topic that is missing, invalid or not writable),
the transaction is aborted, the outputs of that origin are replaced by what the stage's
`fallback` gives (a bounded dead letter, a reply without images ...), and the step is
committed again. An origin that fails again loses its outputs (logged); after
`MAX_ATTEMPTS` only the outputs without an origin are kept, so the offsets still move.
Any other error (broker down, timeouts, fencing) is raised as before: the transaction is
aborted and the batch is read again, nothing lost.

After a broker restart the group is rebalanced while the stage keeps running, and the
group coordinator can answer a committed offset older than the last transaction's (its
offset commit is materialised only when the transaction's markers are written; aiokafka's
OffsetFetch cannot ask for stable offsets). Reading from there would process, and answer,
committed input again. So a stage waits, before it trusts its committed offsets after an
assignment, until its own last committed transaction is visible (`wait_own_commits`); a
revoke waits for the step under way to commit (each stage holds a lock over a step), and a
new owner reads its state partitions to their high watermark and resumes from the offsets
recorded there (router: offset marks in the mids topic; correlator: its checkpoint).

aiokafka 0.14 details this relies on: a record larger than `max_request_size` is refused
by `send()` itself, before anything is queued; a record larger than the topic's
`max.message.bytes` comes back in the send's future (MESSAGE_TOO_LARGE); neither puts
the transaction into an error state, so aborting it is allowed; a send to a topic the
broker does not know waits `request_timeout_ms` for metadata inside `send()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka import errors as kerr
from aiokafka.structs import RecordMetadata

from switch.contract.messages import AuditEntry
from switch.errors import SwitchError
from switch.kafka.audit import audit_record
from switch.logs import get_logger
from switch.settings import Settings

MAX_ATTEMPTS = 4
METADATA_WAIT_S = 5.0

# Errors that one record causes and that no retry can cure.
RECORD_ERRORS: tuple[type[BaseException], ...] = (
    kerr.MessageSizeTooLargeError,
    kerr.RecordListTooLargeError,
    kerr.RecordTooLargeError,
    kerr.InvalidTopicError,
    kerr.TopicAuthorizationFailedError,
    kerr.CorruptRecordException,
    kerr.InvalidTimestampError,
    kerr.PolicyViolationError,
)

log = get_logger("txloop")

# Per producer: the highest offset it has landed in each partition in a committed step.
_landed: weakref.WeakKeyDictionary[AIOKafkaProducer, dict[TopicPartition, int]] = (
    weakref.WeakKeyDictionary())
SETTLE_TIMEOUT_S = 60.0  # the stages' transaction timeout: the broker resolves it by then


@dataclass
class Out:
    topic: str
    value: bytes | None  # None: a tombstone
    key: bytes | None = None
    origin: int | None = None  # the input that caused it (the stage's numbering)
    partition: int | None = None  # None: by key
    headers: list[tuple[str, bytes]] | None = None  # e.g. the trace context (switch/tracing.py)


@dataclass(frozen=True)
class Failure:
    """Why an output of `origin` could not be written."""

    origin: int
    topic: str
    error: BaseException
    size: int

    @property
    def reason(self) -> str:
        """In the operator's words, for a dead letter or a reply line."""
        if isinstance(self.error, kerr.MessageSizeTooLargeError | kerr.RecordListTooLargeError
                      | kerr.RecordTooLargeError):
            what = f"TOO LARGE ({self.size} BYTES)"
        elif isinstance(self.error, kerr.TopicAuthorizationFailedError):
            what = "NOT AUTHORIZED"
        elif isinstance(self.error, kerr.UnknownTopicOrPartitionError):
            what = "TOPIC DOES NOT EXIST"
        else:
            what = type(self.error).__name__.upper()
        return f"NOT DELIVERED TO {self.topic}: {what}"


Fallback = Callable[[int, Failure], list[Out]]


@dataclass
class Step:
    """What one batch produces, and the offsets it consumed."""

    outputs: list[Out] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    origin: int | None = None  # stamped on every output sent while set
    headers: list[tuple[str, bytes]] | None = None  # stamped on every output sent while set

    def consumed(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        self.offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1

    @contextlib.contextmanager
    def caused_by(self, origin: int, headers: list[tuple[str, bytes]] | None = None) -> Iterator[None]:
        """Outputs sent inside are replaced together if one of them cannot be written; they
        carry `headers` (the trace context of the input's hop) unless given their own."""
        previous, self.origin = (self.origin, self.headers), origin
        self.headers = headers
        try:
            yield
        finally:
            self.origin, self.headers = previous

    def send(
        self, topic: str, value: bytes | None, key: bytes | str | None = None,
        partition: int | None = None, headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        if isinstance(key, str):
            key = key.encode()
        self.outputs.append(Out(topic, value, key, self.origin, partition,
                                self.headers if headers is None else headers))

    def audit(self, topic: str, entry: AuditEntry) -> None:
        key, value = audit_record(entry)
        self.send(topic, value, key)

    def replace(self, origin: int, outputs: list[Out]) -> None:
        """Put `outputs` where the outputs of `origin` were (first place), dropping those."""
        kept: list[Out] = []
        placed = False
        for o in self.outputs:
            if o.origin != origin:
                kept.append(o)
            elif not placed:
                kept.extend(Out(n.topic, n.value, n.key, origin, n.partition, n.headers)
                            for n in outputs)
                placed = True
        if not placed:
            kept.extend(Out(n.topic, n.value, n.key, origin, n.partition, n.headers)
                        for n in outputs)
        self.outputs = kept


class _Refused(SwitchError):
    """Some outputs of this attempt belong to records that can never be written."""

    def __init__(self, failures: list[tuple[int, BaseException]]) -> None:
        super().__init__(f"{len(failures)} outputs refused")
        self.failures = failures


async def commit_step(
    producer: AIOKafkaProducer, group_id: str, step: Step, *, fallback: Fallback | None = None,
) -> list[RecordMetadata]:
    """Send the step's outputs and commit its offsets in one transaction. Returns where each
    output landed, in the order of `step.outputs` (which replaced outputs have changed)."""
    if not step.outputs and not step.offsets:
        return []
    tries: dict[int, int] = {}  # origin -> how many times its outputs were refused
    for _ in range(MAX_ATTEMPTS):
        try:
            return _note(producer, await _commit_once(producer, group_id, step))
        except _Refused as refused:
            _isolate(step, refused, tries, fallback)
    # Last resort: keep only what no input caused, so the offsets still move.
    dropped = sorted({o.origin for o in step.outputs if o.origin is not None})
    log.error("outputs dropped after repeated refusals", origins=dropped, attempts=MAX_ATTEMPTS)
    step.outputs = [o for o in step.outputs if o.origin is None]
    try:
        return _note(producer, await _commit_once(producer, group_id, step))
    except _Refused as refused:
        raise refused.failures[0][1] from refused


def _note(producer: AIOKafkaProducer, landed: list[RecordMetadata]) -> list[RecordMetadata]:
    marks = _landed.setdefault(producer, {})
    for m in landed:
        tp = TopicPartition(m.topic, m.partition)
        marks[tp] = max(marks.get(tp, -1), m.offset)
    return landed


async def wait_own_commits(
    settings: Settings, producer: AIOKafkaProducer, timeout: float = SETTLE_TIMEOUT_S
) -> bool:
    """Until every step `producer` committed is visible to read_committed readers (each
    partition's last stable offset is past what it wrote): then the transaction's markers,
    and with them its offset commit, are written. False after `timeout` (logged)."""
    from switch.kafka.clients import make_consumer

    want = dict(_landed.get(producer, {}))
    if not want:
        return True
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(kerr.KafkaError):
                ends = await consumer.end_offsets(list(want))
                if all(ends.get(tp, 0) > off for tp, off in want.items()):
                    return True
            if time.monotonic() > deadline:
                log.warning("own transaction still not visible; trusting the group offsets",
                            seconds=timeout)
                return False
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()


def _isolate(step: Step, refused: _Refused, tries: dict[int, int], fallback: Fallback | None) -> None:
    """Replace the outputs of every origin that had one refused: first by the fallback,
    then by nothing."""
    done: set[int] = set()
    for index, error in refused.failures:
        out = step.outputs[index]
        if out.origin is None:
            raise error from refused  # nothing to isolate: behave as before
        if out.origin in done:
            continue
        done.add(out.origin)
        failure = Failure(out.origin, out.topic, error, len(out.value or b"") + len(out.key or b""))
        count = tries.get(out.origin, 0)
        tries[out.origin] = count + 1
        log.warning("output refused; replacing the outputs of its input", origin=out.origin,
                    topic=out.topic, bytes=failure.size, error=repr(error), attempt=count + 1)
        step.replace(out.origin, fallback(out.origin, failure) if fallback and count == 0 else [])


async def _commit_once(producer: AIOKafkaProducer, group_id: str, step: Step) -> list[RecordMetadata]:
    txn = producer._txn_manager
    start = {tp: txn.sequence_number(tp) for tp in await _partitions(producer, step)}
    async with producer.transaction():  # aborted if anything below raises
        # The offsets go to the coordinators while the outputs are in flight: one round
        # trip less per step (AddOffsetsToTxn and TxnOffsetCommit overlap the produce).
        # Whatever fails below still aborts the whole transaction, offsets included.
        offsets = (asyncio.ensure_future(producer.send_offsets_to_transaction(step.offsets, group_id))
                   if step.offsets else None)
        try:
            landed = await _send_outputs(producer, step, txn, start)
            if offsets is not None:
                await offsets
        finally:
            if offsets is not None:
                await _settle(offsets)  # before the abort: aiokafka sends it in order
    return landed


async def _send_outputs(producer: AIOKafkaProducer, step: Step, txn,  # type: ignore[no-untyped-def]
                        start: dict[TopicPartition, int]) -> list[RecordMetadata]:
    """Send every output and wait for all of them; raise `_Refused` for outputs that can
    never be written, or the first other error."""
    refused: list[tuple[int, BaseException]] = []
    sent: list[tuple[int, asyncio.Future[RecordMetadata]]] = []
    for i, o in enumerate(step.outputs):
        try:
            sent.append((i, await producer.send(o.topic, o.value, key=o.key,
                                                partition=o.partition, headers=o.headers)))
        except RECORD_ERRORS as exc:  # refused client-side: nothing was queued
            refused.append((i, exc))
        except kerr.UnknownTopicOrPartitionError as exc:
            if not await _topic_missing(producer, o.topic):
                raise
            refused.append((i, exc))
    results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
    landed: list[RecordMetadata] = []
    other: list[BaseException] = []
    for (i, _), r in zip(sent, results, strict=True):
        if isinstance(r, RECORD_ERRORS):
            refused.append((i, r))
        elif isinstance(r, BaseException):
            other.append(r)
        else:
            landed.append(r)
    if refused and len(landed) < len(sent):
        _rewind_sequences(txn, start, landed)
    if refused:
        # Batches behind a refused one on the same partition fail out of sequence;
        # they are not at fault and go again in the next attempt.
        refused.sort(key=lambda f: f[0])
        raise _Refused(refused)
    if other:
        raise other[0]
    return landed


async def _settle(fut: asyncio.Future[None]) -> None:
    """Wait for `fut` without raising (its error, if any, has been or will be reported)."""
    await asyncio.wait([fut])
    if not fut.cancelled():
        fut.exception()  # retrieved: no "never retrieved" warning


async def _partitions(producer: AIOKafkaProducer, step: Step) -> set[TopicPartition]:
    """Every partition the step may write: all partitions of its topics. A topic not written
    before is looked up first, else its sequence numbers could not be set back."""
    tps: set[TopicPartition] = set()
    for topic in {o.topic for o in step.outputs}:
        parts = producer.client.cluster.partitions_for_topic(topic)
        if not parts:
            with contextlib.suppress(Exception):  # a missing topic is handled by the send
                parts = await asyncio.wait_for(producer.partitions_for(topic), METADATA_WAIT_S)
        for p in parts or ():
            tps.add(TopicPartition(topic, p))
    return tps


def _rewind_sequences(txn, start: dict[TopicPartition, int],  # type: ignore[no-untyped-def]
                      landed: list[RecordMetadata]) -> None:
    """A batch the broker refused still advanced the producer's sequence number for its
    partition, and aiokafka 0.14 does not bump the epoch on abort: the next batch there
    would fail OUT_OF_ORDER_SEQUENCE_NUMBER for ever. The broker has counted exactly the
    records it appended (aborted ones included), so set each partition back to that."""
    appended: dict[TopicPartition, int] = {}
    for m in landed:
        tp = TopicPartition(m.topic, m.partition)
        appended[tp] = appended.get(tp, 0) + 1
    for tp, seq in start.items():
        if txn.sequence_number(tp) != seq + appended.get(tp, 0):
            txn._sequence_numbers[tp] = seq + appended.get(tp, 0)


async def _topic_missing(producer: AIOKafkaProducer, topic: str) -> bool:
    """True only if the broker answers and does not know `topic` (not when it is down)."""
    try:
        cluster = await producer.client.fetch_all_metadata()
    except Exception:
        return False
    return topic not in cluster.topics()
