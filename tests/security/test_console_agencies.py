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
