"""Creating the switch's topics: one idempotent function, also `switch topics create`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from switch.errors import ConfigError
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
    """Every topic the switch uses, with its partitions and configs.

    Every topic states its cleanup policy and retention on purpose (never the broker's
    defaults), and `ensure_topics` checks them on topics that already exist:
    - requests, dlq: 7 days (delete). Read within seconds; a week lets an operator look back.
    - requests.byori: as requests (7 days, delete, same size limit: it carries the same
      records unchanged), and the same partition count: partition p belongs to the router
      instance that owns requests partition p (mids are owned by their ORI's partition).
    - leg requests: 30 days (delete). An entry for a system that is down (down_forward)
      waits here until the system returns: this is how long it can wait.
    - replies: 7 days (delete): read by producers and the console within seconds.
    - audit: 400 days (delete): CONTRACT.md asks for at least 365.
    - responses: 7 days (delete). Only a bound on the correlator's replay: anything that
      waits longer (a queued entry, a finished reply for resubmissions) lives in the
      correlator's changelog, and a restore replays only from its checkpoint.
    - correlator: compacted, no time limit (waiting transactions must survive however
      long NCIC is down); finished replies are removed by tombstones after the mid
      retention, tombstones kept 1 day; segments roll hourly so compaction keeps up.
      Same partition count as responses (partition p of one belongs to p of the other).
    - mids: compacted and deleted after 2 days (the 24 h mid memory with margin).
    - imns: compacted, no time limit (the next shared-IMN number per partition and LEADS's
      floor must outlive everything); small hourly segments so compaction keeps it short.
      Mids and their marks are written to the partition of the request's ORI, so it has
      the requests topic's partition count: a router restores the partitions it owns.
    - records, control: compacted, no time limit (the last value per key is the state).
    """
    t = settings.topics
    p = t.partitions
    big = str(8 * MIB)  # replies to a QIM carry every stored image
    request_bytes = str(settings.max_request_bytes + MIB)
    week = {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)}
    month = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}
    compact = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "retention.ms": "-1"}
    # Deadlines count from the broker's append time (switch/kafka/brokerclock.py).
    broker_time = {"message.timestamp.type": "LogAppendTime"}
    return [
        TopicSpec(t.requests, p, {"max.message.bytes": request_bytes, **week},
                  "requests from producers"),
        TopicSpec(t.requests_byori, p, {"max.message.bytes": request_bytes, **week},
                  "requests forwarded by a router to the partition of their ORI"),
        TopicSpec(t.replies, p, {"max.message.bytes": big, **week},
                  "one reply per request (+ supplements)"),
        TopicSpec(t.dlq, 1, {"max.message.bytes": request_bytes, **week}, "unreadable input"),
        TopicSpec(
            t.audit, p, {"cleanup.policy": "delete", "retention.ms": str(400 * DAY_MS)},
            "audit entries, kept 400 days",
        ),
        TopicSpec(t.control, 1, {**compact, **broker_time}, "simulation controls, last one per system"),
        TopicSpec(t.leg_requests("LEADS"), p,
                  {"max.message.bytes": request_bytes, **month, **broker_time},
                  "router -> LEADS service"),
        TopicSpec(t.leg_requests("NCIC"), p,
                  {"max.message.bytes": request_bytes, **month, **broker_time},
                  "router -> NCIC service"),
        *(TopicSpec(t.store_changelog(system), p, {"max.message.bytes": big, **compact},
                    f"{system}'s store changelog: records, images, answers (services/changelog.py)")
          for system in ("LEADS", "NCIC")),
        TopicSpec(t.responses, p, {"max.message.bytes": big, **week, **broker_time},
                  "route manifests and leg answers, keyed by cid"),
        TopicSpec(t.correlator, p,
                  {"max.message.bytes": big, **compact, **broker_time,
                   "segment.ms": str(3600 * 1000), "delete.retention.ms": str(DAY_MS)},
                  "correlator's changelog: waiting and finished transactions, keyed by cid"),
        TopicSpec(t.records, p, compact,
                  "record directory published by LEADS, keyed by LNO (shared IMNs: imn/<IMN>)"),
        TopicSpec(t.mids, p, {**compact, "cleanup.policy": "compact,delete",
                              "retention.ms": str(2 * DAY_MS)},
                  "router's memory of mids (idempotency), keyed by ORI/mid"),
        TopicSpec(t.imns, 1, {**compact, "segment.bytes": str(MIB), "segment.ms": str(3600_000)},
                  "shared-IMN sequence per requests partition (router) and LEADS's floor"),
        TopicSpec(t.agencies, 1, compact,
                  "agency principals and the ORIs each may send for (`switch agency add`)"),
    ]


def agency_topic_specs(settings: Settings, name: str) -> list[TopicSpec]:
    """An agency's own request topic (as the public one: the router reads both with the
    same partition count) and reply topic (as the public replies topic)."""
    by_name = {s.name: s for s in topic_specs(settings)}
    t = settings.topics
    req, rep = by_name[t.requests], by_name[t.replies]
    return [
        TopicSpec(t.agency_requests(name), req.partitions, dict(req.configs),
                  f"requests from agency {name} (only it may write)"),
        TopicSpec(t.agency_replies(name), rep.partitions, dict(rep.configs),
                  f"replies to agency {name} (only it may read)"),
    ]


def _same(key: str, have: str | None, want: str) -> bool:
    if have is None:
        return False
    if key == "cleanup.policy":
        return sorted(have.replace(" ", "").split(",")) == sorted(want.split(","))
    return have == want


def config_mismatches(
    specs: list[TopicSpec], partitions: dict[str, int], configs: dict[str, dict[str, str]]
) -> list[str]:
    """One line per setting of an existing topic that differs from its spec (pure)."""
    out = []
    for s in specs:
        if s.name not in configs:
            continue
        have_p = partitions.get(s.name)
        if have_p is not None and have_p != s.partitions:
            out.append(
                f"topic {s.name} has {have_p} partitions, should have {s.partitions}: delete and "
                "recreate it (`switch topics create`), or set SWITCH_PARTITIONS to match"
            )
        for key, want in sorted(s.configs.items()):
            have = configs[s.name].get(key)
            if not _same(key, have, want):
                out.append(
                    f"topic {s.name} has {key}={have}, should be {want}: run "
                    "`switch topics create --fix` (or delete and recreate the topic)"
                )
    return out


async def _describe(
    admin: AIOKafkaAdminClient, names: list[str]
) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    partitions = {
        t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)
        if t.get("error_code", 0) == 0
    }
    configs: dict[str, dict[str, str]] = {}
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    for resp in responses:
        for res in resp.resources:
            error_code, _msg, _type, name, entries = res[:5]
            if error_code == 0:
                configs[name] = {e[0]: e[1] for e in entries}
    return partitions, configs


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


async def ensure_topics(
    settings: Settings, *, extra: list[TopicSpec] | None = None, fix: bool = False
) -> list[str]:
    """Create every missing topic; return the names created. Harmless to repeat.

    Topics that already exist are checked against their spec: a setting that differs
    raises ConfigError (one line: which topic, which setting, what it is and should be,
    what to do), or with `fix` is set to its spec's value."""
    specs = topic_specs(settings) + list(extra or [])
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs(), request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [s for s in specs if s.name in existing]
        if present:
            await _check(admin, present, fix)
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


async def _check(admin: AIOKafkaAdminClient, specs: list[TopicSpec], fix: bool) -> None:
    partitions, configs = await _describe(admin, [s.name for s in specs])
    wrong = config_mismatches(specs, partitions, configs)
    if wrong and fix:
        bad = [s for s in specs if config_mismatches([s], {}, configs)]
        # AlterConfigs sets the whole set of a topic's overrides: ours, as specified.
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.name, configs=s.configs) for s in bad]
        )
        deadline = asyncio.get_running_loop().time() + 15.0
        while True:  # the broker applies a change asynchronously
            partitions, configs = await _describe(admin, [s.name for s in specs])
            wrong = config_mismatches(specs, partitions, configs)
            if not wrong or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise ConfigError(wrong[0] + more)
