"""Recording live traffic (`switch capture`) as a traffic file that `switch replay
--original-timing` plays back at the recorded pace.

Requests are read from `switch.requests` (from its end, or its beginning) with their
Kafka timestamps (the producer's send time); each becomes a step whose `t` is seconds
after the first. Images are stored once each (`$img:` placeholders). Replies are read
alongside: when a captured EIM's reply returned an IMN and a later captured request
names that IMN, the IMN is replaced by `$imn:<step>`, so a replay modifies or cancels
the image its own EIM made, not the original's. Input that is not a JSON object is kept
as raw bytes. Everything is held in memory until the end of the capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from switch.kafka.clients import assign_whole_topic, make_consumer
from switch.kafka.replies import reply_batches
from switch.loadtest.replay import imn_of, reply_decoder
from switch.loadtest.traffic import IMG_PREFIX, IMN_PREFIX, Header, Step, Traffic
from switch.settings import Settings

INLINE_IMAGE_MAX = 256  # shorter image fields stay inline (they are not images anyway)
_salvage_mid = re.compile(rb'"mid"\s*:\s*"([A-Za-z0-9._:-]{1,64})"').search
_salvage_ori = re.compile(rb'"ori"\s*:\s*"([A-Z]{2}[A-Z0-9]{7})"').search


@dataclass(frozen=True, kw_only=True)
class CaptureOptions:
    duration: float | None = None
    count: int | None = None
    from_beginning: bool = False
    reply_grace: float = 5.0  # how long to wait for the replies of captured EIMs
    link: bool = True
    progress: bool = True


@dataclass
class Captured:
    """What a capture read, before it becomes a traffic file."""

    requests: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    imn_by_mid: dict[str, str] = field(default_factory=dict)
    replied: set[str] = field(default_factory=set)  # mids with a (first) reply
    started: str = ""


async def capture(settings: Settings, options: CaptureOptions, *,
                  stop: asyncio.Event | None = None, ready: asyncio.Event | None = None,
                  out: TextIO | None = None) -> Captured:
    """Read requests until `count`, `duration` or `stop`; and replies, for linking.
    `ready` is set once both topics' positions are fixed."""
    out = out or sys.stderr
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    t = settings.topics
    got = Captured(started=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    requests = make_consumer(settings, group_id=None, isolation_level="read_uncommitted")
    replies = make_consumer(settings, group_id=None)
    reader: asyncio.Task[None] | None = None
    try:
        await requests.start()
        await replies.start()
        await assign_whole_topic(requests, t.requests, from_end=not options.from_beginning)
        await assign_whole_topic(replies, t.replies, from_end=not options.from_beginning)
        if options.link:
            reader = asyncio.create_task(_read_replies(replies, got))
        if ready is not None:
            ready.set()
        start = loop.time()
        last_note = start
        while not stop.is_set():
            if options.duration is not None and loop.time() - start >= options.duration:
                break
            if options.count is not None and len(got.requests) >= options.count:
                break
            batch = await requests.getmany(timeout_ms=200, max_records=1000)
            for records in batch.values():
                got.requests.extend(r for r in records if r.value is not None)
            if options.progress and loop.time() - last_note >= (0.5 if out.isatty() else 5.0):
                last_note = loop.time()
                line = f"capture {loop.time() - start:6.1f} s  requests {len(got.requests)}"
                out.write(("\r\x1b[2K" + line) if out.isatty() else line + "\n")
                out.flush()
        if options.count is not None:
            got.requests.sort(key=_order)
            del got.requests[options.count:]
        if reader is not None:
            eims = _eim_mids(got.requests)
            for _ in range(int(options.reply_grace * 10)):  # poll: replies come in batches
                if eims <= got.replied:
                    break
                await asyncio.sleep(0.1)
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await requests.stop()
        await replies.stop()
    if options.progress and out.isatty():
        out.write("\n")
    return got


async def _read_replies(consumer: AIOKafkaConsumer, got: Captured) -> None:
    async for replies in reply_batches(consumer, reply_decoder):
        for reply in replies:
            assert reply.mid is not None
            if not reply.supplement:
                got.replied.add(reply.mid)
            imn = imn_of(reply)
            if imn is not None:
                got.imn_by_mid.setdefault(reply.mid, imn)


def _order(rec: ConsumerRecord[bytes, bytes]) -> tuple[int, int, int]:
    return rec.timestamp, rec.partition, rec.offset


def _eim_mids(records: list[ConsumerRecord[bytes, bytes]]) -> set[str]:
    mids: set[str] = set()
    for rec in records:
        m = _salvage_mid(rec.value or b"")
        if m and b'"EIM"' in (rec.value or b""):
            mids.add(m.group(1).decode())
    return mids


def to_traffic(got: Captured, *, topic: str, link: bool = True) -> tuple[Traffic, dict[str, int]]:
    """The captured requests as a traffic file, in send-time order."""
    records = sorted(got.requests, key=_order)
    images: dict[str, str] = {}
    steps: list[Step] = []
    step_of_imn: dict[str, str] = {}
    counts = {"requests": 0, "raw": 0, "linked": 0, "images": 0}
    t0 = records[0].timestamp if records else 0
    for n, rec in enumerate(records, 1):
        step_id = f"c{n:06d}"
        value = rec.value or b""
        key = None
        if rec.key is not None:
            with contextlib.suppress(UnicodeDecodeError):
                key = rec.key.decode()
        t = round((rec.timestamp - t0) / 1000, 6)
        request = _as_request(value)
        if request is None:
            mid_m, ori_m = _salvage_mid(value), _salvage_ori(value)
            raw_mid = mid_m.group(1).decode() if mid_m else None
            steps.append(Step(id=step_id, raw=value, raw_mid=raw_mid, key=key, t=t, tag="captured",
                              expect_reply=bool(mid_m and ori_m)))
            counts["raw"] += 1
            continue
        counts["requests"] += 1
        image = request.get("image")
        if isinstance(image, str) and len(image) > INLINE_IMAGE_MAX:
            image_id = "c" + hashlib.sha256(image.encode()).hexdigest()[:16]
            images.setdefault(image_id, image)
            request["image"] = IMG_PREFIX + image_id
        imn = request.get("imn")
        if link and isinstance(imn, str) and imn in step_of_imn:
            request["imn"] = IMN_PREFIX + step_of_imn[imn]
            counts["linked"] += 1
        mid = request.get("mid")
        if link and request.get("mke") == "EIM" and isinstance(mid, str) and mid in got.imn_by_mid:
            step_of_imn[got.imn_by_mid[mid]] = step_id
        expect = isinstance(mid, str)
        steps.append(Step(id=step_id, request=request, key=key, t=t, tag="captured",
                          expect_reply=expect))
    counts["images"] = len(images)
    header = Header(source="capture", params={
        "topic": topic, "started": got.started, "t0_ms": t0, "steps": len(steps), **counts,
    })
    return Traffic(header=header, images=images, steps=steps), counts


def _as_request(value: bytes) -> dict[str, Any] | None:
    try:
        obj = msgspec.json.decode(value)
    except msgspec.DecodeError:
        return None
    return obj if isinstance(obj, dict) else None
