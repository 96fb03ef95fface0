"""Replay and capture against a whole switch on a real broker (small traffic, small photos)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from switch.client import new_mid
from switch.contract.messages import Control, encode
from switch.loadtest.capture import CaptureOptions, capture, to_traffic
from switch.loadtest.gen import Generator, GenOptions, parse_mix
from switch.loadtest.photos import PhotoCache
from switch.loadtest.replay import ReplayOptions, replay
from switch.loadtest.traffic import IMG_PREFIX, IMN_PREFIX, Header, Step, Traffic, read_traffic, write_traffic
from tests.flow.conftest import RunningSwitch

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SMALL = (4.0, 1.0)


async def test_generated_traffic_replays_with_every_reply_accounted_for(
    switch: RunningSwitch, tmp_path: Path
) -> None:
    gen = Generator(switch.records, GenOptions(count=100, seed=3, image_kb=SMALL, invalid_rate=0.08,
                                               sessions=20))
    path = tmp_path / "traffic.jsonl"
    write_traffic(path, gen.run(), gen.image_lines())
    traffic = read_traffic(path)
    tags = Counter(s.tag for s in traffic.steps)
    invalid_replied = sum(v for k, v in tags.items() if k.startswith("invalid:") and k != "invalid:noise")

    s = await replay(switch.settings, traffic, ReplayOptions(rate=40, grace=15, progress=False))

    assert s["missing"] == 0, s["missing_mids"]
    assert s["skipped"] == {}  # fresh records: every entry is accepted, every IMN resolves
    assert s["sent"] == 100 and s["send_errors"] == 0
    assert s["no_reply_expected"] == tags["invalid:noise"]
    assert s["replies"] == s["expected_replies"] == 100 - tags["invalid:noise"]
    assert s["latency_ms"]["all"]["count"] == s["replies"]
    assert sum(d["count"] for k, d in s["latency_ms"].items() if k != "all") == s["replies"]
    assert s["status"] == {"COMPLETE": tags["valid"], "REJECTED": invalid_replied}
    assert s["leg_ms"]["LEADS"]["count"] > 0 and s["leg_status"]["LEADS"]["ACK"] > 0


async def _ncic(switch: RunningSwitch, mode: str) -> None:
    s = switch.settings
    producer = switch.client._producer
    await (await producer.send(s.topics.control, encode(Control(system="NCIC", mode=mode)), key=b"NCIC"))


async def test_ncic_down_drop_shows_as_unavailable_legs(switch: RunningSwitch) -> None:
    await _ncic(switch, "down_drop")
    await asyncio.sleep(1.0)
    sor = [r for r in switch.records if r.rtype == "SOR"]
    for _ in range(20):  # the service reads the control topic on its own schedule
        probe = await switch.client.request({"mke": "QIM", "mid": new_mid("probe"), "ori": sor[0].ori,
                                             "lno": sor[0].lno})
        if probe.legs["NCIC"].status == "UNAVAILABLE":
            break
        await asyncio.sleep(0.5)
    traffic = Generator(sor, GenOptions(count=30, seed=2, mix=parse_mix("QIM=0.6,EIM=0.4"),
                                        invalid_rate=0.0, image_kb=SMALL)).run()

    s = await replay(switch.settings, traffic, ReplayOptions(rate=30, grace=15, progress=False))

    assert s["missing"] == 0 and s["replies"] == 30
    assert s["leg_status"]["NCIC"] == {"UNAVAILABLE": 30}
    assert set(s["leg_status"]["LEADS"]) <= {"ACK", "NOT_FOUND"}
    assert s["status"] == {"PARTIAL": 30}


async def test_capture_then_replay_at_the_original_pace(switch: RunningSwitch) -> None:
    """Enter, modify and cancel identifying images on four records: the captured modify and
    cancel are linked to the captured enter, so the replay acts on its own new images."""
    photos = PhotoCache(seed=1)
    import random

    rng = random.Random(1)
    steps: list[Step] = []
    recs = switch.records[:4]
    for i, rec in enumerate(recs):
        image = photos.pick(4.0, rng)
        base = {"ori": rec.ori}
        steps.append(Step(id=f"e{i}", key=rec.lno, request=base | {
            "mke": "EIM", "mid": f"cap-e{i}", "lno": rec.lno, "imt": "I", "doi": "20241201",
            "image": IMG_PREFIX + image}))
    for i, rec in enumerate(recs):
        steps.append(Step(id=f"m{i}", key=rec.lno, request={"ori": rec.ori, "mke": "MII",
                          "mid": f"cap-m{i}", "imn": f"{IMN_PREFIX}e{i}", "mis": "TATTOO"}))
        steps.append(Step(id=f"q{i}", key=rec.lno, depends_on=f"m{i}", request={
            "ori": rec.ori, "mke": "QIM", "mid": f"cap-q{i}", "lno": rec.lno}))
    for i, rec in enumerate(recs):
        steps.append(Step(id=f"x{i}", key=rec.lno, request={"ori": rec.ori, "mke": "XIM",
                          "mid": f"cap-x{i}", "imn": f"{IMN_PREFIX}e{i}", "doc": "20241202"}))
    original = Traffic(header=Header(), images=dict(photos.images), steps=steps)

    ready = asyncio.Event()
    recording = asyncio.create_task(capture(
        switch.settings, CaptureOptions(count=len(steps), reply_grace=10, progress=False), ready=ready))
    await asyncio.wait_for(ready.wait(), 30)
    first = await replay(switch.settings, original, ReplayOptions(rate=20, arrivals="uniform",
                                                                  progress=False))
    assert first["missing"] == 0 and first["status"] == {"COMPLETE": 16}
    got = await asyncio.wait_for(recording, 60)
    captured, counts = to_traffic(got, topic=switch.settings.topics.requests)
    assert len(captured.steps) == 16 and counts["linked"] == 8 and counts["images"] >= 1
    assert all(s.t is not None for s in captured.steps) and captured.steps[-1].t > 0.3

    again = await replay(switch.settings, captured, ReplayOptions(original_timing=True, speed=2.0,
                                                                  progress=False))
    assert again["missing"] == 0 and again["skipped"] == {}
    assert again["status"] == {"COMPLETE": 16}
    assert again["status_by_mke"]["MII"] == {"COMPLETE": 4}
