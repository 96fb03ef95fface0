"""`switch web` over HTTP, against a whole switch on the real broker: the live stream, the
transaction search and the dead letters (switch/web/server.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from switch.client import new_mid
from switch.settings import Settings
from switch.web.server import WebConsole, WebOptions
from tests.flow.conftest import RunningSwitch, b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

HOPS = {("router", "received"), ("router", "routed"), ("leads", "answered"),
        ("ncic", "answered"), ("correlator", "replied")}


@pytest.fixture
async def web(switch: RunningSwitch) -> AsyncIterator[WebConsole]:
    async with WebConsole(switch.settings, WebOptions(port=0)) as console:
        yield console


async def search_until(http: aiohttp.ClientSession, url: str, q: str, cid: str,
                       timeout: float = 20) -> dict[str, Any]:
    """The transaction `cid` as found by `q`, once its correlator hop is indexed."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        async with http.get(f"{url}api/search", params={"q": q}) as resp:
            assert resp.status == 200
            body = await resp.json()
        found = [t for t in body["transactions"] if t["cid"] == cid]
        if found and {(h["component"], h["event"]) for h in found[0]["hops"]} >= HOPS:
            return found[0]
        if loop.time() > give_up:
            raise AssertionError(f"search {q!r}: transaction {cid} incomplete: {found}")
        await asyncio.sleep(0.2)


async def read_event(stream: aiohttp.StreamReader, kind: str) -> dict[str, Any]:
    """The next server-sent event of `kind`."""
    event = None
    while True:
        line = (await stream.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == kind:
            data: dict[str, Any] = json.loads(line[6:])
            return data


async def test_stream_pushes_a_submitted_reply_and_search_finds_its_hops(
    switch: RunningSwitch, web: WebConsole
) -> None:
    rec = switch.record("SOR")
    mid = new_mid("web")
    assert web.url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as http, http.get(f"{web.url}events") as events:
        assert events.status == 200
        assert events.headers["Content-Type"].startswith("text/event-stream")
        stats = await read_event(events.content, "stats")
        assert stats["replies"] == 0
        await switch.client.send({"mke": "EIM", "mid": mid, "ori": rec.ori, "lno": rec.lno,
                                  "imt": "M", "doi": "20250110", "image": b64(photo())})
        pushed = await asyncio.wait_for(read_event(events.content, "reply"), 30)
        assert pushed["mid"] == mid and pushed["status"] == "COMPLETE"
        assert pushed["legs"]["LEADS"]["status"] == "ACK" and "LEADS ACKNOWLEDGMENT EIM" in pushed["text"]
        imn = pushed["legs"]["LEADS"]["imn"]

        q = await switch.client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori,
                                         "lno": rec.lno})
        shown = await asyncio.wait_for(read_event(events.content, "reply"), 30)
        assert shown["cid"] == q.cid and len(shown["images"]) == 2
        assert shown["images"][0]["image"].startswith("/9j/")  # a JPEG, as base64 for an <img>

        cid = pushed["cid"]
        for query in (cid, mid, rec.lno.lower(), imn):
            txn = await search_until(http, web.url, query, cid)
            hops = txn["hops"]
            assert hops[0]["since_ms"] == 0.0 and all(h["since_ms"] >= 0 for h in hops)
            assert [h["ts"] for h in hops] == sorted(h["ts"] for h in hops)
            assert [r["status"] for r in txn["replies"]] == ["COMPLETE"]
        by_lno = (await (await http.get(f"{web.url}api/search", params={"q": rec.lno})).json())
        assert {t["cid"] for t in by_lno["transactions"]} >= {cid, q.cid}  # the EIM and the QIM
        qtxn = await search_until(http, web.url, q.cid, q.cid)
        assert qtxn["replies"][0]["images"][0]["bytes"] > 1000
        assert "/9j/" not in json.dumps(qtxn)  # the search shows no image bytes
        async with http.get(f"{web.url}api/stats") as resp:
            stats = await resp.json()
        assert stats["by_status"]["COMPLETE"] == 2 and stats["rate_per_s"] > 0


async def test_history_from_before_the_start_and_dead_letters_without_raw_bytes(
    switch: RunningSwitch,
) -> None:
    """Started after the fact: the audit scan finds the hops, --from-beginning the reply, and
    the dead letter is listed with its reason, position and sizes but not its bytes."""
    junk = b"\xff\xfe not json at all " + uuid.uuid4().hex.encode()
    await switch.client.send(junk, key="junk-key")
    rec = switch.record("SOR", 3)
    mid = new_mid("before")
    reply = await switch.client.request({"mke": "EIM", "mid": mid, "ori": rec.ori, "lno": rec.lno,
                                         "imt": "M", "doi": "20250110", "image": b64(photo())})
    assert reply.status == "COMPLETE"
    loop = asyncio.get_running_loop()
    async with (WebConsole(switch.settings, WebOptions(port=0, from_beginning=True)) as web,
                aiohttp.ClientSession() as http):
        txn = await search_until(http, web.url, mid, reply.cid, timeout=5)  # nothing new comes
        assert [r["mid"] for r in txn["replies"]] == [mid]
        give_up = loop.time() + 30
        while True:
            async with http.get(f"{web.url}api/deadletters") as resp:
                text = await resp.text()
            letters = json.loads(text)["dead_letters"]
            if letters or loop.time() > give_up:
                break
            await asyncio.sleep(0.3)
    assert len(letters) == 1, letters
    d = letters[0]
    assert d["reason"] and ("JSON" in d["reason"].upper() or "UTF-8" in d["reason"].upper())
    assert d["topic"] == switch.settings.topics.requests and d["key"] == "junk-key"
    assert d["raw_bytes"] == len(junk) and d["key_bytes"] == len("junk-key")
    assert "raw" not in d
    assert junk[2:].decode() not in text and b64(junk) not in text  # no raw bytes reach the page


async def test_switch_web_prints_its_local_address_serves_the_page_and_stops_on_ctrl_c(
    kafka_settings: Settings,
) -> None:
    env = dict(os.environ, SWITCH_HOME=str(kafka_settings.home),
               KAFKA_BOOTSTRAP_SERVERS=kafka_settings.kafka.bootstrap_servers,
               SWITCH_TOPIC_PREFIX=kafka_settings.topics.prefix)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switch.cli.main", "web", "--port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        async with aiohttp.ClientSession() as http, http.get(url.group()) as resp:
            assert resp.status == 200 and "EventSource" in await resp.text()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
