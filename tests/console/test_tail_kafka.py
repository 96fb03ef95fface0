"""The tail loop on a real broker: replies written straight to a test's replies topic
come out filtered, rendered and linked."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from switch.console.filters import ReplyFilter
from switch.console.tail import Console, TailOptions, tail
from switch.contract.messages import Reply, encode
from switch.kafka.clients import make_producer
from switch.settings import Settings
from tests.console.helpers import OTHER_ORI, eim_reply, qim_reply, reject_reply

pytestmark = pytest.mark.kafka


async def publish(settings: Settings, replies: list[Reply]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for r in replies:  # keyed by ORI, as the switch does
            await producer.send(settings.topics.replies, encode(r), key=(r.ori or "").encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_from_beginning_filtered_and_linked(kafka_settings: Settings) -> None:
    await publish(kafka_settings, [
        eim_reply(mid="p1", cid="c1", status="PENDING", ncic="QUEUED"),
        reject_reply(mid="r-other", cid="c2", ori=OTHER_ORI),  # filtered out: other ORI
        qim_reply(mid="q1", cid="c3"),                          # filtered out: QIM
        reject_reply(mid="r1", cid="c4"),
        eim_reply(mid="p1", cid="c1", supplement=True),
    ])
    out, err = io.StringIO(), io.StringIO()
    console = Console(TailOptions(filter=ReplyFilter.parse(ori=["IL0160000"], mke=["EIM"]),
                                  from_beginning=True, footer_every=0), out, err)
    counts = await asyncio.wait_for(tail(kafka_settings, console, max_count=3), 60)
    text = out.getvalue()
    headers = [line for line in text.splitlines() if not line.startswith(" ")]
    assert [h.split()[2] for h in headers] == ["PENDING", "REJECTED", "COMPLETE"]
    assert "mid/r-other" not in text and "mid/q1" not in text
    assert "SUPPLEMENT to p1 (cid c1) - was PENDING, now COMPLETE" in text
    assert "NCIC  QUEUED" in text and "LEADS ACK" in text
    assert (counts.read, counts.shown, counts.supplements) == (5, 3, 1)
    assert "\x1b" not in text and err.getvalue() == ""


async def test_from_the_end_json_lines(kafka_settings: Settings) -> None:
    await publish(kafka_settings, [reject_reply(mid="old", cid="c-old")])  # before the console: not shown
    out, err = io.StringIO(), io.StringIO()
    console = Console(TailOptions(json=True), out, err)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(tail(kafka_settings, console, stop=stop, ready=ready, max_count=2))
    await asyncio.wait_for(ready.wait(), 60)
    await publish(kafka_settings, [eim_reply(mid="new1", cid="n1"), qim_reply(mid="new2", cid="n2")])
    await asyncio.wait_for(task, 60)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["mid"] for line in lines] == ["new1", "new2"]
    assert json.loads(lines[1])["images"][0]["imn"] == "X17A4394M0"


async def test_stop_event_ends_a_quiet_tail(kafka_settings: Settings) -> None:
    console = Console(TailOptions(), io.StringIO(), io.StringIO())
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(tail(kafka_settings, console, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 60)
    stop.set()
    counts = await asyncio.wait_for(task, 10)
    assert counts.read == 0
