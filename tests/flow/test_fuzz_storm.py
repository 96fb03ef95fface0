"""Fuzz storm: seeded hostile inputs through the public requests topic, into the four
components run as separate processes. No component restarts; every readable request is
answered exactly once; every unreadable input is in the dead-letter topic, at its offset,
with a reason; a throughput figure is printed. `make test`: 2,000 inputs;
`make reliability`: 100,000."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from services.seeding import seed_stores
from switch.contract.messages import dead_letter_decoder
from switch.kafka.clients import make_consumer, make_producer
from switch.settings import Settings
from tests.flow.fuzzgen import FuzzGen, Input
from tests.flow.harness import ReplyReader, logs_tail, record_figures, scale, start_components

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_fuzz_storm(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.with_overrides(deadline_s=15.0)
    records = seed_stores(settings, 200, 21)
    total = scale(2000, 100_000)
    inputs: list[Input] = []  # kept without their values
    comps = start_components(settings, tmp_path)

    dead: dict[tuple[int, int], str] = {}
    dlq = make_consumer(settings, group_id=None)
    await dlq.start()
    tps = [TopicPartition(settings.topics.dlq, p) for p in range(settings.topics.partitions)]
    dlq.assign(tps)
    await dlq.seek_to_beginning(*tps)

    async def read_dlq() -> None:
        while True:
            batch = await dlq.getmany(timeout_ms=200)
            for rs in batch.values():
                for r in rs:
                    d = dead_letter_decoder.decode(r.value)
                    dead[(d.partition, d.offset)] = d.reason

    dlq_task = asyncio.create_task(read_dlq())
    where: list[tuple[int, int]] = []
    try:
        async with ReplyReader(settings) as reader:
            # Warm up: one valid query answered before the storm, so the figure is the storm's.
            warm = list(FuzzGen(99, records, prefix="warm").inputs(40))
            warm_mids = [i.mid for i in warm if i.kind == "valid_qim" and i.mid]
            producer = make_producer(settings, request_timeout_ms=120_000)
            await producer.start()
            try:
                for i in warm:
                    if i.kind == "valid_qim":
                        await producer.send(settings.topics.requests, i.value, key=i.key)
                await reader.wait_answered(warm_mids, 120)
                t0 = time.monotonic()
                futures = []
                for i in FuzzGen(7, records).inputs(total):
                    futures.append(await producer.send(settings.topics.requests, i.value, key=i.key))
                    inputs.append(dataclasses.replace(i, value=b""))
                metas = await asyncio.gather(*futures)
            finally:
                await producer.stop()
            where = [(m.partition, m.offset) for m in metas]
            owed_reply = [i.mid for i in inputs if i.owed == "reply" and i.mid]
            owed_dead = [w for w, i in zip(where, inputs, strict=True) if i.owed == "dead"]
            until = time.monotonic() + scale(150, 1800)
            while time.monotonic() < until:
                if reader.answered(owed_reply) == len(owed_reply) and all(w in dead for w in owed_dead):
                    break
                await asyncio.sleep(0.2)
            done = time.monotonic()
            await asyncio.sleep(1.0)  # a doubled reply would come right behind
        restarts = {c.name: c.restarts() for c in comps.values()}
        dead_procs = [c.name for c in comps.values() if not c.alive()]
    finally:
        dlq_task.cancel()
        await asyncio.gather(dlq_task, return_exceptions=True)
        await dlq.stop()
        for c in comps.values():
            c.stop()

    replies = reader.replies
    missing = [(i.kind, i.mid) for i in inputs if i.owed == "reply" and i.mid
               and not any(not r.supplement for r in replies.get(i.mid, ()))]
    doubled = [(i.kind, i.mid) for i in inputs if i.mid
               and len([r for r in replies.get(i.mid, ()) if not r.supplement]) > 1]
    not_dead = [i.kind for w, i in zip(where, inputs, strict=True) if i.owed == "dead" and w not in dead]
    no_reason = [w for w in where if w in dead and not dead[w]]
    untraced = [i.kind for w, i in zip(where, inputs, strict=True) if i.owed == "any"
                and w not in dead and not (i.mid and replies.get(i.mid))]
    # A mid that is not valid text is not echoed: those rejects are counted, not traced.
    known = {i.mid for i in inputs if i.mid} | set(warm_mids)
    anonymous = sum(len(rs) for m, rs in replies.items() if m not in known)
    bad_mids = [k for k in untraced if k.startswith("bad_mid")]
    untraced = [k for k in untraced if not k.startswith("bad_mid")]
    kinds = Counter(i.kind.split("_")[0] for i in inputs)
    record_figures("fuzz storm", inputs=total, owed_replies=len(owed_reply),
                   owed_dead_letters=len(owed_dead), missing=len(missing), doubled=len(doubled),
                   not_dead_lettered=len(not_dead), restarts=sum(restarts.values()),
                   inputs_per_s=round(total / max(done - t0, 1e-6)), mix=dict(kinds))
    assert not dead_procs, f"components exited: {dead_procs}\n{logs_tail(comps)}"
    assert not any(restarts.values()), f"components restarted: {restarts}\n{logs_tail(comps)}"
    assert not missing, f"{len(missing)} readable requests without a reply: {missing[:10]}"
    assert not doubled, f"{len(doubled)} requests answered twice: {doubled[:10]}"
    assert not not_dead, f"{len(not_dead)} unreadable inputs not dead-lettered: {Counter(not_dead)}"
    assert not no_reason, f"dead letters without a reason at {no_reason[:5]}"
    assert not untraced, f"{len(untraced)} inputs left no reply and no dead letter: {Counter(untraced)}"
    assert anonymous >= len(bad_mids), (
        f"{len(bad_mids)} requests with an unreadable mid, {anonymous} replies without a known mid")
