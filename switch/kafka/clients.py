"""Factories for aiokafka clients, configured from `Settings` in one place.

Every stage gets its producers and consumers here, so security settings, sizes and
batching are the same everywhere. Callers own the client: `async with running(...)`
starts and stops a stage's clients together (or `await c.start()` / `await c.stop()`).

aiokafka's private `_client` and `_sender` are touched only in this module (and in
fencing.py), each where the library has no public way, and each on one client object.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiokafka.producer.sender as _sender
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import CoordinationType
from aiokafka.cluster import ClusterMetadata

from switch.logs import get_logger
from switch.settings import Settings

# Back-to-back transactions: the next AddPartitionsToTxn meets CONCURRENT_TRANSACTIONS
# while the broker still writes the previous commit's markers (KAFKA-5477), and aiokafka
# then waits a fixed 20 ms. Measured here: a transaction's p50 goes from 12 ms to 4.5 ms
# (p99 78 -> 14 ms) with 2 ms, which the router and correlator pay on every batch.
CONCURRENT_TXN_RETRY_S = 0.002

# Consumers of topics written rarely and without transactions (controls, the record
# directory, agencies): a fetch parked this long still returns as soon as a record lands,
# and an idle switch sends a fifth of the fetches it would at the default 100 ms (the broker
# spends CPU on every one).
QUIET_FETCH_WAIT_MS = 500

# Producer batching: a little linger lets the router's fan-out and the services'
# answers share requests to the broker without adding visible latency.
LINGER_MS = 2


def make_producer(
    settings: Settings, *, transactional_id: str | None = None, **overrides: Any
) -> AIOKafkaProducer:
    kw: dict[str, Any] = settings.kafka.client_kwargs()
    kw.update(
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        max_request_size=settings.max_request_bytes + 64 * 1024,
        max_batch_size=max(1024 * 1024, settings.max_request_bytes + 64 * 1024),
        request_timeout_ms=30_000,
    )
    if transactional_id is not None:
        kw["transactional_id"] = transactional_id
        kw["transaction_timeout_ms"] = int(settings.transaction_timeout_s * 1000)
        # A transaction sends its whole batch before committing: lingering only delays it,
        # and a short retry backoff keeps the commit path tight (see CONCURRENT_TXN_RETRY_S).
        kw["linger_ms"] = 0
        kw["retry_backoff_ms"] = 10
    kw.update(overrides)
    producer = AIOKafkaProducer(**kw)
    if transactional_id is not None:
        _retry_concurrent_transactions_soon(producer)
    return producer


class _AddPartitionsRetryingSoon(_sender.AddPartitionsToTxnHandler):  # type: ignore[misc]
    def handle_response(self, resp: Any) -> float | None:
        backoff: float | None = super().handle_response(resp)
        # aiokafka returns its module-wide constant exactly for CONCURRENT_TRANSACTIONS
        # met by a transaction that has no partition yet (the case above).
        if backoff is _sender.BACKOFF_OVERRIDE:
            return CONCURRENT_TXN_RETRY_S
        return backoff


def _retry_concurrent_transactions_soon(producer: AIOKafkaProducer) -> None:
    """Retry AddPartitionsToTxn after CONCURRENT_TXN_RETRY_S instead of aiokafka's 20 ms, for
    this one transactional producer: aiokafka has no setting for it, so the method is
    replaced on this producer's sender object (as fencing.py does), nothing process-wide."""
    sender = producer._sender

    async def _do_add_partitions_to_txn(self: Any, tps: Any) -> bool:
        node_id = await self._find_coordinator(
            CoordinationType.TRANSACTION, self._txn_manager.transactional_id)
        done: bool = await _AddPartitionsRetryingSoon(self, tps).do(node_id)
        return done

    sender._do_add_partitions_to_txn = types.MethodType(_do_add_partitions_to_txn, sender)


class _Client(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def running(*clients: _Client) -> AsyncIterator[None]:
    """Start `clients` in order and stop them in reverse on the way out. Every client is
    stopped, started or not: a failed start must not leak the ones already started (a
    supervisor retries the stage), and an unstopped client warns when collected."""
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            stack.push_async_callback(client.stop)
        for client in clients:
            await client.start()
        yield


def make_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    kw: dict[str, Any] = settings.kafka.client_kwargs()
    kw.update(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        # Bound how long a fetch parks in the broker: a read_committed fetch waiting on
        # records beyond the last stable offset should not sit out the 500 ms default.
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=settings.max_request_bytes + 1024 * 1024,
        fetch_max_bytes=max(52428800, settings.max_request_bytes * 4),
        # Short enough that a killed member is replaced quickly (broker minimum: 6 s).
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_500,
        # How long the group waits for a live member to rejoin a rebalance. aiokafka's
        # default is the session timeout (6 s), but a member's callbacks may take longer:
        # a restore reads its state partitions to the high watermark, which waits for a
        # killed instance's open transaction (up to the transaction timeout), and a revoke
        # waits for the step under way to commit. A member dropped meanwhile would still
        # commit that step (aiokafka has no KIP-447 fencing) while the new owner processes
        # the same input: a request answered twice, seen in the scale-out test.
        rebalance_timeout_ms=int((2 * settings.transaction_timeout_s + 30) * 1000),
    )
    kw.update(overrides)
    return AIOKafkaConsumer(*topics, **kw)


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Ask for the consumer's metadata now. A consumer's metadata covers only topics it was
    asked about and is otherwise refreshed every few minutes; aiokafka has no public way."""
    await consumer._client.force_metadata_update()


async def cluster_metadata(consumer: AIOKafkaConsumer) -> ClusterMetadata:
    """Fresh metadata of every topic the consumer may see (its own cache follows only the
    topics it was asked about). `consumer.topics()` fetches the same but returns names only."""
    return await consumer._client.fetch_all_metadata()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic` (none if it does not exist)."""
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await refresh_metadata(consumer)
        parts = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def assign_whole_topic(
    consumer: AIOKafkaConsumer, topic: str, *, from_end: bool
) -> list[TopicPartition]:
    """Assign every partition of `topic` (partition 0 while it is unknown), seek to its
    beginning or end, and fix the positions now, so nothing written later is missed."""
    tps = await topic_partitions(consumer, topic) or [TopicPartition(topic, 0)]
    consumer.assign(tps)
    if from_end:
        await consumer.seek_to_end(*tps)
    else:
        await consumer.seek_to_beginning(*tps)
    for tp in tps:
        await consumer.position(tp)
    return tps


def rewind_dropped(
    consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]],
    restored_at: dict[TopicPartition, int],
) -> None:
    """A batch fetched across a rebalance is dropped; where its partitions are still ours,
    read them again from its first record, but never below where the restore started
    them (below is what another instance committed meanwhile)."""
    owned = consumer.assignment()
    for tp, records in batch.items():
        if tp in owned and records:
            to = max(records[0].offset, restored_at.get(tp, 0))
            get_logger("kafka").info("batch fetched across a rebalance dropped", topic=tp.topic,
                                     partition=tp.partition, first=records[0].offset,
                                     last=records[-1].offset, read_again_from=to)
            consumer.seek(tp, to)
