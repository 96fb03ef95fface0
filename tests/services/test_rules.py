"""The domain rules, against a real SQLite store (no mocks)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
import pytest

from services.rules import (
    answer_unapplied,
    apply_request,
    renewal_due,
    shared_imn_for,
)
from services.store import Store
from switch.contract.internal import LegAnswer
from switch.contract.messages import (
    CancelImage,
    Codes,
    EnterImage,
    ModifyImage,
    QueryImage,
)
from tests.services.helpers import (
    OTHER,
    OWNER,
    SOR_LNO,
    SOR_NIC,
    VOAY_LNO,
    VOAY_OWNER,
    jpeg,
    leg,
    mid,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def eim(lno: str, ori: str, imt: str = "M", doi: str = "20230216", shade: int = 1, **kw: str):
    return EnterImage(mid=mid(), ori=ori, lno=lno, imt=imt, doi=doi, image=jpeg(shade), **kw)


def apply(store: Store, request, system: str | None = None, **kw):  # type: ignore[no-untyped-def]
    return apply_request(store, leg(request, system or store.system, **kw), now=NOW)


# --------------------------------------------------------------------------- EIM


def test_voay_entry_gets_lno_imt_sequence_imn(leads: Store) -> None:
    done = apply(leads, eim(VOAY_LNO, VOAY_OWNER))
    assert done.answer.leg.status == "ACK"
    assert done.answer.leg.imn == "V22B1234M0"
    assert done.answer.leg.text == (
        "LEADS ACKNOWLEDGMENT EIM ORI/IL0990300 LNO/V22B1234 IMN/V22B1234M0 IMT/M DOI/20230216"
    )
    assert done.changed and done.image_sha256 and done.lno == VOAY_LNO
    assert leads.image_count(status="active") == 1


def test_sex_offender_entry_stored_under_the_shared_imn_in_both_systems(
    leads: Store, ncic: Store
) -> None:
    request = eim(SOR_LNO, OWNER)
    a = apply_request(leads, leg(request, "LEADS", cid="c1", imn="I000012345"), now=NOW)
    b = apply_request(ncic, leg(request, "NCIC", cid="c1", imn="I000012345"), now=NOW)
    assert a.answer.leg.imn == b.answer.leg.imn == "I000012345"
    assert b.answer.leg.text == (
        f"NCIC  ACKNOWLEDGMENT EIM ORI/{OWNER} NIC/{SOR_NIC} LNO/{SOR_LNO} "
        "IMN/I000012345 IMT/M DOI/20230216"
    )
    assert leads.active_images(SOR_LNO)[0].sha256 == ncic.active_images(SOR_LNO)[0].sha256


def test_shared_imn_derived_from_the_cid_when_the_router_gave_none(
    leads: Store, ncic: Store
) -> None:
    request = eim(SOR_LNO, OWNER)
    a = apply_request(leads, leg(request, "LEADS", cid="abc"), now=NOW)
    b = apply_request(ncic, leg(request, "NCIC", cid="abc"), now=NOW)
    assert a.answer.leg.imn == b.answer.leg.imn == shared_imn_for("abc")
    assert re.fullmatch(r"I\d{9}", shared_imn_for("abc"))


def test_redelivery_returns_the_stored_answer_and_changes_nothing(leads: Store) -> None:
    request = leg(eim(VOAY_LNO, VOAY_OWNER), cid="same")
    first = apply_request(leads, request, now=NOW)
    again = apply_request(leads, request, now=datetime(2025, 1, 1, tzinfo=UTC))
    assert again.redelivered and not again.changed
    assert again.encoded == first.encoded
    assert msgspec.json.decode(again.encoded, type=LegAnswer) == first.answer
    assert leads.image_count() == 1
    assert leads.applied_count() == 1


def test_a_rejected_entry_is_also_idempotent(leads: Store) -> None:
    request = leg(eim(VOAY_LNO, OTHER), cid="rej")
    first = apply_request(leads, request, now=NOW)
    assert first.answer.leg.code == Codes.NOT_AUTHORIZED
    assert apply_request(leads, request, now=NOW).encoded == first.encoded


def test_one_active_mugshot_per_record(leads: Store) -> None:
    first = apply(leads, eim(VOAY_LNO, VOAY_OWNER, shade=1))
    second = apply(leads, eim(VOAY_LNO, VOAY_OWNER, shade=2))
    assert second.answer.leg.status == "REJECT"
    assert second.answer.leg.code == Codes.ON_FILE
    assert second.answer.leg.imn == first.answer.leg.imn
    assert second.answer.leg.text == (
        "LEADS REJECT ON FILE LNO/V22B1234 IMT/M IMN/V22B1234M0 DOI/20230216 ALREADY ON FILE"
    )
    # A signature is a different type: allowed.
    assert apply(leads, eim(VOAY_LNO, VOAY_OWNER, imt="S", shade=3)).answer.leg.status == "ACK"
    assert leads.image_count(status="active") == 2


def test_ten_identifying_images_then_on_file(leads: Store) -> None:
    imns = []
    for shade in range(10):
        done = apply(leads, eim(VOAY_LNO, VOAY_OWNER, imt="I", shade=shade))
        assert done.answer.leg.status == "ACK", done.answer.leg.text
        imns.append(done.answer.leg.imn)
    assert imns == [f"V22B1234I{d}" for d in range(10)]
    over = apply(leads, eim(VOAY_LNO, VOAY_OWNER, imt="I", shade=99))
    assert over.answer.leg.code == Codes.ON_FILE
    assert "LIMIT 10" in over.answer.leg.text and "V22B1234I9" in over.answer.leg.text


def test_limits_hold_per_system_for_sex_offenders(leads: Store, ncic: Store) -> None:
    assert apply(ncic, eim(SOR_LNO, OWNER, shade=1), imn="I000000001").answer.leg.status == "ACK"
    rej = apply(ncic, eim(SOR_LNO, OWNER, shade=2), imn="I000000002")
    assert rej.answer.leg.code == Codes.ON_FILE and "I000000001" in rej.answer.leg.text
    # LEADS has its own copy of the rule and no image yet.
    assert apply(leads, eim(SOR_LNO, OWNER, shade=2), imn="I000000002").answer.leg.status == "ACK"


def test_duplicate_entry_rejected_with_the_image_on_file(leads: Store) -> None:
    first = apply(leads, eim(VOAY_LNO, VOAY_OWNER, imt="I", shade=5))
    dup = apply(leads, eim(VOAY_LNO, VOAY_OWNER, imt="I", shade=5, doi="20240101"))
    assert dup.answer.leg.status == "REJECT" and dup.answer.leg.code == Codes.ON_FILE
    assert dup.answer.leg.text.startswith("LEADS REJECT ON FILE DUPLICATE IMAGE LNO/V22B1234")
    assert [i.imn for i in dup.answer.images] == [first.answer.leg.imn]
    assert dup.answer.images[0].image == b""  # the record on file, not the sender's bytes back
    assert leads.image_count() == 1


def test_only_the_owner_may_enter(leads: Store) -> None:
    done = apply(leads, eim(SOR_LNO, OTHER), imn="I000000001")
    assert done.answer.leg.code == Codes.NOT_AUTHORIZED
    assert done.answer.leg.text == (
        f"LEADS REJECT NOT AUTHORIZED ORI/{OTHER} IS NOT THE OWNER OF LNO/{SOR_LNO}"
    )
    assert leads.image_count() == 0


def test_entry_for_a_record_not_on_file(leads: Store, ncic: Store) -> None:
    done = apply(leads, eim("A00A0000", OWNER))
    assert done.answer.leg.code == Codes.NOT_ON_FILE
    assert done.answer.leg.text == "LEADS REJECT NOT ON FILE LNO/A00A0000"
    # NCIC holds no VOAY record.
    done = apply(ncic, eim(VOAY_LNO, VOAY_OWNER))
    assert done.answer.leg.code == Codes.NOT_ON_FILE
    assert done.answer.leg.text == f"NCIC  REJECT NOT ON FILE LNO/{VOAY_LNO}"


def test_doi_before_dob_is_invalid(leads: Store) -> None:
    done = apply(leads, eim(VOAY_LNO, VOAY_OWNER, doi="19600101"))
    assert done.answer.leg.code == Codes.INVALID_FIELD
    assert "DOB/19700505" in done.answer.leg.text


def test_mis_is_stored_upper_case(leads: Store) -> None:
    apply(leads, eim(VOAY_LNO, VOAY_OWNER, mis="tattoo left arm"))
    assert leads.active_images(VOAY_LNO)[0].mis == "TATTOO LEFT ARM"


# --------------------------------------------------------------------------- MII / XIM


def test_modify_changes_image_doi_and_mis(leads: Store) -> None:
    imn = apply(leads, eim(VOAY_LNO, VOAY_OWNER)).answer.leg.imn
    assert imn is not None
    done = apply(
        leads,
        ModifyImage(mid=mid(), ori=VOAY_OWNER, imn=imn, image=jpeg(7), doi="20240301", mis="new"),
    )
    assert done.answer.leg.status == "ACK"
    assert done.answer.leg.text == (
        "LEADS ACKNOWLEDGMENT MII ORI/IL0990300 LNO/V22B1234 IMN/V22B1234M0 IMT/M "
        "DOI/20240301 CHANGED/IMAGE,DOI,MIS"
    )
    [image] = leads.active_images(VOAY_LNO)
    assert (image.jpeg, image.doi, image.mis) == (jpeg(7), "20240301", "NEW")
    assert image.modified is not None


def test_modify_of_an_imn_not_on_file(ncic: Store) -> None:
    done = apply(ncic, ModifyImage(mid=mid(), ori=OWNER, imn="I000012345", doi="20240101"))
    assert done.answer.leg.code == Codes.NOT_ON_FILE
    assert done.answer.leg.text == "NCIC  REJECT NOT ON FILE IMN/I000012345"


def test_only_the_owner_may_modify_or_cancel(leads: Store) -> None:
    imn = apply(leads, eim(VOAY_LNO, VOAY_OWNER)).answer.leg.imn
    assert imn is not None
    mii = apply(leads, ModifyImage(mid=mid(), ori=OTHER, imn=imn, doi="20240101"))
    xim = apply(leads, CancelImage(mid=mid(), ori=OTHER, imn=imn, doc="20240101"))
    assert mii.answer.leg.code == xim.answer.leg.code == Codes.NOT_AUTHORIZED
    assert leads.active_images(VOAY_LNO)[0].doi == "20230216"


def test_cancel_then_modify_or_cancel_again_is_not_on_file(leads: Store) -> None:
    imn = apply(leads, eim(VOAY_LNO, VOAY_OWNER)).answer.leg.imn
    assert imn is not None
    done = apply(leads, CancelImage(mid=mid(), ori=VOAY_OWNER, imn=imn, doc="20240115"))
    assert done.answer.leg.status == "ACK"
    assert done.answer.leg.text == (
        "LEADS ACKNOWLEDGMENT XIM ORI/IL0990300 LNO/V22B1234 IMN/V22B1234M0 IMT/M DOC/20240115"
    )
    again = apply(leads, CancelImage(mid=mid(), ori=VOAY_OWNER, imn=imn, doc="20240116"))
    mod = apply(leads, ModifyImage(mid=mid(), ori=VOAY_OWNER, imn=imn, doi="20240101"))
    for d in (again, mod):
        assert d.answer.leg.code == Codes.NOT_ON_FILE
        assert d.answer.leg.text == "LEADS REJECT NOT ON FILE IMN/V22B1234M0 CANCELLED ON 20240115"


def test_after_a_cancel_a_new_entry_takes_the_next_sequence_digit(leads: Store) -> None:
    seen = []
    for shade in range(12):
        imn = apply(leads, eim(VOAY_LNO, VOAY_OWNER, shade=shade)).answer.leg.imn
        assert imn is not None
        seen.append(imn[-1])
        apply(leads, CancelImage(mid=mid(), ori=VOAY_OWNER, imn=imn, doc="20240115"))
    assert "".join(seen) == "012345678901"  # mod 10


def test_sequence_skips_digits_of_active_images(leads: Store) -> None:
    imns = [apply(leads, eim(VOAY_LNO, VOAY_OWNER, "I", shade=s)).answer.leg.imn for s in range(3)]
    assert imns == ["V22B1234I0", "V22B1234I1", "V22B1234I2"]
    apply(leads, CancelImage(mid=mid(), ori=VOAY_OWNER, imn="V22B1234I1", doc="20240101"))
    # Digits go on after the last used (2), then wrap and skip the active 0 and 2.
    more = [apply(leads, eim(VOAY_LNO, VOAY_OWNER, "I", shade=s)).answer.leg.imn
            for s in range(10, 18)]
    assert more[:7] == [f"V22B1234I{d}" for d in (3, 4, 5, 6, 7, 8, 9)]
    assert more[7] == "V22B1234I1"


def test_shared_imn_already_active_is_on_file(leads: Store) -> None:
    apply(leads, eim(SOR_LNO, OWNER, imt="I", shade=1), imn="I000000007")
    clash = apply(leads, eim(SOR_LNO, OWNER, imt="I", shade=2), imn="I000000007")
    assert clash.answer.leg.code == Codes.ON_FILE


def test_modify_with_the_image_of_another_active_image_is_a_duplicate(leads: Store) -> None:
    a = apply(leads, eim(VOAY_LNO, VOAY_OWNER, "I", shade=1)).answer.leg.imn
    b = apply(leads, eim(VOAY_LNO, VOAY_OWNER, "I", shade=2)).answer.leg.imn
    assert a and b
    done = apply(leads, ModifyImage(mid=mid(), ori=VOAY_OWNER, imn=b, image=jpeg(1)))
    assert done.answer.leg.code == Codes.ON_FILE and a in done.answer.leg.text


# --------------------------------------------------------------------------- QIM


def test_query_by_every_key(leads: Store) -> None:
    apply(leads, eim(SOR_LNO, OWNER, doi="20230216"), imn="I000000001")
    apply(leads, eim(SOR_LNO, OWNER, imt="S", doi="20240501", shade=2), imn="I000000002")
    by_imn = apply(leads, QueryImage(mid=mid(), ori=OTHER, imn="I000000002"))
    by_lno = apply(leads, QueryImage(mid=mid(), ori=OTHER, lno=SOR_LNO))
    by_nic = apply(leads, QueryImage(mid=mid(), ori=OTHER, nic=SOR_NIC))
    by_person = apply(
        leads, QueryImage(mid=mid(), ori=OTHER, nam="SMITH, JOHN A", sex="M", dob="19800101")
    )
    assert [i.imn for i in by_imn.answer.images] == ["I000000002"]
    for done in (by_lno, by_nic, by_person):
        assert done.answer.leg.status == "ACK"
        assert [i.imn for i in done.answer.images] == ["I000000001", "I000000002"]
    m, s = by_lno.answer.images
    assert m.image == jpeg(1) and m.lno == SOR_LNO and m.system == "LEADS"
    assert (m.renewal_due, s.renewal_due) == (True, False)  # 2023-02-16 is > 365 days before NOW
    assert by_lno.answer.leg.text == (
        "LEADS ACKNOWLEDGMENT QIM LNO/X17A4394 2 IMAGES ON FILE 1 DUE FOR RENEWAL"
    )
    assert by_nic.answer.leg.text.startswith(f"LEADS ACKNOWLEDGMENT QIM NIC/{SOR_NIC} LNO/X17A4394")


def test_query_not_found(leads: Store, ncic: Store) -> None:
    none = apply(leads, QueryImage(mid=mid(), ori=OWNER, lno="A00A0000"))
    assert none.answer.leg.status == "NOT_FOUND" and not none.answer.images
    assert none.answer.leg.text == "LEADS NOT FOUND QIM LNO/A00A0000 NO RECORD ON FILE"
    empty = apply(ncic, QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO))
    assert empty.answer.leg.text == f"NCIC  NOT FOUND QIM LNO/{SOR_LNO} NO IMAGE ON FILE"
    voay = apply(ncic, QueryImage(mid=mid(), ori=OWNER, lno=VOAY_LNO))
    assert voay.answer.leg.status == "NOT_FOUND"


def test_query_does_not_return_cancelled_images(leads: Store) -> None:
    imn = apply(leads, eim(VOAY_LNO, VOAY_OWNER)).answer.leg.imn
    assert imn is not None
    apply(leads, CancelImage(mid=mid(), ori=VOAY_OWNER, imn=imn, doc="20240101"))
    assert apply(leads, QueryImage(mid=mid(), ori=OWNER, imn=imn)).answer.leg.status == "NOT_FOUND"
    assert apply(leads, QueryImage(mid=mid(), ori=OWNER, lno=VOAY_LNO)).answer.images == []


def test_queries_are_not_stored(leads: Store) -> None:
    apply(leads, eim(VOAY_LNO, VOAY_OWNER))
    before = leads.applied_count()
    request = leg(QueryImage(mid=mid(), ori=OWNER, lno=VOAY_LNO), cid="q")
    apply_request(leads, request, now=NOW)
    again = apply_request(leads, request, now=NOW)
    assert leads.applied_count() == before and not again.redelivered


def test_query_without_a_key_is_rejected(leads: Store) -> None:
    done = apply(leads, QueryImage(mid=mid(), ori=OWNER, nam="SMITH, JOHN A"))
    assert done.answer.leg.code == Codes.MISSING_FIELD


@pytest.mark.parametrize(
    ("doi", "due"),
    # 2024 is a leap year: 2023-06-02 is exactly 365 days before NOW, 2023-06-01 is 366.
    [("20240601", False), ("20230602", False), ("20230601", True), ("junk", False)],
)
def test_renewal_due_after_365_days(doi: str, due: bool) -> None:
    assert renewal_due(doi, NOW.date(), 365) is due


# --------------------------------------------------------------------------- unapplied answers


def test_answer_unapplied_stores_the_refusal_and_applies_nothing(leads: Store) -> None:
    request = leg(eim(VOAY_LNO, VOAY_OWNER), cid="sim")
    done = answer_unapplied(
        leads, request, "REJECT", code=Codes.SIMULATED_REJECT, text="REJECT SIMULATED REJECT"
    )
    assert done.answer.leg.text == "LEADS REJECT SIMULATED REJECT"
    assert leads.image_count() == 0
    # Redelivered later, when the system would accept it: the first answer stands.
    assert apply_request(leads, request, now=NOW).encoded == done.encoded
    assert leads.image_count() == 0


def test_answer_unapplied_keeps_an_earlier_applied_answer(leads: Store) -> None:
    request = leg(eim(VOAY_LNO, VOAY_OWNER), cid="was-applied")
    first = apply_request(leads, request, now=NOW)
    later = answer_unapplied(leads, request, "UNAVAILABLE", code=Codes.SYSTEM_UNAVAILABLE, text="X")
    assert later.encoded == first.encoded and later.redelivered


def test_stamp_includes_the_simulated_delay(leads: Store) -> None:
    done = apply_request(leads, leg(eim(VOAY_LNO, VOAY_OWNER)), now=NOW, delay_s=0.25)
    assert done.answer.answered == pytest.approx(NOW.timestamp() + 0.25)
