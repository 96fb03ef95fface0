"""The switch end to end on a real broker: fan-out by the record on file, one reply each."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from switch.client import new_mid
from switch.contract.messages import Control, DeadLetter, encode
from tests.flow.conftest import RunningSwitch, b64, photo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TODAY_DOI = "20250110"


def eim(rec, **extra):  # type: ignore[no-untyped-def]
    req = {"mke": "EIM", "mid": new_mid("eim"), "ori": rec.ori, "lno": rec.lno, "imt": "M",
           "doi": TODAY_DOI, "mis": "annual photo", "image": b64(photo())}
    req.update(extra)
    return req


async def test_eim_on_sex_offender_goes_to_both_systems_with_one_imn(switch: RunningSwitch) -> None:
    rec = switch.record("SOR")
    reply = await switch.client.request(eim(rec))
    assert reply.status == "COMPLETE", reply.text
    assert reply.legs["LEADS"].status == "ACK" and reply.legs["NCIC"].status == "ACK"
    imn = reply.legs["LEADS"].imn
    assert imn and imn.startswith("I") and reply.legs["NCIC"].imn == imn
    assert "LEADS ACKNOWLEDGMENT EIM" in reply.text

    q = await switch.client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori, "lno": rec.lno})
    assert q.status == "COMPLETE"
    systems = sorted(i.system for i in q.images)
    assert systems == ["LEADS", "NCIC"]
    assert {i.imn for i in q.images} == {imn}
    assert q.images[0].image == q.images[1].image  # both systems store the same bytes


async def test_eim_on_voay_record_skips_ncic_with_reason(switch: RunningSwitch) -> None:
    rec = switch.record("VOAY")
    reply = await switch.client.request(eim(rec))
    assert reply.status == "COMPLETE", reply.text
    assert reply.legs["NCIC"].status == "SKIPPED"
    assert "VOAY" in reply.legs["NCIC"].text
    imn = reply.legs["LEADS"].imn
    assert imn == f"{rec.lno}M0"
    q = await switch.client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori, "imn": imn})
    assert [i.system for i in q.images] == ["LEADS"]


async def test_modify_and_cancel_follow_the_imn(switch: RunningSwitch) -> None:
    for rtype in ("SOR", "VOAY"):
        rec = switch.record(rtype, 1)
        first = await switch.client.request(eim(rec))
        imn = first.legs["LEADS"].imn
        mii = await switch.client.request({"mke": "MII", "mid": new_mid("mii"), "ori": rec.ori,
                                           "imn": imn, "mis": "new glasses"})
        assert mii.status == "COMPLETE", mii.text
        xim = await switch.client.request({"mke": "XIM", "mid": new_mid("xim"), "ori": rec.ori,
                                           "imn": imn, "doc": TODAY_DOI})
        assert xim.status == "COMPLETE", xim.text
        again = await switch.client.request({"mke": "XIM", "mid": new_mid("xim"), "ori": rec.ori,
                                             "imn": imn, "doc": TODAY_DOI})
        assert again.status == "REJECTED"
        assert again.legs["LEADS"].code == "NOT_ON_FILE"


async def test_wrong_owner_and_unknown_record_are_rejected(switch: RunningSwitch) -> None:
    rec = switch.record("SOR", 2)
    other = next(r.ori for r in switch.records if r.ori != rec.ori)
    reply = await switch.client.request(eim(rec, ori=other))
    assert reply.status == "REJECTED"
    assert {leg.code for leg in reply.legs.values()} == {"NOT_AUTHORIZED"}
    unknown = await switch.client.request(eim(rec, lno="Z99Z9999"))
    assert unknown.status == "REJECTED"
    assert [e.code for e in unknown.errors] == ["NOT_ON_FILE"]


async def test_several_bad_fields_are_named_in_one_reject(switch: RunningSwitch) -> None:
    mid = new_mid("bad")
    req = {"mke": "EIM", "mid": mid, "ori": "IL01", "lno": "nope", "imt": "Q", "doi": "20231345",
           "image": b64(photo())}
    reply = await switch.client.request(req)
    assert reply.status == "REJECTED"
    fields = {e.field for e in reply.errors}
    assert {"ori", "lno", "imt", "doi"} <= fields
    assert "INVALID DOI: 20231345 IS NOT A DATE" in reply.text


async def test_garbage_goes_to_the_dead_letter_topic(switch: RunningSwitch) -> None:
    from switch.kafka.clients import make_consumer

    junk = b"\xff\xfe not json at all " + uuid.uuid4().bytes
    await switch.client.send(junk, key="junk")
    consumer = make_consumer(switch.settings, switch.settings.topics.dlq, group_id=None)
    await consumer.start()
    try:
        letters: list[DeadLetter] = []
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=200)
            for rs in batch.values():
                letters += [msgspec.json.decode(r.value, type=DeadLetter) for r in rs]
            if letters:
                break
        assert len(letters) == 1
        assert letters[0].raw == junk and letters[0].key == "junk"
        assert "UTF-8" in letters[0].reason.upper() or "JSON" in letters[0].reason.upper()
    finally:
        await consumer.stop()


async def test_same_mid_twice_is_applied_once(switch: RunningSwitch) -> None:
    rec = switch.record("SOR", 3)
    req = eim(rec)
    first = await switch.client.request(req)
    assert first.status == "COMPLETE"
    await switch.client.send(req)
    replies = await switch.client.wait(req["mid"], count=2)
    assert replies[1].duplicate is True
    assert replies[1].cid == first.cid
    assert replies[1].legs["LEADS"].imn == first.legs["LEADS"].imn
    # Applied once: a second M would have been rejected ON_FILE, and QIM shows one image.
    q = await switch.client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori, "lno": rec.lno})
    assert len([i for i in q.images if i.system == "LEADS"]) == 1
    changed = dict(req, mis="something else")
    await switch.client.send(changed)
    conflict = (await switch.client.wait(req["mid"], count=3))[2]
    assert conflict.status == "REJECTED" and conflict.errors[0].code == "DUPLICATE_MID"


async def test_ncic_down_forward_queues_entries_and_supplements(switch: RunningSwitch) -> None:
    s = switch.settings
    producer_ctl = switch.client._producer
    async def ctl(mode: str) -> None:
        await (await producer_ctl.send(s.topics.control, encode(Control(system="NCIC", mode=mode)),
                                       key=b"NCIC"))
    rec = switch.record("SOR", 4)
    await ctl("down_forward")
    import asyncio
    await asyncio.sleep(1.5)
    req = eim(rec)
    first = await switch.client.request(req, timeout=30)
    assert first.status == "PENDING", first.text
    assert first.legs["NCIC"].status == "QUEUED" and first.legs["LEADS"].status == "ACK"
    q = await switch.client.request({"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori, "lno": rec.lno})
    assert q.status == "PARTIAL" and q.legs["NCIC"].status == "TIMEOUT"
    await ctl("up")
    sup = await switch.client.wait(req["mid"], predicate=lambda r: r.supplement, timeout=30)
    assert sup[0].status == "COMPLETE" and sup[0].legs["NCIC"].status == "ACK"
    assert sup[0].cid == first.cid


async def test_every_step_is_audited_without_image_bytes(switch: RunningSwitch) -> None:
    import hashlib

    from switch.contract.messages import AuditEntry
    from switch.kafka.readall import read_to_end

    rec = switch.record("SOR", 5)
    req = eim(rec, term="T-042")
    reply = await switch.client.request(req)
    assert reply.status == "COMPLETE"
    bad = await switch.client.request(dict(req, mid=new_mid("bad"), doi="20231345"))
    assert bad.status == "REJECTED"

    entries: list[AuditEntry] = []
    raw_sizes: list[int] = []

    def collect(r) -> None:  # type: ignore[no-untyped-def]
        raw_sizes.append(len(r.value))
        entries.append(msgspec.json.decode(r.value, type=AuditEntry))

    await read_to_end(switch.settings, switch.settings.topics.audit, collect)
    mine = [e for e in entries if e.cid == reply.cid]
    events = {(e.component, e.event) for e in mine}
    assert {("router", "received"), ("router", "routed"), ("leads", "answered"),
            ("ncic", "answered"), ("correlator", "replied")} <= events, events
    assert all(e.mid == req["mid"] and e.ori == rec.ori for e in mine)
    assert any(e.term == "T-042" for e in mine)
    routed = next(e for e in mine if e.event == "routed")
    stored = next(i for i in (await switch.client.request(
        {"mke": "QIM", "mid": new_mid("q"), "ori": rec.ori, "lno": rec.lno})).images)
    assert routed.image_sha256 == hashlib.sha256(stored.image).hexdigest()
    assert any(e.event == "rejected" and e.cid == bad.cid and e.outcome == "REJECTED" for e in entries)
    assert max(raw_sizes) < 2000  # no entry carries an image


async def test_reply_to_a_topic_under_the_prefix(switch: RunningSwitch) -> None:
    from switch.client import SwitchClient
    from switch.kafka.topics import TopicSpec, ensure_topics

    s = switch.settings
    own = f"{s.topics.replies}.tool-{uuid.uuid4().hex[:6]}"
    await ensure_topics(s, extra=[TopicSpec(own, 1)])
    rec = switch.record("SOR", 6)
    async with SwitchClient(s, reply_topic=own) as mine:
        reply = await mine.request({"mke": "QIM", "mid": new_mid("rt"), "ori": rec.ori,
                                    "lno": rec.lno, "reply_to": own})
        assert reply.status == "COMPLETE"
    outside = await switch.client.request({"mke": "QIM", "mid": new_mid("rt"), "ori": rec.ori,
                                           "lno": rec.lno, "reply_to": "elsewhere.replies"})
    assert outside.status == "REJECTED" and outside.errors[0].code == "BAD_REPLY_TO"
