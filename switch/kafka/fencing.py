"""Zombie fencing for a stage's offset commits: the group member's generation rides along.

A stage commits its input offsets inside its transaction (`send_offsets_to_transaction`).
aiokafka 0.14 sends that as TxnOffsetCommit v0, which carries no group membership, so the
group coordinator accepts it from anyone. An instance that has been dropped from its group
(a long pause, a missed heartbeat: "local member_id was not recognized") but is still in
the middle of a step would then commit outputs for input that another instance now owns,
and both answer it.

Kafka's own clients close this with KIP-447: TxnOffsetCommit v3 carries the member id and
generation, and the coordinator refuses the commit (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID)
once the group has moved on; the refused transaction can only abort. A commit that arrives
before the group moves on is accepted, but its transaction is then open on the stage's
state partitions, and the new owner's settled read of them waits for it (see txloop).

`fence_offset_commits(producer, consumer)` makes one producer send v3 with that consumer's
current membership. It replaces a method on that one producer's sender object (nothing
process-wide): aiokafka offers no hook for it. An instance that knows it is no longer a
member (generation reset to -1) does not commit at all.
"""

from __future__ import annotations

import collections
import types
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import errors as kerr
from aiokafka.client import ConnectionGroup, CoordinationType
from aiokafka.producer.sender import TxnOffsetCommitHandler
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)

from switch.logs import get_logger

log = get_logger("fencing")

# Refusals that mean "you are no longer the member that owns these partitions":
# ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID.
STALE_MEMBER = {22: "ILLEGAL_GENERATION", 25: "UNKNOWN_MEMBER_ID", 27: "REBALANCE_IN_PROGRESS",
                82: "FENCED_INSTANCE_ID"}


class TxnOffsetCommitResponse_v3(Response):  # type: ignore[misc]
    API_KEY = 28
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("error_code", Int16),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitRequest_v3(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 28
    API_VERSION = 3
    RESPONSE_TYPE = TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("committed_offset", Int64),
                ("committed_leader_epoch", Int32),
                ("committed_metadata", CompactString("utf-8")),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


_Struct: TypeAlias = TxnOffsetCommitRequest_v3


class MemberTxnOffsetCommit(Request[_Struct]):  # type: ignore[misc]
    """TxnOffsetCommit with the group membership (v3 only: a broker without it refuses)."""

    API_KEY = 28

    def __init__(self, *, transactional_id: str, group_id: str, producer_id: int,
                 producer_epoch: int, generation: int, member_id: str,
                 topics: list[tuple[str, list[tuple[int, int, str]]]]) -> None:
        self.fields = (transactional_id, group_id, producer_id, producer_epoch, generation,
                       member_id)
        self.topics: list[tuple[str, list[tuple[int, int, str]]]] = topics

    def build(self, request_struct_class: type[_Struct]) -> _Struct:
        topics: list[Any] = [(t, [(p, off, -1, meta, {}) for p, off, meta in parts], {})
                             for t, parts in self.topics]
        return request_struct_class(*self.fields, None, topics, {})


class _V0Errors:
    """A v3 response in the shape aiokafka's handler reads (topic, [(partition, code)])."""

    def __init__(self, resp: Any) -> None:
        self.errors = [(name, [(p, code) for p, code, _ in parts]) for name, parts, _ in resp.topics]


class _MemberHandler(TxnOffsetCommitHandler):  # type: ignore[misc]
    def __init__(self, sender: Any, offsets: Any, group_id: str,
                 consumer: AIOKafkaConsumer) -> None:
        super().__init__(sender, offsets, group_id)
        self._consumer = consumer

    async def do(self, node_id: int) -> bool:
        generation, _ = membership(self._consumer)
        if generation < 0:  # it already knows it is out of the group: never commit
            self._refuse(kerr.CommitFailedError(
                f"not a member of group {self._group_id} any more; the step is aborted"))
            return True
        ok: bool = await super().do(node_id)
        return ok

    def create_request(self) -> MemberTxnOffsetCommit:
        txn = self._sender._txn_manager
        generation, member_id = membership(self._consumer)
        data: dict[str, list[tuple[int, int, str]]] = collections.defaultdict(list)
        for tp, offset in sorted(self._offsets.items()):
            data[tp.topic].append((tp.partition, offset.offset, offset.metadata))
        return MemberTxnOffsetCommit(
            transactional_id=txn.transactional_id, group_id=self._group_id,
            producer_id=txn.producer_id, producer_epoch=txn.producer_epoch,
            generation=generation, member_id=member_id, topics=list(data.items()))

    def handle_response(self, resp: Any) -> float | None:
        for _, parts, _ in resp.topics:
            for _, code, _ in parts:
                if code in STALE_MEMBER:
                    self._refuse(kerr.CommitFailedError(
                        f"group {self._group_id} has moved on ({STALE_MEMBER[code]}): this "
                        "instance no longer owns the partitions; the step is aborted"))
                    return None
        result: float | None = super().handle_response(_V0Errors(resp))
        return result

    def _refuse(self, exc: BaseException) -> None:
        """Fail `send_offsets_to_transaction` and leave the transaction open, so the abort
        that follows reaches the coordinator. (aiokafka's `error_transaction` forgets the
        transaction's partitions, the abort is then never sent, and the broker holds the
        transaction open until its timeout, then fences the producer.)"""
        log.warning("offset commit fenced", group=self._group_id, reason=str(exc.args[-1]))
        txn = self._sender._txn_manager
        for _, _, fut in txn._pending_txn_offsets:
            if not fut.done():
                fut.set_exception(exc)
        txn._pending_txn_offsets.clear()


def membership(consumer: AIOKafkaConsumer) -> tuple[int, str]:
    """The consumer's current generation and member id (-1, "" when it is not a member)."""
    coordinator = consumer._coordinator
    if coordinator is None:
        return -1, ""
    return int(coordinator.generation), str(coordinator.member_id)


def fence_offset_commits(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
    """Make `producer`'s offset commits carry `consumer`'s group membership (call before
    the first transaction)."""
    sender = producer._sender

    async def _do_txn_offset_commit(self: Any, offsets: Any, group_id: str) -> None:
        if not offsets:
            return
        try:
            node_id = await self._find_coordinator(CoordinationType.GROUP, group_id)
        except kerr.GroupAuthorizationFailedError as exc:
            self._txn_manager.error_transaction(exc)
            return
        await _MemberHandler(self, offsets, group_id, consumer).do(node_id)

    sender._do_txn_offset_commit = types.MethodType(_do_txn_offset_commit, sender)
    assert _MemberHandler.group == ConnectionGroup.COORDINATION
