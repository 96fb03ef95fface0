"""The metrics endpoint of a running switch, scraped over HTTP before and after a known set
of requests: every counter moves by exactly what was sent, nothing more."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import Counter
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from switch.client import new_mid
from switch.contract.messages import Reply
from switch.metrics import serve
from tests.flow.conftest import RunningSwitch, b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def scrape(url: str) -> tuple[str, Samples]:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body: bytes = resp.read()
            return body.decode()
    text = await asyncio.to_thread(get)
    return text, parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` that has `labels` (and any others)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def until(url: str, done: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        _, now = await scrape(url)
        if done(now) or loop.time() > give_up:
            return now
        await asyncio.sleep(0.2)


async def test_counters_move_by_exactly_what_was_sent(switch: RunningSwitch) -> None:
    server = serve(switch.metrics, 0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"  # never every interface unless told
        url = f"http://127.0.0.1:{port}/metrics"
        _, before = await scrape(url)

        sor = [r for r in switch.records if r.rtype == "SOR"]
        queries = [{"mke": "QIM", "mid": new_mid("q"), "ori": r.ori, "lno": r.lno}
                   for r in sor[:3]]
        entries = [{"mke": "EIM", "mid": new_mid("e"), "ori": r.ori, "lno": r.lno, "imt": "M",
                    "doi": "20250110", "mis": "annual photo", "image": b64(photo())}
                   for r in sor[3:5]]
        invalid = {"mke": "QIM", "mid": new_mid("bad"), "ori": sor[0].ori, "lno": "bad lno!"}
        await switch.client.send(b"\xff not a request")  # no mid: a dead letter, no reply
        mids = [await switch.client.send(r) for r in [*queries, *entries, invalid]]
        replies: list[Reply] = []
        for mid in mids:
            assert mid is not None
            replies.extend(await switch.client.wait(mid, timeout=60))
        qims, eims, bad = replies[:3], replies[3:5], replies[5]
        assert [r.status for r in qims] == ["COMPLETE"] * 3, [r.text for r in qims]
        assert [r.status for r in eims] == ["COMPLETE"] * 2, [r.text for r in eims]
        assert all(leg.status == "ACK" for r in eims for leg in r.legs.values())
        assert sorted(eims[0].legs) == ["LEADS", "NCIC"]
        assert bad.status == "REJECTED" and [e.code for e in bad.errors] == ["INVALID_FIELD"]

        def moved(name: str, now: Samples, **labels: str) -> float:
            return total(now, name, **labels) - total(before, name, **labels)

        # Counted after each transaction commits: wait until the last of them shows, then
        # a moment more, so that a count made twice would show too.
        await until(url, lambda s: moved("switch_replies_total", s) >= 5
                    and moved("switch_dead_letters_total", s) >= 1)
        await asyncio.sleep(1.5)
        text, after = await scrape(url)

        def delta(name: str, **labels: str) -> float:
            return moved(name, after, **labels)

        # correlator: the replies it sent, by MKE, status and kind
        assert delta("switch_replies_total", mke="QIM", status="COMPLETE", kind="first") == 3
        assert delta("switch_replies_total", mke="EIM", status="COMPLETE", kind="first") == 2
        assert delta("switch_replies_total") == 5
        # per-leg latency: one observation per answered leg of each reply
        legs = Counter(s for r in qims + eims for s, leg in r.legs.items() if leg.ms is not None)
        assert legs["LEADS"] == 5 and legs["NCIC"] >= 2
        for system, n in legs.items():
            assert delta("switch_leg_latency_seconds_count", system=system) == n
        assert value(after, "switch_pending_transactions") == 0
        for name in ("switch_late_answers_total", "switch_duplicate_answers_total",
                     "switch_orphan_answers_total", "switch_leg_timeouts_total"):
            assert (name, frozenset()) in after, name  # exported, and did not move
            assert delta(name) == 0, name
        # router
        assert delta("switch_rejects_total", mke="QIM", code="INVALID_FIELD") == 1
        assert delta("switch_rejects_total") == 1
        assert delta("switch_dead_letters_total", cause="unreadable") == 1
        assert delta("switch_dead_letters_total") == 1
        assert delta("switch_routed_total", mke="QIM") == 3
        assert delta("switch_routed_total", mke="EIM") == 2
        assert delta("switch_image_sizing_seconds_count", outcome="ok") == 2
        assert delta("switch_image_sizing_seconds_count") == 2
        # services: every leg answer the replies carry, by system and status
        answered = Counter((s, leg.status) for r in qims + eims for s, leg in r.legs.items()
                           if leg.status != "SKIPPED")
        assert answered[("LEADS", "ACK")] >= 2 and answered[("NCIC", "ACK")] >= 2
        for (system, status), n in answered.items():
            assert delta("switch_service_answers_total", system=system, status=status) == n
        assert delta("switch_service_answers_total") == sum(answered.values())

        # consumer lag: a series for every partition each component is assigned
        t, parts = switch.settings.topics, switch.settings.topics.partitions
        for component, topic in (("router", t.requests), ("router", t.requests_byori),
                                 ("correlator", t.responses), ("leads", t.leg_requests("LEADS")),
                                 ("ncic", t.leg_requests("NCIC"))):
            for p in range(parts):
                key = ("switch_consumer_lag",
                       frozenset({"component": component, "topic": topic, "partition": str(p)}.items()))
                assert key in after, key
                assert after[key] >= 0
        # ... and, everything answered, each settles to 0 (the lag of a partition behind is
        # tested in tests/kafka/test_metrics_lag.py)
        lags = await until(url, lambda s: not any(v for (n, _), v in s.items()
                                                  if n == "switch_consumer_lag"), timeout=10)
        assert {v for (n, _), v in lags.items() if n == "switch_consumer_lag"} == {0.0}

        # low cardinality: nothing of a transaction is a label
        for r in replies:
            assert r.cid not in text and (r.mid or "-") not in text
        for rec in sor[:5]:
            assert rec.ori not in text and rec.lno not in text
    finally:
        server.shutdown()
        server.server_close()
