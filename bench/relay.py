"""The pass-through baseline of bench_switch.py: the switch's Kafka hops with no work.

    requests --router--> leads.requests --leads--+
                     \\-> ncic.requests  --ncic--+--> responses --correlator--> replies

Four stages, each its own process (`python bench/relay.py STAGE`), named after the
switch component whose hop they stand in for, with the same client settings (the
switch's own `make_producer` / `make_consumer`: acks=all, idempotence, linger 2 ms,
read_committed) and the same transaction use:

- router: consume-transform-produce in one Kafka transaction per fetched batch (like
  the switch's router), forwarding each request's bytes unchanged to both leg topics.
  It reads only `mid`, `mke` and `ori` (msgspec, a struct of three fields) and passes
  them on as Kafka headers, the least it needs for the reply.
- leads, ncic: like the switch's services, an idempotent (non-transactional) producer;
  each request becomes a fixed ~250-byte answer on the responses topic, keyed by mid;
  offsets are committed once the answers are acknowledged.
- correlator: one transaction per batch (like the switch's correlator); when both
  answers of a mid are in, it writes a ~500-byte reply (the contract's shape, with
  `mid`, `status`, `legs`) to the replies topic, keyed by ORI.

Left out, because they are the switch's work rather than its hops: validation, image
sizing, the record directory, the route manifest, the mid memory, the audit entries,
decisions, the SQLite stores and the deadlines. Every request gets two legs (the switch
skips NCIC for VOAY records).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

import msgspec
from aiokafka import ConsumerRecord, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switch.kafka.clients import make_consumer, make_producer
from switch.settings import Settings

STAGES = ("router", "leads", "ncic", "correlator")
POLL_MS = 100
ROUTER_MAX_RECORDS = 200  # as the switch's router
MAX_RECORDS = 500  # as the switch's services and correlator


class _Head(msgspec.Struct):
    mid: str | None = None
    mke: str | None = None
    ori: str | None = None


_head = msgspec.json.Decoder(_Head)
_encoder = msgspec.json.Encoder()


def _headers(rec: ConsumerRecord[bytes, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in (rec.headers or ())}


async def _router(settings: Settings, stop: asyncio.Event) -> None:
    t = settings.topics
    group = f"{t.prefix}.relay.router"
    consumer = make_consumer(settings, t.requests, group_id=group, max_poll_records=ROUTER_MAX_RECORDS)
    producer = make_producer(settings, transactional_id=f"{group}.0")
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=ROUTER_MAX_RECORDS)
            if not batch:
                continue
            offsets: dict[TopicPartition, int] = {}
            async with producer.transaction():
                futures = []
                for tp, records in batch.items():
                    for rec in records:
                        offsets[tp] = rec.offset + 1
                        try:
                            head = _head.decode(rec.value or b"")
                        except msgspec.DecodeError:
                            continue
                        headers = [("mid", (head.mid or "").encode()), ("mke", (head.mke or "").encode()),
                                   ("ori", (head.ori or "").encode())]
                        for system in ("LEADS", "NCIC"):
                            futures.append(await producer.send(
                                t.leg_requests(system), rec.value, key=rec.key, headers=headers))
                await asyncio.gather(*futures)
                await producer.send_offsets_to_transaction(offsets, group)
    finally:
        await consumer.stop()
        await producer.stop()


def _answer(system: str, mid: str) -> bytes:
    return _encoder.encode({
        "kind": "answer", "cid": mid, "system": system,
        "leg": {"status": "ACK", "code": None, "imn": "I000000000",
                "text": f"{system:<5} ACKNOWLEDGMENT RELAYED BY THE PASS-THROUGH BASELINE, NO WORK DONE"},
        "images": [], "answered": time.time(),
    })


async def _service(settings: Settings, system: str, stop: asyncio.Event) -> None:
    t = settings.topics
    consumer = make_consumer(settings, t.leg_requests(system), group_id=f"{t.prefix}.relay.{system.lower()}",
                             max_poll_records=MAX_RECORDS)
    producer = make_producer(settings)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            if not batch:
                continue
            offsets: dict[TopicPartition, int] = {}
            futures = []
            for tp, records in batch.items():
                for rec in records:
                    offsets[tp] = rec.offset + 1
                    h = _headers(rec)
                    mid = h.get("mid", b"")
                    futures.append(await producer.send(
                        t.responses, _answer(system, mid.decode()), key=mid, headers=list(h.items())))
            await asyncio.gather(*futures)
            await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


def _reply(mid: str, mke: str, ori: str, legs: dict[str, float]) -> bytes:
    return _encoder.encode({
        "mid": mid, "cid": mid, "mke": mke, "ori": ori, "status": "COMPLETE",
        "duplicate": False, "supplement": False,
        "legs": {s: {"status": "ACK", "code": None, "imn": "I000000000",
                     "text": f"{s:<5} ACKNOWLEDGMENT RELAYED", "ms": ms} for s, ms in legs.items()},
        "errors": [], "images": [],
        "text": "LEADS ACKNOWLEDGMENT RELAYED BY THE BASELINE\nNCIC  ACKNOWLEDGMENT RELAYED BY THE BASELINE",
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


class _Answer(msgspec.Struct):
    system: str = ""
    answered: float = 0.0


_answer_decoder = msgspec.json.Decoder(_Answer)


async def _correlator(settings: Settings, stop: asyncio.Event) -> None:
    t = settings.topics
    group = f"{t.prefix}.relay.correlator"
    consumer = make_consumer(settings, t.responses, group_id=group, max_poll_records=MAX_RECORDS)
    producer = make_producer(settings, transactional_id=f"{group}.0")
    pending: dict[bytes, dict[str, float]] = {}
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            if not batch:
                continue
            offsets: dict[TopicPartition, int] = {}
            async with producer.transaction():
                futures = []
                for tp, records in batch.items():
                    for rec in records:
                        offsets[tp] = rec.offset + 1
                        h = _headers(rec)
                        mid = h.get("mid", b"")
                        answer = _answer_decoder.decode(rec.value or b"{}")
                        legs = pending.setdefault(mid, {})
                        legs[answer.system] = round((time.time() - answer.answered) * 1000, 1)
                        if len(legs) < 2:
                            continue
                        del pending[mid]
                        ori = h.get("ori", b"")
                        value = _reply(mid.decode(), h.get("mke", b"").decode(), ori.decode(), legs)
                        futures.append(await producer.send(t.replies, value, key=ori or None))
                await asyncio.gather(*futures)
                await producer.send_offsets_to_transaction(offsets, group)
    finally:
        await consumer.stop()
        await producer.stop()


async def run(stage: str, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if stage == "router":
        await _router(settings, stop)
    elif stage == "correlator":
        await _correlator(settings, stop)
    else:
        await _service(settings, stage.upper(), stop)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=STAGES)
    args = p.parse_args()
    settings = Settings.from_env()  # KAFKA_BOOTSTRAP_SERVERS, SWITCH_TOPIC_PREFIX, SWITCH_HOME
    asyncio.run(run(args.stage, settings))


if __name__ == "__main__":
    main()
