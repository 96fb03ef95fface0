"""An open-model load client written the way an agency's test harness would write one:
plain aiokafka, nothing from the project. QIM by LNO on records from `switch seed`'s JSON
lines, sent on a fixed schedule (open model: a slow switch does not slow the sender), and
the latency of each request measured from its *scheduled* send time to its reply.

    .venv/bin/python bench/open_client.py --records records.jsonl --rate 500 --seconds 15

It prints one JSON object: offered and achieved send rate, replies, delivered rate (replies
inside the window plus the drain, over the window), missing, p50/p90/p99/max ms. The
benchmark (bench_switch.py) uses it against the switch and against the relay baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


async def run(bootstrap: str, records: list[dict[str, Any]], rate: float, seconds: float,
              requests_topic: str, replies_topic: str, drain_s: float,
              security: dict[str, Any] | None = None) -> dict[str, Any]:
    """`security`: aiokafka's security options (SASL_SSL on the secured local broker)."""
    run_id = uuid.uuid4().hex[:8]
    sec = dict(security or {})
    sec.pop("bootstrap_servers", None)
    consumer = AIOKafkaConsumer(replies_topic, bootstrap_servers=bootstrap,
                                isolation_level="read_committed", auto_offset_reset="latest",
                                enable_auto_commit=False, group_id=None, **sec)
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 (aiokafka has no event for it)
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.position(tp)  # pin "latest" before the first send
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                linger_ms=2, **sec)
    await producer.start()
    scheduled: dict[str, float] = {}
    latencies: list[float] = []
    total = int(rate * seconds)
    done = asyncio.Event()
    first_send = [0.0]

    async def receive() -> None:
        while not done.is_set() or scheduled:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records_ in batch.values():
                for r in records_:
                    try:
                        mid = json.loads(r.value)["mid"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    t = scheduled.pop(mid, None) if isinstance(mid, str) else None
                    if t is not None:
                        latencies.append((now - t) * 1000)
            if done.is_set() and time.monotonic() > first_send[0] + seconds + drain_s:
                return

    receiver = asyncio.create_task(receive())
    start = time.monotonic() + 0.2
    first_send[0] = start
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        rec = records[i % len(records)]
        mid = f"oc-{run_id}-{i}"
        body = json.dumps({"mid": mid, "mke": "QIM", "ori": rec["ori"], "lno": rec["lno"]}).encode()
        scheduled[mid] = due
        pending.append(await producer.send(requests_topic, body, key=rec["ori"].encode()))
        sent += 1
        if len(pending) > 2000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    send_s = time.monotonic() - start
    done.set()
    await receiver
    await producer.stop()
    await consumer.stop()
    window = max(send_s, seconds)
    return {
        "offered_rate": rate, "seconds": seconds, "sent": sent,
        "send_rate": round(sent / send_s, 1), "replies": len(latencies),
        "missing": len(scheduled), "delivered_rate": round(len(latencies) / window, 1),
        "p50_ms": _r(percentile(latencies, 50)), "p90_ms": _r(percentile(latencies, 90)),
        "p99_ms": _r(percentile(latencies, 99)), "max_ms": _r(max(latencies, default=None)),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=Path, required=True, help="JSON lines from `switch seed --out`")
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--drain", type=float, default=10.0, help="s to wait for late replies")
    p.add_argument("--prefix", default=os.environ.get("SWITCH_TOPIC_PREFIX", "switch"))
    p.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS",
                                                                 "127.0.0.1:9092"))
    a = p.parse_args()
    records = [json.loads(line) for line in a.records.read_text().splitlines() if line.strip()]
    res = asyncio.run(run(a.bootstrap_servers, records, a.rate, a.seconds,
                          f"{a.prefix}.requests", f"{a.prefix}.replies", a.drain))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
