"""Kafka plumbing for the service flow tests: run a service, send, collect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.controls import Controls
from services.loop import run_service
from services.stores import SystemStores, read_only_union
from switch.contract.fields import imn_kind
from switch.contract.internal import LegAnswer, LegRequest, RecordEntry
from switch.contract.messages import Control
from switch.kafka.clients import make_consumer, make_producer
from switch.settings import Settings

encoder = msgspec.json.Encoder()
answer_decoder = msgspec.json.Decoder(LegAnswer)


def seed(settings: Settings, records: list[RecordEntry]) -> None:
    for system in ("LEADS", "NCIC"):
        with SystemStores(settings, system) as stores:
            stores.insert_records(records)


@asynccontextmanager
async def service(
    settings: Settings,
    system: str,
    *,
    controls: Controls | None = None,
    wall: Callable[[], float] = time.time,
) -> AsyncIterator[Controls]:
    """Run a service in this event loop until the block ends; yields its controls.
    `wall` is the service's wall clock (skewed in the clock tests)."""
    controls = controls or Controls(system, seed=1)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_service(settings, system, stop=stop, controls=controls, ready=ready, wall=wall)
    )
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises the service's error
    assert ready.is_set(), "service did not start"
    try:
        yield controls
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(settings)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def lno_of_image(settings: Settings, leg: LegRequest) -> str | None:
    """The record of the image a leg addresses by IMN, as the router keys it (by LNO)."""
    imn = getattr(leg.request, "imn", None)
    if not imn:
        return None
    try:
        db = read_only_union(settings.store_paths(leg.system))
    except FileNotFoundError:
        return None
    try:
        row = db.execute("SELECT lno FROM images WHERE imn = ? LIMIT 1", (imn,)).fetchone()
    finally:
        db.close()
    return str(row[0]) if row else (imn[:8] if imn_kind(imn) == "VOAY" else None)


def image_count(settings: Settings, system: str) -> int:
    db = read_only_union(settings.store_paths(system))
    try:
        return int(db.execute("SELECT count(*) FROM images").fetchone()[0])
    finally:
        db.close()


async def send_legs(p: AIOKafkaProducer, settings: Settings, legs: list[LegRequest]) -> None:
    futures = []
    for leg in legs:
        key = getattr(leg.request, "lno", None) or lno_of_image(settings, leg) or leg.cid
        futures.append(
            await p.send(
                settings.topics.leg_requests(leg.system), key=key.encode(), value=encoder.encode(leg)
            )
        )
    await asyncio.gather(*futures)


async def send_control(p: AIOKafkaProducer, settings: Settings, control: Control) -> None:
    await (
        await p.send(settings.topics.control, key=control.system.encode(), value=encoder.encode(control))
    )


@asynccontextmanager
async def reader(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer of every partition of `topic`, from the beginning."""
    c = make_consumer(settings, topic, group_id=None)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


async def read_until(
    consumer: AIOKafkaConsumer,
    done: Callable[[list[bytes]], bool],
    *,
    timeout: float = 30.0,
    into: list[bytes] | None = None,
) -> list[bytes]:
    """Values read so far (appended to `into`) once `done(values)` or the timeout."""
    values = into if into is not None else []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done(values) and loop.time() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            values.extend(r.value for r in records if r.value is not None)
    return values


def answers(values: list[bytes]) -> dict[tuple[str, str], LegAnswer]:
    """Leg answers by (cid, system); other message kinds on the topic are ignored."""
    out: dict[tuple[str, str], LegAnswer] = {}
    for v in values:
        try:
            a = answer_decoder.decode(v)
        except msgspec.DecodeError:
            continue
        out[(a.cid, a.system)] = a
    return out
