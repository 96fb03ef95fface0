"""Shared IMN allocation (pure): sequences per requests partition, never offsets, never
at or below LEADS's floor, never reused, refused when a partition has used them all."""

from __future__ import annotations

import msgspec

from switch.contract.internal import (
    ImnFloor,
    ImnSequence,
    RecordEntry,
    floor_from_imns,
    parse_shared_imn,
)
from switch.contract.messages import EnterImage
from switch.router.directory import Directory
from switch.router.imns import (
    SEQUENCE_LIMIT,
    ImnSequences,
    shared_imn,
)
from switch.router.rules import Refusal, Route, route

SOR = RecordEntry(lno="X17A4394", rtype="SOR", ori="IL0160000", nic="X123456782")
OTHER_SOR = RecordEntry(lno="X17A4395", rtype="SOR", ori="IL0160000", nic="X123456790")
VOAY = RecordEntry(lno="V12F6274", rtype="VOAY", ori="IL0370000")


def _directory() -> Directory:
    d = Directory()
    for r in (SOR, OTHER_SOR, VOAY):
        d.put(r)
    return d


def _eim(lno: str, mid: str) -> EnterImage:
    return EnterImage(mid=mid, ori="IL0160000", lno=lno, imt="M", doi="20250101", image=b"x")


def test_numbers_do_not_follow_offsets_so_they_do_not_wrap() -> None:
    # Before: `I` + partition + offset mod 10^8, so offsets 5 and 10^8 + 5 of partition 1
    # both gave I100000005 and the second EIM was refused ON FILE. The allocation now
    # takes no offset at all: two EIMs that far apart in the topic are two numbers.
    seqs = ImnSequences()
    first = seqs.batch()  # the batch holding offset 5 of partition 1
    a = route(_eim(SOR.lno, "m1"), _directory(), partition=1, imns=first)
    first.commit()
    second = seqs.batch()  # the batch holding offset 10^8 + 5, long after
    b = route(_eim(OTHER_SOR.lno, "m2"), _directory(), partition=1, imns=second)
    assert isinstance(a, Route) and isinstance(b, Route)
    assert (a.imn, b.imn) == ("I100000000", "I100000001")


def test_only_routed_sex_offender_entries_take_a_number() -> None:
    batch = ImnSequences().batch()
    d = _directory()
    route(_eim(VOAY.lno, "v"), d, partition=0, imns=batch)  # LEADS numbers VOAY images
    route(_eim("Z99Z9999", "x"), d, partition=0, imns=batch)  # not on file
    r = route(_eim(SOR.lno, "s"), d, partition=0, imns=batch)
    assert isinstance(r, Route) and r.imn == "I000000000"


def test_partitions_have_their_own_sequences() -> None:
    batch = ImnSequences().batch()
    assert [batch.take(0), batch.take(2), batch.take(0)] == ["I000000000", "I200000000", "I000000001"]
    assert [(k, s.next) for k, s in batch.records()] == [("0", 2), ("2", 1)]


def test_an_aborted_batch_takes_the_same_numbers_again_a_committed_one_never() -> None:
    seqs = ImnSequences()
    aborted = seqs.batch()
    assert [aborted.take(1), aborted.take(1)] == ["I100000000", "I100000001"]
    # The transaction aborted: no commit(). Routing the batch again gives the same numbers.
    again = seqs.batch()
    assert [again.take(1), again.take(1)] == ["I100000000", "I100000001"]
    again.commit()
    assert seqs.batch().take(1) == "I100000002"


def test_a_restart_continues_from_the_records_written_in_the_transaction() -> None:
    seqs = ImnSequences()
    batch = seqs.batch()
    for _ in range(3):
        batch.take(4)
    written = [msgspec.json.encode(s) for _, s in batch.records()]
    restarted = ImnSequences()
    for value in written:
        assert restarted.apply_raw(value)
    assert restarted.batch().take(4) == "I400000003"
    assert not restarted.apply_raw(b"{not json")


def test_the_floor_from_leads_is_never_reached_again() -> None:
    # Topics recreated over existing stores: no sequence records, LEADS's floor only.
    seqs = ImnSequences()
    assert not seqs.floor_seen
    seqs.apply(ImnFloor(highest={1: 41, 3: 7}))
    assert seqs.floor_seen
    batch = seqs.batch()
    assert [batch.take(1), batch.take(3), batch.take(2)] == ["I100000042", "I300000008", "I200000000"]
    # A floor below the sequence does not move it back.
    seqs2 = ImnSequences()
    seqs2.apply(ImnSequence(partition=1, next=500))
    seqs2.apply(ImnFloor(highest={1: 41}))
    assert seqs2.batch().take(1) == "I100000500"


def test_an_exhausted_partition_refuses_instead_of_reusing_a_number() -> None:
    seqs = ImnSequences()
    seqs.apply(ImnFloor(highest={3: SEQUENCE_LIMIT - 2}))
    batch = seqs.batch()
    d = _directory()
    last = route(_eim(SOR.lno, "a"), d, partition=3, imns=batch)
    assert isinstance(last, Route) and last.imn == "I399999999"
    refused = route(_eim(OTHER_SOR.lno, "b"), d, partition=3, imns=batch)
    assert isinstance(refused, Refusal)
    assert refused.errors[0].code == "IMN_EXHAUSTED"
    assert "PARTITION 3" in refused.errors[0].text
    # Other partitions still allocate.
    other = route(_eim(OTHER_SOR.lno, "c"), d, partition=4, imns=batch)
    assert isinstance(other, Route) and other.imn == "I400000000"


def test_floor_from_stored_imns_ignores_leads_only_numbers() -> None:
    # "I25U3253M0" is a VOAY IMN whose LNO starts with I: not a shared number.
    assert floor_from_imns(["I100000041", "I100000007", "I25U3253M0", "X17A4394M0", "I900000000"]) == {
        1: 41, 9: 0,
    }
    assert parse_shared_imn("I25U3253M0") is None
    assert parse_shared_imn(shared_imn(7, 12)) == (7, 12)
