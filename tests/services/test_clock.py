"""Components whose wall clock is off the broker's, on a real broker: a query's deadline
counts on the broker's append time and clock, so skew and steps change nothing.

Each component gets its own skewed wall clock (`wall=`), never a patched `time.time`
(aiokafka uses that too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from switch.client import SwitchClient
from switch.contract.internal import LegAnswer, LegRequest, Manifest, response_decoder
from switch.contract.messages import AuditEntry, Control, QueryImage
from switch.router.loop import Router
from switch.settings import Settings
from tests.services.helpers import OWNER, RECORDS, SOR_LNO, leg, mid
from tests.services.kafka_helpers import (
    answers,
    encoder,
    producer,
    read_until,
    reader,
    seed,
    send_control,
    send_legs,
    service,
)
from tests.services.test_rules import eim

pytestmark = pytest.mark.kafka

SKEWS = [pytest.param(30.0, id="plus30s"), pytest.param(-3600.0, id="minus1h")]


def skewed(skew: float) -> Callable[[], float]:
    return lambda: time.time() + skew


def query(cid: str, timeout_s: float) -> LegRequest:
    return leg(QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO), "NCIC", cid=cid, timeout_s=timeout_s)


@pytest.mark.parametrize("skew", SKEWS)
async def test_a_service_with_a_skewed_clock_answers_fresh_queries(
    kafka_settings: Settings, skew: float
) -> None:
    s = kafka_settings
    seed(s, RECORDS)
    # Stamped by a router on the right time (the test's clock) with a 10 s timeout.
    queries = [query(f"q{i}", 10.0) for i in range(5)]
    async with (
        service(s, "NCIC", wall=skewed(skew)),
        producer(s) as p,
        reader(s, s.topics.responses) as responses,
    ):
        await send_legs(p, s, queries)
        got = answers(await read_until(responses, lambda v: len(answers(v)) >= 5, timeout=20))
    cids = {cid for cid, _ in got}
    assert cids == {f"q{i}" for i in range(5)}  # none dropped
    for a in got.values():
        assert a.leg.status != "UNAVAILABLE"
        # The service did run on its skewed clock (`answered` is a local fact).
        assert abs(a.answered - (time.time() + skew)) < 20


@pytest.mark.parametrize("skew", SKEWS)
async def test_after_down_forward_stale_queries_are_dropped_and_a_fresh_one_answered(
    kafka_settings: Settings, skew: float
) -> None:
    s = kafka_settings
    seed(s, RECORDS)
    timeout = 3.0
    values: list[bytes] = []
    async with (
        service(s, "NCIC", wall=skewed(skew)) as controls,
        producer(s) as p,
        reader(s, s.topics.responses) as responses,
    ):
        await send_control(p, s, Control(system="NCIC", mode="down_forward"))
        await _until(lambda: controls.mode == "down_forward")
        entry = leg(eim(SOR_LNO, OWNER), "NCIC", cid="e1", imn="I000000001", timeout_s=timeout)
        stale = [query(f"s{i}", timeout) for i in range(3)]
        await send_legs(p, s, [entry, *stale])
        await asyncio.sleep(timeout + 2.0)  # down for longer than the timeout
        await read_until(responses, lambda v: bool(answers(v)), timeout=0.5, into=values)
        assert not answers(values)  # nothing while down

        await send_control(p, s, Control(system="NCIC", mode="up"))
        await _until(lambda: controls.mode == "up")
        await send_legs(p, s, [query("f1", timeout)])
        got = answers(
            await read_until(responses, lambda v: ("f1", "NCIC") in answers(v), timeout=20,
                             into=values)
        )
    cids = {cid for cid, _ in got}  # (never the answers in a failure message: images)
    assert got[("e1", "NCIC")].leg.status == "ACK"  # an entry waits, whatever its age
    assert "f1" in cids  # fresh: answered
    assert not {"s0", "s1", "s2"} & cids  # stale: dropped
    async with reader(s, s.topics.audit) as audit:
        raw = await read_until(audit, lambda v: sum(b'"dropped"' in x for x in v) >= 3,
                               timeout=20)
    entries = [msgspec.json.decode(v, type=AuditEntry) for v in raw]
    dropped = {e.cid for e in entries if e.event == "dropped"}
    assert dropped == {"s0", "s1", "s2"}
    assert all(e.outcome == "DEADLINE_PASSED" for e in entries if e.event == "dropped")


async def test_on_a_create_time_topic_a_late_query_is_answered_not_dropped(
    kafka_settings: Settings,
) -> None:
    """A leg-request topic created by an older version stamps CreateTime: the producer's
    clock, which says nothing about the broker's. The service then never drops: the
    correlator has answered TIMEOUT, and the late answer is counted (nothing lost)."""
    s = kafka_settings
    topic = s.topics.leg_requests("NCIC")
    admin = AIOKafkaAdminClient(**s.kafka.client_kwargs())
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"message.timestamp.type": "CreateTime"})])
    finally:
        await admin.close()
    await _until_stamped_create_time(s, topic, SOR_LNO.encode())
    seed(s, RECORDS)
    values: list[bytes] = []
    async with (
        service(s, "NCIC") as controls,
        producer(s) as p,
        reader(s, s.topics.responses) as responses,
    ):
        await send_control(p, s, Control(system="NCIC", mode="down_forward"))
        await _until(lambda: controls.mode == "down_forward")
        # Stamped by producers an hour behind and an hour ahead: neither may count.
        for i, skew in enumerate((-3600.0, 3600.0, 0.0)):
            q = query(f"c{i}", 1.0)
            stamp = int((time.time() + skew) * 1000)
            await (await p.send(topic, key=SOR_LNO.encode(), value=encoder.encode(q),
                                timestamp_ms=stamp))
        await asyncio.sleep(3.0)  # down for longer than the timeout
        await send_control(p, s, Control(system="NCIC", mode="up"))
        got = answers(await read_until(responses, lambda v: len(answers(v)) >= 3, timeout=20,
                                       into=values))
    assert {cid for cid, _ in got} == {"c0", "c1", "c2"}


async def test_a_router_an_hour_behind_still_gets_its_queries_answered(
    kafka_settings: Settings,
) -> None:
    """The router stamps `deadline` and `created` on its own clock (informational now);
    the services count from the broker's append time, so its skew changes nothing."""
    s = kafka_settings.with_overrides(deadline_s=5.0)
    seed(s, RECORDS)
    stop = asyncio.Event()
    router = Router(s, wall=skewed(-3600.0))
    async with (
        service(s, "LEADS"),
        service(s, "NCIC"),
        reader(s, s.topics.responses) as responses,
    ):
        task = asyncio.create_task(router.run(stop))
        try:
            await asyncio.wait_for(router.wait_ready(), 90)
            async with SwitchClient(s) as client:
                await client.send(QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO))

            def complete(v: list[bytes]) -> bool:
                msgs = parsed(v)
                ms = [m for m in msgs if isinstance(m, Manifest)]
                got = {m.system for m in msgs if isinstance(m, LegAnswer)}
                return bool(ms) and got >= set(ms[0].expected)

            values = await read_until(responses, complete, timeout=30)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    msgs = parsed(values)
    [manifest] = [m for m in msgs if isinstance(m, Manifest)]
    assert manifest.expected  # at least one leg
    assert abs(manifest.created - (time.time() - 3600)) < 60  # the router's own clock
    assert manifest.timeout_s == 5.0
    systems = {m.system for m in msgs if isinstance(m, LegAnswer)}
    assert systems == set(manifest.expected)  # not dropped as "an hour late"


def parsed(values: list[bytes]) -> list[object]:
    return [response_decoder.decode(v) for v in values]


async def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _until_stamped_create_time(s: Settings, topic: str, key: bytes) -> None:
    """A topic config change reaches the partitions a moment after the admin call returns:
    probe until a record comes back stamped CreateTime, or the queries below could still be
    stamped with the broker's time (and rightly dropped). The probes are not leg requests:
    the service skips them as unreadable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    async with producer(s) as p, reader(s, topic) as r:
        while loop.time() < deadline:
            stamp = int(time.time() * 1000) - 3_600_000  # an hour back: unmistakable
            await (await p.send(topic, key=key, value=b"probe", timestamp_ms=stamp))
            batch = await r.getmany(timeout_ms=1000)
            if any(rec.timestamp == stamp for recs in batch.values() for rec in recs):
                return
        raise AssertionError(f"{topic} still stamps LogAppendTime after 20 s")
