"""Consume-transform-produce in Kafka transactions: the exactly-once step of a stage.

A batch's outputs and its input offsets are committed in one transaction, so a crash
either loses the whole step (and the input is read again) or none of it. Every send is
awaited before the commit: aiokafka would otherwise commit a transaction in which a send
failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import RecordMetadata

from switch.contract.messages import AuditEntry
from switch.kafka.audit import audit_record


@dataclass
class Out:
    topic: str
    value: bytes | None  # None: a tombstone
    key: bytes | None = None
    partition: int | None = None  # None: by key


@dataclass
class Step:
    """What one batch produces, and the offsets it consumed."""

    outputs: list[Out] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def consumed(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        self.offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1

    def send(
        self, topic: str, value: bytes | None, key: bytes | str | None = None,
        partition: int | None = None,
    ) -> None:
        if isinstance(key, str):
            key = key.encode()
        self.outputs.append(Out(topic, value, key, partition))

    def audit(self, topic: str, entry: AuditEntry) -> None:
        key, value = audit_record(entry)
        self.send(topic, value, key)


async def commit_step(producer: AIOKafkaProducer, group_id: str, step: Step) -> list[RecordMetadata]:
    """Send the step's outputs and commit its offsets in one transaction. Returns where each
    output landed, in the order of `step.outputs`."""
    if not step.outputs and not step.offsets:
        return []
    async with producer.transaction():
        futures = [await producer.send(o.topic, o.value, key=o.key, partition=o.partition)
                   for o in step.outputs]
        landed = list(await asyncio.gather(*futures))
        if step.offsets:
            await producer.send_offsets_to_transaction(step.offsets, group_id)
    return landed
