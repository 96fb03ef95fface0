"""One trace per transaction through the real switch on the real broker: the producer's
traceparent is the parent of the router's hop, LEADS's and NCIC's hops are children of the
router's, the correlator's too (from the manifest), and the reply carries the trace on."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switch import tracing
from switch.kafka.clients import make_consumer, make_producer
from switch.settings import Settings
from tests.flow.conftest import RunningSwitch

pytestmark = [pytest.mark.kafka]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.add_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later spans are no longer kept


async def _reply_headers(settings: Settings, mid: str, timeout: float = 30.0) -> list[tuple[str, bytes]]:
    consumer = make_consumer(settings, group_id=None, auto_offset_reset="earliest")
    consumer.subscribe([settings.topics.replies])
    await consumer.start()
    try:
        end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if msgspec.json.decode(r.value).get("mid") == mid:
                        return list(r.headers or ())
        raise AssertionError(f"no reply for {mid}")
    finally:
        await consumer.stop()


def _of(spans: InMemorySpanExporter, trace_id: int) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == trace_id}


async def test_a_transaction_is_one_trace_from_the_producer_to_the_reply(
    switch: RunningSwitch, spans: InMemorySpanExporter
) -> None:
    rec = switch.record("SOR")  # both systems
    trace_hex, parent_hex = secrets.token_hex(16), secrets.token_hex(8)
    mid = f"tr-{uuid.uuid4().hex[:8]}"
    producer = make_producer(switch.settings)
    await producer.start()
    try:
        body = msgspec.json.encode({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno})
        await (await producer.send(switch.settings.topics.requests, body, key=rec.ori.encode(),
                                   headers=[("traceparent", f"00-{trace_hex}-{parent_hex}-01".encode())]))
    finally:
        await producer.stop()
    reply = (await switch.client.wait(mid, timeout=30))[0]
    assert reply.status == "COMPLETE"

    carried = tracing.traceparent_of(await _reply_headers(switch.settings, mid))
    assert tracing.trace_id(carried) == trace_hex

    hops: dict[str, ReadableSpan] = {}
    for _ in range(50):  # the services end their spans once the answer is sent
        hops = _of(spans, int(trace_hex, 16))
        if {"router", "LEADS", "NCIC", "correlator"} <= set(hops):
            break
        await asyncio.sleep(0.1)
    assert {"router", "LEADS", "NCIC", "correlator"} <= set(hops), sorted(hops)
    router = hops["router"]
    assert router.parent is not None and router.parent.span_id == int(parent_hex, 16)
    for child in ("LEADS", "NCIC", "correlator"):
        parent = hops[child].parent
        assert parent is not None and parent.span_id == router.context.span_id, child
    assert router.attributes is not None and router.attributes["switch.cid"] == reply.cid
    assert hops["correlator"].attributes is not None
    assert hops["correlator"].attributes["switch.status"] == "COMPLETE"
    # Each hop starts when its input was appended, before it ends.
    for span in hops.values():
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time


async def test_a_request_without_a_trace_starts_one(
    switch: RunningSwitch, spans: InMemorySpanExporter
) -> None:
    rec = switch.record("VOAY")  # LEADS only: NCIC is skipped
    mid = f"tr-{uuid.uuid4().hex[:8]}"
    reply = await switch.client.request({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno})
    assert reply.status == "COMPLETE"
    trace_hex = tracing.trace_id(tracing.traceparent_of(await _reply_headers(switch.settings, mid)))
    assert trace_hex is not None
    hops = _of(spans, int(trace_hex, 16))
    for _ in range(50):
        if {"router", "LEADS", "correlator"} <= set(hops):
            break
        await asyncio.sleep(0.1)
        hops = _of(spans, int(trace_hex, 16))
    assert {"router", "LEADS", "correlator"} <= set(hops) and "NCIC" not in hops
    assert hops["router"].parent is None  # a new trace, rooted at the router
