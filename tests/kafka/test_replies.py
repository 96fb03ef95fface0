"""The shared reply loop without a broker: what it hands back from each fetch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec

from switch.kafka.replies import reply_batches


class _Reply(msgspec.Struct):
    mid: str | None = None
    status: str = ""


class _Consumer:
    def __init__(self, *fetches: list[bytes | None]) -> None:
        self.fetches = list(fetches)
        self.asked: list[tuple[int, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, Any]:
        self.asked.append((timeout_ms, max_records))
        values = self.fetches.pop(0) if self.fetches else []
        return {"tp": [SimpleNamespace(value=v) for v in values]}


async def test_each_fetch_gives_its_readable_replies_with_a_mid() -> None:
    consumer = _Consumer(
        [b'{"mid": "a", "status": "COMPLETE"}', None, b"not json", b'{"status": "REJECTED"}'],
        [],
        [b'{"mid": "b"}'],
    )
    got: list[list[_Reply]] = []
    async for replies in reply_batches(consumer, msgspec.json.Decoder(_Reply),  # type: ignore[arg-type]
                                       timeout_ms=100, max_records=10):
        got.append(replies)
        if len(got) == 3:
            break
    assert got == [[_Reply(mid="a", status="COMPLETE")], [], [_Reply(mid="b")]]
    assert consumer.asked == [(100, 10)] * 3
