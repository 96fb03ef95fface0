"""One record must not stop a stage, and no photo may leak into a dead letter (issue 16,
defects 1 and 5), on the real broker with the whole switch running."""

from __future__ import annotations

import asyncio
import base64
import uuid

import msgspec
import pytest
import structlog

from switch.client import new_mid
from switch.contract.messages import DeadLetter
from switch.kafka.readall import read_to_end
from switch.kafka.topics import TopicSpec, ensure_topics
from tests.contract.test_redact import assert_no_run_of, gps_jpeg
from tests.flow.conftest import RunningSwitch, b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _letters(switch: RunningSwitch, count: int = 1, timeout: float = 30) -> list[DeadLetter]:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        got = await _read_letters(switch)
        if len(got) >= count or loop.time() > give_up:
            return got
        await asyncio.sleep(0.5)


async def _read_letters(switch: RunningSwitch) -> list[DeadLetter]:
    got: list[DeadLetter] = []
    await read_to_end(switch.settings, switch.settings.topics.dlq,
                      lambda r: got.append(msgspec.json.decode(r.value, type=DeadLetter)))
    return got


def _restarts(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e.get("event") == "component failed; restarting"]


async def test_a_poison_record_does_not_stop_the_router(switch: RunningSwitch) -> None:
    key = "\x01" * 400_000  # a dead letter that copied it whole was 2.4 MB: over the limit
    value = b"\xff not a request"
    with structlog.testing.capture_logs() as logs:
        await switch.client.send(value, key=key)
        mids = []
        for i in range(100):
            rec = switch.records[i % len(switch.records)]
            mids.append(await switch.client.send(
                {"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori, "lno": rec.lno}))
        for mid in mids:
            assert mid is not None
            replies = await switch.client.wait(mid, timeout=60)
            assert replies[0].status == "COMPLETE", replies[0].text
        letters = await _letters(switch)
    assert not _restarts(logs), _restarts(logs)
    assert len(letters) == 1
    letter = letters[0]
    assert "UTF-8" in letter.reason
    assert letter.key_bytes == 400_000 and letter.raw_bytes == len(value)
    assert letter.key is not None and len(letter.key) <= 256
    assert letter.raw == value


async def test_a_reject_that_its_reply_to_refuses_becomes_a_dead_letter_and_one_reply(
    switch: RunningSwitch,
) -> None:
    s = switch.settings
    tiny = f"{s.topics.replies}.tiny-{uuid.uuid4().hex[:6]}"
    await ensure_topics(s, extra=[TopicSpec(tiny, 1, {"max.message.bytes": "100"})])
    rec = switch.record("SOR", 7)
    mid = new_mid("rt")
    with structlog.testing.capture_logs() as logs:
        # Not on file: the router rejects it to its reply_to, which refuses the reject.
        await switch.client.send({"mke": "EIM", "mid": mid, "ori": rec.ori, "lno": "Z99Z9999",
                                  "imt": "M", "doi": "20250110", "image": b64(photo(64, 80)),
                                  "reply_to": tiny})
        replies = await switch.client.wait(mid, timeout=60)
        letters = await _letters(switch)
        await asyncio.sleep(2)
    assert not _restarts(logs)
    assert len(switch.client.replies(mid)) == 1
    assert replies[0].status == "REJECTED"
    assert replies[0].errors[0].code == "BAD_REPLY_TO"
    assert f"NOT DELIVERED TO {tiny}: TOO LARGE" in replies[0].text
    assert len(letters) == 1 and letters[0].reason.startswith(f"NOT DELIVERED TO {tiny}")
    # Counted as what was sent: the replacement, never the reject that was not written.
    value = switch.metrics.registry.get_sample_value
    assert value("switch_rejects_total", {"mke": "EIM", "code": "BAD_REPLY_TO"}) == 1
    assert not value("switch_rejects_total", {"mke": "EIM", "code": "NOT_ON_FILE"})
    assert value("switch_dead_letters_total", {"cause": "undeliverable"}) == 1


async def test_a_reply_its_reply_to_cannot_hold_still_answers_once(switch: RunningSwitch) -> None:
    from switch.client import SwitchClient

    s = switch.settings
    small = f"{s.topics.replies}.small-{uuid.uuid4().hex[:6]}"
    await ensure_topics(s, extra=[TopicSpec(small, 1, {"max.message.bytes": "4096"})])
    rec = switch.record("SOR", 8)
    entered = await switch.client.request(
        {"mke": "EIM", "mid": new_mid("eim"), "ori": rec.ori, "lno": rec.lno, "imt": "M",
         "doi": "20250110", "image": b64(photo())})
    assert entered.status == "COMPLETE", entered.text
    mid = new_mid("q")
    with structlog.testing.capture_logs() as logs:
        async with SwitchClient(s, reply_topic=small) as own:
            await switch.client.send({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno,
                                      "reply_to": small})
            replies = await switch.client.wait(mid, timeout=60)  # on the default topic
            await asyncio.sleep(2)
            assert own.replies(mid) == []
    assert not _restarts(logs), _restarts(logs)
    assert len(switch.client.replies(mid)) == 1
    reply = replies[0]
    assert reply.status == "COMPLETE" and reply.images == []
    assert reply.legs["LEADS"].status == "ACK"
    assert f"NOT DELIVERED TO {small}: TOO LARGE" in reply.text
    assert f"SENT WITHOUT IMAGES TO {s.topics.replies} (2 IMAGES NOT SENT)" in reply.text
    value = switch.metrics.registry.get_sample_value
    assert value("switch_replies_total", {"mke": "QIM", "status": "COMPLETE", "kind": "first"}) == 1


async def test_a_broken_eim_leaks_no_photo_into_the_dead_letter_or_the_reply(
    switch: RunningSwitch,
) -> None:
    jpeg, exif = gps_jpeg((320, 400))
    image = base64.b64encode(jpeg)
    assert len(image) > 4096  # the old raw (first 4 KiB) was all photo
    rec = switch.record("SOR", 9)
    mid = new_mid("broken")
    raw = (b'{"image":"' + image + b'","mke":"EIM","mid":"' + mid.encode()
           + b'","ori":"' + rec.ori.encode() + b'","lno":"' + rec.lno.encode() + b'",')
    await switch.client.send(raw, key=rec.ori)
    reply = (await switch.client.wait(mid, timeout=60))[0]
    letters = await _letters(switch)
    assert reply.status == "REJECTED" and "NOT JSON" in reply.text
    assert len(letters) == 1
    letter = letters[0]
    assert letter.raw_bytes == len(raw)
    for where in (letter.raw, reply.text.encode(), msgspec.json.encode(letter)):
        assert_no_run_of(image, where, 16)
        assert_no_run_of(exif, where, 8)
        assert b"ACME" not in where
    assert letter.raw.startswith(b'{"image":"<%d bytes base64, sha256 ' % len(image))
