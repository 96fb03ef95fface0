"""Routing decided from the record on file (pure, no Kafka)."""

from __future__ import annotations

from datetime import date

from switch.contract.internal import RecordEntry
from switch.contract.messages import CancelImage, EnterImage, ModifyImage, QueryImage
from switch.router.dedupe import MidMemory, MidRecord, fingerprint
from switch.router.directory import Directory
from switch.router.imns import ImnBatch, ImnSequences
from switch.router.rules import NCIC, Refusal, Route, route

SOR = RecordEntry(lno="X17A4394", rtype="SOR", ori="IL0160000", nic="X123456782",
                  nam="DOE, JOHN", sex="M", dob="19800101")
VOAY = RecordEntry(lno="V12F6274", rtype="VOAY", ori="IL0370000", nam="ROE, JANE", sex="F",
                   dob="19900505")


def _imns() -> ImnBatch:
    return ImnSequences().batch()


def directory() -> Directory:
    d = Directory()
    d.put(SOR)
    d.put(VOAY)
    return d


def eim(lno: str, doi: str = "20250101", ori: str = "IL0160000") -> EnterImage:
    return EnterImage(mid="m1", ori=ori, lno=lno, imt="M", doi=doi, image=b"x")


def test_eim_on_sex_offender_goes_to_both_with_a_shared_imn() -> None:
    r = route(eim(SOR.lno), directory(), partition=2, imns=_imns())
    assert isinstance(r, Route)
    assert r.expected == ("LEADS", "NCIC") and not r.skipped
    assert r.imn == "I200000000"  # partition 2's first number
    assert r.key == SOR.lno


def test_eim_on_voay_record_skips_ncic_with_reason() -> None:
    r = route(eim(VOAY.lno, ori=VOAY.ori), directory(), partition=0, imns=_imns())
    assert isinstance(r, Route)
    assert r.expected == ("LEADS",)
    assert "VOAY/MURDERER" in r.skipped[NCIC]
    assert r.imn is None  # LEADS numbers VOAY images itself


def test_record_type_comes_from_the_directory_not_the_sender() -> None:
    # The same LNO re-published as VOAY changes the routing.
    d = directory()
    d.put(RecordEntry(lno=SOR.lno, rtype="VOAY", ori=SOR.ori))
    r = route(eim(SOR.lno), d, partition=0, imns=_imns())
    assert isinstance(r, Route) and r.expected == ("LEADS",)


def test_unknown_lno_is_refused_not_on_file() -> None:
    r = route(eim("Z99Z9999"), directory(), partition=0, imns=_imns())
    assert isinstance(r, Refusal)
    assert [(e.field, e.code) for e in r.errors] == [("lno", "NOT_ON_FILE")]
    assert "NOT ON FILE LNO/Z99Z9999" in r.errors[0].text


def test_doi_before_dob_is_refused() -> None:
    r = route(eim(SOR.lno, doi="19700101"), directory(), partition=0, imns=_imns(),
              today=date(2026, 1, 1))
    assert isinstance(r, Refusal) and r.errors[0].field == "doi"


def test_modify_and_cancel_follow_the_imn_form() -> None:
    voay = route(ModifyImage(mid="m", ori=VOAY.ori, imn=f"{VOAY.lno}M0", mis="X"), directory(),
                 partition=0, imns=_imns())
    assert isinstance(voay, Route) and voay.expected == ("LEADS",) and NCIC in voay.skipped
    assert voay.key == VOAY.lno
    shared = route(CancelImage(mid="m", ori=SOR.ori, imn="I200001234", doc="20250101"),
                   directory(), partition=0, imns=_imns())
    assert isinstance(shared, Route) and shared.expected == ("LEADS", "NCIC")


def test_queries_go_to_every_system_that_can_hold_the_record() -> None:
    d = directory()
    by_lno = route(QueryImage(mid="q", ori=SOR.ori, lno=SOR.lno), d, partition=0, imns=_imns())
    assert isinstance(by_lno, Route) and by_lno.expected == ("LEADS", "NCIC")
    voay = route(QueryImage(mid="q", ori=VOAY.ori, lno=VOAY.lno), d, partition=0, imns=_imns())
    assert isinstance(voay, Route) and voay.expected == ("LEADS",)
    by_nic = route(QueryImage(mid="q", ori=SOR.ori, nic=SOR.nic), d, partition=0, imns=_imns())
    assert isinstance(by_nic, Route) and by_nic.record == SOR
    person = route(QueryImage(mid="q", ori=SOR.ori, nam="DOE, JOHN", sex="M", dob="19800101"),
                   d, partition=0, imns=_imns())
    assert isinstance(person, Route) and person.expected == ("LEADS", "NCIC")


def test_mid_memory_tells_duplicates_from_conflicts_and_forgets_after_retention() -> None:
    mem = MidMemory(retention_s=100)
    a = eim(SOR.lno)
    fp = fingerprint(a)
    assert mem.check("m1", fp, now=0).verdict == "new"
    mem.remember("m1", MidRecord(fp=fp, cid="c1", ts=0))
    assert mem.check("m1", fp, now=50).verdict == "duplicate"
    assert mem.check("m1", fp, now=50).cid == "c1"
    assert mem.check("m1", fingerprint(eim(SOR.lno, doi="20250102")), now=50).verdict == "conflict"
    assert mem.check("m1", fp, now=101).verdict == "new"
    assert mem.expire(now=101) == 1 and len(mem) == 0


def test_fingerprint_ignores_where_the_reply_goes_and_who_typed() -> None:
    base = eim(SOR.lno)
    import msgspec

    other = msgspec.structs.replace(base, reply_to="switch.replies.x", term="T1")
    assert fingerprint(base) == fingerprint(other)


def test_a_shared_imn_is_keyed_by_its_records_lno_once_known() -> None:
    # The leg must reach the partition whose store holds the image: its record's LNO's.
    d = directory()
    mii = ModifyImage(mid="m2", ori=SOR.ori, imn="I100000007", doi="20250101")
    unknown = route(mii, d, partition=0, imns=_imns())
    assert isinstance(unknown, Route) and unknown.key == "I100000007"  # answered NOT ON FILE
    d.note_image("I100000007", SOR.lno)
    for req in (mii, CancelImage(mid="m3", ori=SOR.ori, imn="I100000007", doc="20250102"),
                QueryImage(mid="m4", ori=SOR.ori, imn="I100000007")):
        r = route(req, d, partition=0, imns=_imns())
        assert isinstance(r, Route) and r.key == SOR.lno, req
        assert r.expected == ("LEADS", "NCIC")
