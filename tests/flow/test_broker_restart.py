"""Broker restart under load: the broker itself goes away (`kill -9` of its JVM, or a
clean stop) and comes back on the same port and data dir while requests flow at a steady
rate through the four components run as separate processes. No component is restarted by
the test: each must reconnect by itself. Then every request has exactly one reply, every
ACK matches the stores, and no entry is left PENDING (the supplements arrive).

The test runs its own broker (not the session's, which other tests share). `make test`
runs the short version (500 requests, one `kill -9`); `make reliability` the long one
(5,000 requests; the broker stopped cleanly once and killed once)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.seeding import seed_stores
from switch.kafka.localbroker import LocalBroker
from switch.kafka.topics import ensure_topics
from switch.security.client import insecure
from tests.conftest import make_settings
from tests.flow.harness import (
    ReplyReader,
    bulletin_requests,
    check_acks_match_stores,
    correlator_lines,
    diagnose,
    logs_tail,
    long_run,
    missing_and_doubled,
    record_figures,
    scale,
    send_at_rate,
    start_components,
    stuck_pending,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 50.0  # requests a second
DOWN_S = 3.0  # how long the broker stays away


@pytest.fixture
def own_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBroker]:
    if not insecure(os.environ) and not os.environ.get("SWITCH_SECURITY_DIR"):
        # Run alone, no session broker has exported its security folder: this broker's
        # own, so that the test's clients and the components it starts authenticate.
        monkeypatch.setenv("SWITCH_SECURITY_DIR", str(tmp_path / "broker-home" / "security"))
    broker = LocalBroker(tmp_path / "broker-home", preferred_port=None)
    broker.start(progress=False)
    try:
        yield broker
    finally:
        broker.stop()


async def test_broker_restart_under_load(own_broker: LocalBroker, tmp_path: Path) -> None:
    state = own_broker.status()
    assert state is not None
    settings = make_settings(state.bootstrap, tmp_path / "home").with_overrides(deadline_s=15.0)
    await ensure_topics(settings)
    total = scale(500, 5000)
    records = seed_stores(settings, max(200, total // 4), 13)
    requests = bulletin_requests(records, total, "brk")
    outages = ["kill"] if not long_run() else ["stop", "kill"]
    at = {int(total * (k + 1) / (len(outages) + 1)): how for k, how in enumerate(outages)}
    backs: list[tuple[float, int]] = []  # (when the broker answered again, requests sent)

    comps = start_components(settings, tmp_path)

    def outage(how: str, sent: int):  # type: ignore[no-untyped-def]
        async def event() -> None:
            # Under load: the switch is up and answering before the broker goes.
            early = [r["mid"] for r in requests[: sent // 2]]
            await reader.wait_answered(early, 120)
            if how == "kill":
                assert own_broker.kill()
            else:
                assert own_broker.stop()
            await asyncio.sleep(DOWN_S)
            back = await asyncio.to_thread(own_broker.start, progress=False)
            assert back.port == state.port, "the broker must come back on the same port"
            backs.append((time.monotonic(), sent))
        return event

    events = {i: outage(how, i) for i, how in at.items()}
    t0 = time.monotonic()
    try:
        async with ReplyReader(settings) as reader:
            failed = await send_at_rate(settings, requests, RATE, events)
            assert not failed, f"{len(failed)} requests not delivered: {failed[:3]}"
            await reader.wait_settled([r["mid"] for r in requests], 180)
        dead = [c.name for c in comps.values() if not c.alive()]
        restarts = {c.name: c.restarts() for c in comps.values()}
    finally:
        for c in comps.values():
            c.stop()
    elapsed = time.monotonic() - t0

    replies = reader.replies
    missing, doubled = missing_and_doubled(requests, replies)
    # Time to recover: from the broker answering again until every request sent before
    # the outage has its reply (the backlog is through).
    recover = []
    for back_t, sent in backs:
        before = {r["mid"] for r in requests[:sent]}
        last = max((t for t, mid in reader.arrivals if mid in before), default=back_t)
        recover.append(round(max(0.0, last - back_t), 1))
    record_figures(
        "broker restart", requests=total, outages="+".join(outages),
        replies=len(requests) - len(missing), missing=len(missing), doubled=len(doubled),
        pending=len(stuck_pending(replies)), component_restarts=sum(restarts.values()),
        recover_s=recover, elapsed_s=round(elapsed, 1))
    assert not dead, f"components exited: {dead}\n{logs_tail(comps)}"
    assert not missing, f"{len(missing)} requests without a reply, e.g. {missing[:5]}\n{logs_tail(comps)}"
    assert not doubled, "requests with more than one reply: " + "; ".join(
        f"{m} at {reader.where[m]}: " + ", ".join(f"{x.cid} {x.status} {x.text[:60]!r}" for x in replies[m])
        for m in list(doubled)[:3]) + await _copies(settings, list(doubled)[:3])
    stuck = stuck_pending(replies)
    if stuck:
        pytest.fail(f"{len(stuck)} entries never completed; " + await diagnose(settings, stuck[:3])
                    + "\ncorrelator log:\n" + correlator_lines(comps))
    check_acks_match_stores(settings, requests, replies)


async def _copies(settings, mids: list[str]) -> str:  # type: ignore[no-untyped-def]
    """How many times each mid is in the requests topic (a producer retry doubles it)."""
    from switch.kafka.readall import read_to_end

    seen: dict[str, list[str]] = {m: [] for m in mids}

    def scan(rec) -> None:  # type: ignore[no-untyped-def]
        for m in mids:
            if rec.value and f'"mid":"{m}"'.encode() in rec.value:
                seen[m].append(f"{rec.partition}:{rec.offset}")

    await read_to_end(settings, settings.topics.requests, scan)
    return f"\nin the requests topic: {seen}"
