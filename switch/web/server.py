"""`switch web`: the operators' web console, an aiohttp app fed by one Kafka consumer.

One page, no front-end build: plain HTML, a little vanilla JavaScript and server-sent
events (the browser's EventSource reconnects by itself). A bundler, a framework and a
node toolchain would buy nothing for one page with a list, three filters and a search
box, and would add a build step to a project that has none; the page is a file in the
package (`page.html`), served as it is.

Reading: one consumer, no group, read_committed (`make_consumer`), assigned every
partition of the replies, audit, responses (the router's manifests and the systems'
answers) and dead-letter topics. Replies are read from the end (only new ones) unless
`from_beginning`; audit entries, responses and dead letters from at most
`SCAN_PER_PARTITION` records before the end of each partition, so a search finds what
happened before the console started, within a bound. What it keeps is bounded
(`switch.web.index`), so it can run for days.

Endpoints: `/` the page; `/events` server-sent events (`reply`, `deadletter`, `stats`
once a second; the recent replies first); `/api/search?q=` cid, mid, LNO, IMN or trace id ->
the transactions with their manifest, answers, audit hops and replies, each with its time
(no image bytes); `/api/deadletters`
(reasons, positions, key and sizes, never the raw bytes); `/api/stats`.

Nothing is logged per request (no access log), and no image bytes reach a log: only a
reply pushed to the page carries its photos, as base64 for an <img> data: URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
import structlog
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from switch import tracing
from switch.console.tail import AgencyReplies, agency_reply_partitions
from switch.contract.internal import Manifest
from switch.contract.messages import AuditEntry, dead_letter_decoder, reply_decoder
from switch.kafka.clients import make_consumer, topic_partitions
from switch.settings import Settings
from switch.web.index import AnswerView, Board, response_view_decoder

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
SCAN_PER_PARTITION = 50_000  # audit / dead-letter records read back per partition on start
MAX_RECORDS = 200  # per fetch: bounds what one poll holds, QIM images included
POLL_MS = 200
STATS_EVERY_S = 1.0
SUBSCRIBER_QUEUE = 1000  # events a slow page may lag behind before it is dropped (it reconnects)

audit_decoder = msgspec.json.Decoder(AuditEntry)
log = structlog.get_logger("web")


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(SUBSCRIBER_QUEUE)


class Hub:
    """Fans each event out to every connected page; a page too slow to keep up is dropped."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()

    def publish(self, chunk: bytes) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(chunk)
            except asyncio.QueueFull:
                self.subscribers.discard(sub)
                sub.queue = asyncio.Queue(1)
                sub.queue.put_nowait(None)

    def close(self) -> None:
        for sub in list(self.subscribers):
            self.subscribers.discard(sub)
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)


@dataclass(frozen=True, kw_only=True)
class WebOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    from_beginning: bool = False
    scan_per_partition: int = SCAN_PER_PARTITION


class WebConsole:
    """The app and its feed. `await start()` binds and fixes the read positions (anything
    written after it returns is seen); `url` is then the page's address; `await stop()`."""

    def __init__(self, settings: Settings, options: WebOptions | None = None) -> None:
        self.settings = settings
        self.options = options or WebOptions()
        self.board = Board(time.monotonic)
        self.hub = Hub()
        self.url = ""
        self._consumer: AIOKafkaConsumer | None = None
        self._feed: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        consumer = self._consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        await self._assign(consumer)
        self._feed = asyncio.create_task(self._read(consumer))
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/search", self._search)
        app.router.add_get("/api/deadletters", self._dead_letters)
        app.router.add_get("/api/stats", self._stats)
        app.on_shutdown.append(self._on_shutdown)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        port = self._runner.addresses[0][1]
        host = self.options.host if ":" not in self.options.host else f"[{self.options.host}]"
        self.url = f"http://{host}:{port}/"
        return self.url

    async def stop(self) -> None:
        self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        if self._consumer is not None:
            await self._consumer.stop()

    async def __aenter__(self) -> WebConsole:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _on_shutdown(self, app: web.Application) -> None:
        self.hub.close()

    # ------------------------------------------------------------------ Kafka

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        t = self.settings.topics
        replies = await topic_partitions(consumer, t.replies) or [TopicPartition(t.replies, 0)]
        if self.settings.agency is None:  # an operator sees the agencies' replies too
            replies += await agency_reply_partitions(consumer, self.settings)
        history = [tp for topic in (t.audit, t.dlq, t.responses)
                   for tp in await topic_partitions(consumer, topic)]
        consumer.assign(replies + history)
        if self.options.from_beginning:
            await consumer.seek_to_beginning(*replies)
        else:
            await consumer.seek_to_end(*replies)
        if history:
            begins = await consumer.beginning_offsets(history)
            ends = await consumer.end_offsets(history)
            for tp in history:
                consumer.seek(tp, max(begins[tp], ends[tp] - self.options.scan_per_partition))
        for tp in replies + history:  # fix the positions now: nothing written later is missed
            await consumer.position(tp)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        t = self.settings.topics
        follow = AgencyReplies(self.settings)
        while True:
            await follow.refresh(consumer)  # agencies added since the console started
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            for tp, records in batch.items():
                for rec in records:
                    if rec.value is None:
                        continue
                    try:
                        if tp.topic == t.replies or _AGENCY_REPLIES.fullmatch(tp.topic):
                            event = self.board.add_reply(reply_decoder.decode(rec.value))
                            self.hub.publish(sse("reply", event))
                        elif tp.topic == t.audit:
                            self.board.index.add_audit(
                                audit_decoder.decode(rec.value),
                                tracing.trace_id(tracing.traceparent_of(rec.headers or ())))
                        elif tp.topic == t.responses:
                            self._response(rec)
                        elif tp.topic == t.dlq:
                            view = self.board.add_dead_letter(
                                dead_letter_decoder.decode(rec.value),
                                partition=tp.partition, offset=rec.offset)
                            self.hub.publish(sse("deadletter", view))
                    except msgspec.DecodeError as exc:
                        if tp.topic == t.replies:
                            self.board.counts.unreadable += 1
                        log.warning("skipped an unreadable record", topic=tp.topic,
                                    partition=tp.partition, offset=rec.offset, error=str(exc)[:200])

    def _response(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        """A manifest or a leg answer into its transaction, with the broker's append time."""
        msg = response_view_decoder.decode(rec.value or b"")
        ts = _iso(rec.timestamp)
        if isinstance(msg, Manifest):
            self.board.index.add_manifest(msg, ts)
        elif isinstance(msg, AnswerView):
            self.board.index.add_answer(msg, ts)

    # ------------------------------------------------------------------ HTTP

    async def _page(self, request: web.Request) -> web.Response:
        html = resources.files("switch.web").joinpath("page.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        })
        await resp.prepare(request)
        sub = Subscriber()
        backlog = list(self.board.recent)  # taken with the subscription: no event between
        self.hub.subscribers.add(sub)
        try:
            await resp.write(sse("stats", self.board.stats()))
            for event in backlog:
                await resp.write(sse("reply", event))
            async for chunk in self._chunks(sub):
                await resp.write(chunk)
        except ConnectionResetError:  # the page went away
            pass
        finally:
            self.hub.subscribers.discard(sub)
        return resp

    async def _chunks(self, sub: Subscriber) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await asyncio.wait_for(sub.queue.get(), STATS_EVERY_S)
            except TimeoutError:
                yield sse("stats", self.board.stats())
                continue
            if chunk is None:
                return
            yield chunk

    async def _search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "")
        return web.json_response({"query": q, "transactions": self.board.index.search(q)})

    async def _dead_letters(self, request: web.Request) -> web.Response:
        return web.json_response({"dead_letters": list(reversed(self.board.dead_letters))})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.board.stats())


async def serve(settings: Settings, options: WebOptions, stop: asyncio.Event) -> str:
    """Run the console until `stop` is set; returns its address."""
    async with WebConsole(settings, options) as console:
        print(f"switch web: serving {console.url} (replies, audit and dead letters of "
              f"{settings.topics.prefix} on {settings.kafka.bootstrap_servers}); Ctrl-C to stop",
              flush=True)
        await stop.wait()
        return console.url


_AGENCY_REPLIES = re.compile(r".+\.agency\.[A-Za-z0-9_-]+\.replies")


def _iso(ms: int | None) -> str | None:
    """A record's timestamp (ms) as the audit entries write theirs (RFC 3339, UTC, ms)."""
    if not ms or ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
