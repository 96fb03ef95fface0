"""A producer's view of the switch: send requests, wait for their replies.

Used by `switch submit`, `switch demo`, the load tester and the tests. It reads the
reply topic from its end *before* sending, so no reply can slip past it, and matches
replies to requests by `mid`.

    async with SwitchClient(settings) as client:
        reply = await client.request({"mke": "QIM", "mid": "q1", "ori": "IL0160000", "lno": "X17A4394"})
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import msgspec

from switch.contract.messages import AnyRequest, Control, Reply, encode, reply_decoder
from switch.kafka.clients import assign_whole_topic, make_consumer, make_producer
from switch.kafka.replies import reply_batches
from switch.settings import Settings


def new_mid(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


class SwitchClient:
    def __init__(self, settings: Settings, *, reply_topic: str | None = None) -> None:
        self.settings = settings
        self.reply_topic = reply_topic or settings.replies_topic
        self.requests_topic = settings.requests_topic  # an agency's own, or the public one
        self._producer = make_producer(settings)
        self._consumer = make_consumer(settings, group_id=None, isolation_level="read_committed")
        self._replies: dict[str, list[Reply]] = defaultdict(list)
        self._waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SwitchClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        await assign_whole_topic(self._consumer, self.reply_topic, from_end=True)
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._consumer.stop()
        await self._producer.stop()

    async def _read(self) -> None:
        async for replies in reply_batches(self._consumer, reply_decoder, max_records=1000):
            for reply in replies:
                assert reply.mid is not None
                self._replies[reply.mid].append(reply)
                for fut in self._waiters.pop(reply.mid, []):
                    if not fut.done():
                        fut.set_result(None)

    async def send(
        self, request: AnyRequest | Mapping[str, Any] | bytes, *, key: str | None = None
    ) -> str | None:
        """Send a request (typed, a dict, or raw bytes); return its mid when known."""
        if isinstance(request, bytes):
            value, mid, ori = request, None, None
        elif isinstance(request, Mapping):
            value = msgspec.json.encode(dict(request))
            mid, ori = request.get("mid"), request.get("ori")
        else:
            value, mid, ori = encode(request), request.mid, request.ori
        k = key or ori
        await (await self._producer.send(self.requests_topic, value,
                                         key=k.encode() if isinstance(k, str) else None))
        return mid if isinstance(mid, str) else None

    async def control(self, control: Control) -> None:
        """Publish a control command for a simulated system (as `switch ctl` does)."""
        await (await self._producer.send(self.settings.topics.control, encode(control),
                                         key=control.system.encode()))

    def replies(self, mid: str) -> list[Reply]:
        return list(self._replies.get(mid, []))

    async def wait(self, mid: str, *, count: int = 1, timeout: float = 30.0,
                   predicate: Any = None) -> list[Reply]:
        """Wait until `count` replies (matching `predicate`, if given) arrived for `mid`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def matching() -> list[Reply]:
            rs = self._replies.get(mid, [])
            return [r for r in rs if predicate(r)] if predicate else list(rs)

        while len(matching()) < count:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no reply for mid {mid} within {timeout:g} s "
                                   f"(got {len(matching())} of {count})")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters[mid].append(fut)
            try:
                await asyncio.wait_for(fut, left)
            except TimeoutError:
                pass
        return matching()

    async def request(self, request: AnyRequest | Mapping[str, Any], *, timeout: float = 30.0) -> Reply:
        """Send and wait for the first (non-supplement) reply."""
        mid = await self.send(request)
        if mid is None:
            raise ValueError("request has no mid")
        rs = await self.wait(mid, timeout=timeout, predicate=lambda r: not r.supplement)
        return rs[0]
