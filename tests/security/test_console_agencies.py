"""The operator's console shows every agency's replies too; an agency's only its own."""

from __future__ import annotations

import asyncio
import io

import pytest

from switch.console.tail import Console, TailOptions, tail
from switch.contract.messages import encode
from switch.kafka.clients import make_producer
from switch.settings import Settings
from tests.console.helpers import reject_reply
from tests.security.conftest import agency

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


async def test_operator_console_tails_agency_replies(kafka_settings: Settings) -> None:
    chi = await agency(kafka_settings, "CON1", ["IL0160000"])
    await agency(kafka_settings, "CON2", ["IL0450300"])
    t = kafka_settings.topics
    producer = make_producer(kafka_settings)  # the switch's side (operator may write)
    await producer.start()
    try:
        for topic, mid in ((t.replies, "pub"), (t.agency_replies("CON1"), "one"),
                           (t.agency_replies("CON2"), "two")):
            await producer.send_and_wait(topic, encode(reject_reply(mid=mid, cid=f"c-{mid}")))
    finally:
        await producer.stop()

    async def shown(settings: Settings, count: int) -> str:
        out = io.StringIO()
        console = Console(TailOptions(from_beginning=True, footer_every=0), out, io.StringIO())
        await asyncio.wait_for(tail(settings, console, max_count=count), 60)
        return out.getvalue()

    operator = await shown(kafka_settings, 3)
    assert all(f"mid/{m}" in operator for m in ("pub", "one", "two"))
    own = await shown(chi, 1)
    assert "mid/one" in own and "mid/two" not in own and "mid/pub" not in own


async def test_an_agency_added_later_is_followed_by_the_console_and_the_web(
    kafka_settings: Settings,
) -> None:
    from switch.web.server import WebConsole, WebOptions

    t = kafka_settings.topics
    out = io.StringIO()
    console = Console(TailOptions(footer_every=0), out, io.StringIO())
    ready = asyncio.Event()
    tailing = asyncio.create_task(tail(kafka_settings, console, max_count=1, ready=ready))
    async with WebConsole(kafka_settings, WebOptions(port=0)) as web:
        await asyncio.wait_for(ready.wait(), 60)
        await agency(kafka_settings, "LATE1", ["IL0160000"])  # after both started
        producer = make_producer(kafka_settings)
        await producer.start()
        try:
            await producer.send_and_wait(t.agency_replies("LATE1"),
                                         encode(reject_reply(mid="late", cid="c-late")))
        finally:
            await producer.stop()
        await asyncio.wait_for(tailing, 60)
        assert "mid/late" in out.getvalue()
        for _ in range(100):
            if any(r.get("mid") == "late" for r in web.board.recent):
                break
            await asyncio.sleep(0.2)
        assert any(r.get("mid") == "late" for r in web.board.recent)
