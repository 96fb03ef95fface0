"""The pending table (pure): deadlines, supplements, duplicates, the changelog records."""

from __future__ import annotations

from switch.contract.internal import (
    Decision,
    DuplicateNotice,
    Finished,
    LegAnswer,
    Manifest,
    Waiting,
)
from switch.contract.messages import ImageRecord, Leg
from switch.correlator.pending import PendingTable
from switch.correlator.store import ReplyStore

T0 = 1_000_000.0


def manifest(cid: str = "c1", mke: str = "EIM", expected=("LEADS", "NCIC"), skipped=None,  # type: ignore[no-untyped-def]
             deadline: float = T0 + 10) -> Manifest:
    return Manifest(cid=cid, mid=f"mid-{cid}", ori="IL0160000", mke=mke, expected=list(expected),
                    skipped=dict(skipped or {}), deadline=deadline, created=T0,
                    timeout_s=deadline - T0)


def answer(cid: str, system: str, status: str = "ACK", at: float = T0 + 1, images=()) -> LegAnswer:  # type: ignore[no-untyped-def]
    return LegAnswer(cid=cid, system=system, leg=Leg(status=status, text=f"{system} {status}",  # type: ignore[arg-type]
                                                     imn="I000000001"),
                     images=list(images), answered=at)


def test_complete_when_every_expected_leg_answered() -> None:
    t = PendingTable()
    t.on_manifest(manifest(), 0)
    assert t.on_answer(answer("c1", "LEADS")) == []
    [emit] = t.on_answer(answer("c1", "NCIC"))
    assert emit.reply.status == "COMPLETE" and not emit.reply.supplement
    [(partition, cid, fin)] = t.take_changes()
    assert (partition, cid) == (0, "c1") and isinstance(fin, Finished) and fin.ori == "IL0160000"
    assert emit.reply.legs["LEADS"].ms == 1000.0


def test_skipped_leg_appears_with_its_reason() -> None:
    t = PendingTable()
    t.on_manifest(manifest(expected=("LEADS",), skipped={"NCIC": "SKIPPED - VOAY"}), 0)
    [emit] = t.on_answer(answer("c1", "LEADS"))
    assert emit.reply.legs["NCIC"].status == "SKIPPED"
    assert "NCIC  SKIPPED - VOAY" in emit.reply.text
    assert emit.reply.status == "COMPLETE"


def test_deadline_queues_entries_then_a_late_answer_supplements() -> None:
    t = PendingTable()
    t.on_manifest(manifest(), 0)
    t.on_answer(answer("c1", "LEADS"))
    assert t.expire(T0 + 9) == []
    [first] = t.expire(T0 + 10)
    assert first.reply.status == "PENDING" and first.reply.legs["NCIC"].status == "QUEUED"
    assert t.expire(T0 + 20) == []  # replied once only
    [sup] = t.on_answer(answer("c1", "NCIC", at=T0 + 30))
    assert sup.reply.supplement and sup.reply.status == "COMPLETE"
    assert t.counters.late == 1 and t.counters.supplements == 1


def test_deadline_times_out_query_legs() -> None:
    t = PendingTable()
    t.on_manifest(manifest(mke="QIM"), 0)
    t.on_answer(answer("c1", "LEADS", "NOT_FOUND"))
    [first] = t.expire(T0 + 11)
    assert first.reply.status == "PARTIAL" and first.reply.legs["NCIC"].status == "TIMEOUT"


def test_deadline_waits_for_partitions_not_yet_read_to_the_end() -> None:
    t = PendingTable()
    t.on_manifest(manifest(), 2)
    assert t.expire(T0 + 60, partitions={0, 1}) == []
    assert len(t.expire(T0 + 60, partitions={2})) == 1


def test_duplicate_orphan_and_unrouted_answers_are_counted_not_replied() -> None:
    t = PendingTable()
    t.on_manifest(manifest(expected=("LEADS",)), 0)
    assert t.on_answer(answer("nope", "LEADS")) == []
    assert t.on_answer(answer("c1", "NCIC")) == []
    t.on_answer(answer("c1", "LEADS"))
    assert t.on_answer(answer("c1", "LEADS")) == []
    c = t.counters
    assert (c.orphans, c.duplicate_answers) == (2, 1)
    kinds = [k for k, _, _ in t.events]
    assert kinds.count("orphan") == 2 and "answer_after_finish" in kinds


def test_both_systems_rejecting_is_rejected_and_disagreement_is_partial() -> None:
    t = PendingTable()
    t.on_manifest(manifest("a"), 0)
    t.on_answer(answer("a", "LEADS", "REJECT"))
    [e] = t.on_answer(answer("a", "NCIC", "REJECT"))
    assert e.reply.status == "REJECTED"
    t.on_manifest(manifest("b"), 0)
    t.on_answer(answer("b", "LEADS", "ACK"))
    [e] = t.on_answer(answer("b", "NCIC", "UNAVAILABLE"))
    assert e.reply.status == "PARTIAL"


def test_duplicate_notice_answers_with_the_original_reply() -> None:
    t = PendingTable()
    t.on_manifest(manifest(), 0)
    held = t.on_duplicate(DuplicateNotice(cid="c1", mid="mid-c1"))
    assert held == []  # not replied yet: held until the first reply
    t.on_answer(answer("c1", "LEADS"))
    emits = t.on_answer(answer("c1", "NCIC"))
    assert [e.reply.duplicate for e in emits] == [False, True]
    assert emits[1].reply.cid == "c1"
    [again] = t.on_duplicate(DuplicateNotice(cid="c1", mid="mid-c1", reply_to="switch.replies.x"))
    assert again.reply.duplicate and again.topic == "switch.replies.x"
    [gone] = t.on_duplicate(DuplicateNotice(cid="forgotten", mid="m9"))
    assert gone.reply.status == "REJECTED" and gone.reply.errors[0].code == "DUPLICATE_MID"


def test_restore_from_decisions_sends_nothing_twice() -> None:
    """Replay as after a restart: the decision says the PENDING reply went out, so the
    deadline does not fire again; the late answer still gets its supplement."""
    t = PendingTable()
    t.on_manifest(manifest(), 0)
    t.on_answer(answer("c1", "LEADS"))
    t.on_decision(Decision(cid="c1", event="first", missing={"NCIC": "QUEUED"}, ts=T0 + 10))
    assert t.expire(T0 + 100) == []
    [sup] = t.on_answer(answer("c1", "NCIC", at=T0 + 120))
    assert sup.reply.supplement and sup.reply.status == "COMPLETE"
    t2 = PendingTable()
    t2.on_manifest(manifest(), 0)
    t2.on_decision(Decision(cid="c1", event="first", missing={"NCIC": "QUEUED", "LEADS": "QUEUED"}))
    t2.on_decision(Decision(cid="c1", event="supplement", leg="NCIC"))
    t2.on_answer(answer("c1", "LEADS"))
    emits = t2.on_answer(answer("c1", "NCIC"))  # its supplement was already sent
    assert emits == []


def _commit(t: PendingTable, store: ReplyStore) -> list[tuple[int, str, bytes | None]]:
    """What the loop does after a commit: the changelog records into the store."""
    import msgspec

    recs = [(p, cid, msgspec.json.encode(r)) for p, cid, r in t.take_changes()]
    store.apply(list(recs))
    t.stored([cid for _, cid, _ in recs])
    return list(recs)


def test_finished_replies_live_in_the_store_not_in_ram_for_the_whole_retention() -> None:
    """600 QIM replies of 100 KB (60 MB, twice the old 32 MiB RAM budget): every one is
    still answerable for a resubmission; the table itself holds nothing finished."""
    store = ReplyStore()
    t = PendingTable(lookup=store.finished)
    big = [ImageRecord(system="LEADS", imn="I1", imt="M", doi="20250101", image=b"x" * 100_000)]
    for i in range(600):
        cid = f"q{i}"
        t.on_manifest(manifest(cid, mke="QIM", expected=("LEADS",)), 0, offset=i)
        t.on_answer(answer(cid, "LEADS", images=big, at=T0 + i), now=T0 + i)
        _commit(t, store)
    assert len(t) == 0 and t.recent == {} and store.finished_count() == 600
    [dup] = t.on_duplicate(DuplicateNotice(cid="q0", mid="mid-q0", ori="IL0160000"))
    assert dup.reply.duplicate and dup.reply.cid == "q0" and dup.reply.ori == "IL0160000"
    assert dup.reply.images[0].image == b"x" * 100_000
    # Swept by age (broker time), oldest first.
    assert store.expired(T0 + 10.5, {0}) == [(f"q{i}", 0) for i in range(11)]
    assert store.expired(T0 + 10.5, {1}) == []
    store.apply([(0, "q0", None)])  # the sweep's tombstone
    assert store.finished("q0") is None and store.finished_count() == 599


def test_a_duplicate_notice_of_another_ori_never_gets_the_original_reply() -> None:
    store = ReplyStore()
    t = PendingTable(lookup=store.finished)
    t.on_manifest(manifest("a", mke="QIM", expected=("LEADS",)), 0)
    t.on_answer(answer("a", "LEADS"), now=T0 + 1)
    _commit(t, store)
    [e] = t.on_duplicate(DuplicateNotice(cid="a", mid="mid-a", ori="IL0990000"))
    assert e.reply.status == "REJECTED" and e.reply.ori == "IL0990000" and not e.reply.images
    [gone] = t.on_duplicate(DuplicateNotice(cid="forgotten", mid="m9", ori="IL0160000"))
    assert gone.reply.errors[0].code == "DUPLICATE_MID" and gone.reply.ori == "IL0160000"


def test_a_queued_entry_is_snapshot_and_a_restored_table_still_supplements() -> None:
    store = ReplyStore()
    t = PendingTable(lookup=store.finished)
    t.on_manifest(manifest(), 1, offset=7, start=T0)
    t.on_answer(answer("c1", "LEADS"), now=T0 + 1)
    assert t.checkpoint(1, 9) == 7  # its manifest has not had its first reply yet
    [first] = t.expire(T0 + 10)
    assert first.reply.status == "PENDING"
    [(p, cid, _)] = _commit(t, store)
    assert (p, cid) == (1, "c1")
    assert t.checkpoint(1, 9) == 9
    # A restart: a new table from the store alone.
    t2 = PendingTable(lookup=store.finished)
    [(partition, w)] = store.waiting({1})
    assert isinstance(w, Waiting) and w.missing == {"NCIC": "QUEUED"}
    t2.load(w, partition)
    assert t2.expire(T0 + 7 * 86400) == []  # its first reply was sent: never again
    [sup] = t2.on_answer(answer("c1", "NCIC", at=T0 + 7 * 86400), now=T0 + 7 * 86400)
    assert sup.reply.supplement and sup.reply.status == "COMPLETE"
    [(_, _, fin)] = t2.take_changes()
    assert isinstance(fin, Finished)


def test_deadline_counts_from_the_broker_append_time_not_the_router_clock() -> None:
    t = PendingTable()
    m = manifest(deadline=T0 + 10)  # the router's clock says T0 + 10 ...
    t.on_manifest(m, 0, start=T0 + 3600)  # ... but the broker appended it an hour later
    assert t.expire(T0 + 3600 + 9) == []
    assert len(t.expire(T0 + 3600 + 10)) == 1


def test_a_tick_looks_only_at_what_is_due() -> None:
    t = PendingTable()
    for i in range(2000):
        t.on_manifest(manifest(f"c{i}", deadline=T0 + 10 + i), 0)
    emits = t.expire(T0 + 10 + 4.5)
    assert sorted(e.cid for e in emits) == ["c0", "c1", "c2", "c3", "c4"]
    assert len(t._deadlines) == 1995
    # A finished query with a timed-out leg stays open for late answers, then goes.
    t2 = PendingTable(late_grace_s=30)
    t2.on_manifest(manifest("q", mke="QIM"), 0)
    t2.on_answer(answer("q", "LEADS", "NOT_FOUND"), now=T0 + 1)
    t2.expire(T0 + 11)
    assert "q" in t2.txs
    t2.expire(T0 + 11 + 31)
    assert "q" in t2.recent and "q" not in t2.txs
