"""Creating the switch's topics: one idempotent function, also `switch topics create`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from switch.settings import Settings

DAY_MS = 24 * 3600 * 1000
MIB = 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the switch uses, with its partitions and configs."""
    t = settings.topics
    p = t.partitions
    big = str(8 * MIB)  # replies to a QIM carry every stored image
    request_bytes = str(settings.max_request_bytes + MIB)
    compact = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    # Deadlines count from the broker's append time (switch/kafka/brokerclock.py).
    broker_time = {"message.timestamp.type": "LogAppendTime"}
    return [
        TopicSpec(t.requests, p, {"max.message.bytes": request_bytes}, "requests from producers"),
        TopicSpec(t.replies, p, {"max.message.bytes": big}, "one reply per request (+ supplements)"),
        TopicSpec(t.dlq, 1, {"max.message.bytes": request_bytes}, "unreadable input"),
        TopicSpec(
            t.audit, p, {"retention.ms": str(400 * DAY_MS)}, "audit entries, kept 400 days"
        ),
        TopicSpec(t.control, 1, {**compact, **broker_time}, "simulation controls, last one per system"),
        TopicSpec(t.leg_requests("LEADS"), p, {"max.message.bytes": request_bytes, **broker_time},
                  "router -> LEADS service"),
        TopicSpec(t.leg_requests("NCIC"), p, {"max.message.bytes": request_bytes, **broker_time},
                  "router -> NCIC service"),
        TopicSpec(t.responses, p, {"max.message.bytes": big, **broker_time},
                  "route manifests and leg answers, keyed by cid"),
        TopicSpec(t.records, p, compact, "record directory published by LEADS, keyed by LNO"),
        TopicSpec(t.mids, p, {**compact, "cleanup.policy": "compact,delete",
                              "retention.ms": str(2 * DAY_MS)},
                  "router's memory of mids (idempotency), keyed by mid"),
        TopicSpec(t.imns, 1, {**compact, "segment.bytes": str(MIB), "segment.ms": str(3600_000)},
                  "shared-IMN sequence per requests partition (router) and LEADS's floor"),
    ]


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0
) -> None:
    """Return once every partition of the new topics has a leader, so the first
    produce does not bounce off NOT_LEADER."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        ready = all(
            t.get("error_code", 0) == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )
        if ready or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.1)


async def ensure_topics(settings: Settings, *, extra: list[TopicSpec] | None = None) -> list[str]:
    """Create every missing topic; return the names created. Harmless to repeat."""
    specs = topic_specs(settings) + list(extra or [])
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs(), request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                name=s.name,
                num_partitions=s.partitions,
                replication_factor=settings.topics.replication_factor,
                topic_configs=s.configs,
            )
            for s in missing
        ]
        try:
            await admin.create_topics(new, timeout_ms=30_000)
        except TopicAlreadyExistsError:
            pass  # another process won the race; the topics exist either way
        await _wait_for_leaders(admin, [s.name for s in missing])
        return [s.name for s in missing]
    finally:
        await admin.close()
