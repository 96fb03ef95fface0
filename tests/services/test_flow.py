"""The services on a real broker: leg requests in, leg answers out, controls obeyed."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from switch.contract.internal import ImageOwner, RecordEntry
from switch.contract.messages import (
    AuditEntry,
    CancelImage,
    Control,
    QueryImage,
)
from switch.settings import Settings
from tests.services.helpers import (
    OWNER,
    RECORDS,
    SOR_LNO,
    VOAY_LNO,
    VOAY_OWNER,
    jpeg,
    leg,
    mid,
)
from tests.services.kafka_helpers import (
    answers,
    image_count,
    producer,
    read_until,
    reader,
    seed,
    send_control,
    send_legs,
    service,
)
from tests.services.test_rules import eim

pytestmark = pytest.mark.kafka


async def test_leads_and_ncic_answer_leg_requests(kafka_settings: Settings) -> None:
    s = kafka_settings
    seed(s, RECORDS)
    sor_entry = eim(SOR_LNO, OWNER)
    legs = [
        leg(sor_entry, "LEADS", cid="c-sor", imn="I000000042"),
        leg(sor_entry, "NCIC", cid="c-sor", imn="I000000042"),
        leg(eim(VOAY_LNO, VOAY_OWNER, shade=3), "LEADS", cid="c-voay"),
        leg(QueryImage(mid=mid(), ori=OWNER, lno="A00A0000"), "NCIC", cid="c-none"),
    ]
    async with (
        service(s, "LEADS"),
        service(s, "NCIC"),
        producer(s) as p,
        reader(s, s.topics.responses) as responses,
    ):
        await send_legs(p, s, legs)
        got = answers(await read_until(responses, lambda v: len(answers(v)) >= 4))
        assert got[("c-sor", "LEADS")].leg.status == "ACK"
        assert got[("c-sor", "NCIC")].leg.imn == got[("c-sor", "LEADS")].leg.imn == "I000000042"
        assert got[("c-voay", "LEADS")].leg.imn == "V22B1234M0"
        assert got[("c-none", "NCIC")].leg.status == "NOT_FOUND"
        # Entries are followed by queries in order per record (same key, same partition).
        query = leg(QueryImage(mid=mid(), ori=VOAY_OWNER, lno=SOR_LNO), "NCIC", cid="c-q")
        await send_legs(p, s, [query])
        got = answers(await read_until(responses, lambda v: ("c-q", "NCIC") in answers(v)))
        [image] = got[("c-q", "NCIC")].images
        assert image.imn == "I000000042" and image.image == jpeg(1)

    async with reader(s, s.topics.records) as records:
        directory = await read_until(records, lambda v: len(v) >= 3)
        entries = {msgspec.json.decode(v, type=RecordEntry).lno for v in directory
                   if b'"rtype"' in v}
        assert entries == {SOR_LNO, VOAY_LNO}
        # and the record of the shared IMN LEADS entered, for the router to key by its LNO
        owners = [msgspec.json.decode(v, type=ImageOwner) for v in directory if b'"rtype"' not in v]
        assert owners == [ImageOwner(imn="I000000042", lno=SOR_LNO)]
    async with reader(s, s.topics.audit) as audit:
        raw = await read_until(audit, lambda v: len(v) >= 5)
        entries_ = [msgspec.json.decode(v, type=AuditEntry) for v in raw]
        sor = [a for a in entries_ if a.cid == "c-sor"]
        assert {a.component for a in sor} == {"leads", "ncic"}
        assert all(a.event == "answered" and a.outcome == "ACK" for a in sor)
        assert all(a.image_sha256 and a.mke == "EIM" and a.lno == SOR_LNO for a in sor)
        assert all(b"image\"" not in v for v in raw)  # never the bytes, only their hash


async def test_down_drop_then_down_forward(kafka_settings: Settings) -> None:
    s = kafka_settings
    seed(s, RECORDS)
    async with (
        service(s, "NCIC") as controls,
        producer(s) as p,
        reader(s, s.topics.responses) as responses,
    ):
        values: list[bytes] = []
        await send_control(p, s, Control(system="LEADS", mode="down_drop"))  # not for NCIC
        await send_control(p, s, Control(system="NCIC", mode="down_drop"))
        await _until(lambda: controls.mode == "down_drop")
        dropped = leg(eim(SOR_LNO, OWNER), "NCIC", cid="d1", imn="I000000001")
        await send_legs(p, s, [dropped])
        got = answers(await read_until(responses, lambda v: bool(answers(v)), into=values))
        assert got[("d1", "NCIC")].leg.status == "UNAVAILABLE"
        assert got[("d1", "NCIC")].leg.code == "SYSTEM_UNAVAILABLE"

        await send_control(p, s, Control(system="NCIC", mode="down_forward"))
        await _until(lambda: controls.mode == "down_forward")
        entry = leg(eim(SOR_LNO, OWNER, shade=2), "NCIC", cid="f1", imn="I000000002")
        late_query = leg(
            QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO), "NCIC", cid="f2", timeout_s=1.0
        )
        live_query = leg(QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO), "NCIC", cid="f3")
        await send_legs(p, s, [entry, late_query, live_query])
        await read_until(responses, lambda v: len(answers(v)) > 1, timeout=2.5, into=values)
        assert set(answers(values)) == {("d1", "NCIC")}  # nothing while down

        await send_control(p, s, Control(system="NCIC", mode="up"))
        got = answers(
            await read_until(responses, lambda v: ("f3", "NCIC") in answers(v), into=values)
        )
        assert got[("f1", "NCIC")].leg.status == "ACK"  # the entry waited and was applied
        assert got[("f3", "NCIC")].leg.status == "ACK"
        assert ("f2", "NCIC") not in got  # its deadline passed while NCIC was down
        # A cancel applied after coming back: the service is fully up again.
        xim = leg(CancelImage(mid=mid(), ori=OWNER, imn="I000000002", doc="20240101"), "NCIC",
                  cid="f4")
        await send_legs(p, s, [xim])
        got = answers(
            await read_until(responses, lambda v: ("f4", "NCIC") in answers(v), into=values)
        )
        assert got[("f4", "NCIC")].leg.status == "ACK"
    assert image_count(s, "NCIC") == 1  # d1 was dropped, f1 entered once


async def test_a_restarted_service_resumes_the_last_mode(kafka_settings: Settings) -> None:
    s = kafka_settings
    seed(s, RECORDS)
    async with producer(s) as p:
        await send_control(p, s, Control(system="NCIC", mode="down_drop", reject_rate=0.5))
        await send_control(p, s, Control(system="NCIC", reject_rate=0.0))
    async with service(s, "NCIC") as controls:
        assert controls.mode == "down_drop"  # read before serving
        assert controls.state.reject_rate == 0.0


async def test_simulated_rejects_and_unreadable_input(kafka_settings: Settings) -> None:
    s = kafka_settings
    seed(s, RECORDS)
    async with (
        service(s, "LEADS") as controls,
        producer(s) as p,
        reader(s, s.topics.responses) as responses,
    ):
        await (await p.send(s.topics.leg_requests("LEADS"), key=b"x", value=b"not json"))
        await send_control(p, s, Control(system="LEADS", reject_rate=1.0))
        await _until(lambda: controls.state.reject_rate == 1.0)
        await send_legs(p, s, [leg(eim(VOAY_LNO, VOAY_OWNER), "LEADS", cid="r1")])
        got = answers(await read_until(responses, lambda v: bool(answers(v))))
        assert got[("r1", "LEADS")].leg.code == "SIMULATED_REJECT"
    assert image_count(s, "LEADS") == 0


async def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_directory_follows_records_seeded_while_leads_runs(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import loop
    from services.seeding import seed_stores

    monkeypatch.setattr(loop, "DIRECTORY_REFRESH_S", 0.2)
    s = kafka_settings
    seed(s, RECORDS)
    async with service(s, "LEADS"), reader(s, s.topics.records) as records:
        later = seed_stores(s, 20, seed=8)
        got = await read_until(records, lambda v: len(v) >= 22, timeout=20)
    lnos = {msgspec.json.decode(v, type=RecordEntry).lno for v in got}
    assert lnos == {SOR_LNO, VOAY_LNO} | {e.lno for e in later}
