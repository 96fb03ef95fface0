"""The pending table (pure): deadlines, supplements, duplicates, restore from decisions."""

from __future__ import annotations

from switch.contract.internal import Decision, DuplicateNotice, LegAnswer, Manifest
from switch.contract.messages import ImageRecord, Leg
from switch.correlator.pending import PendingTable

T0 = 1_000_000.0


def manifest(cid: str = "c1", mke: str = "EIM", expected=("LEADS", "NCIC"), skipped=None,  # type: ignore[no-untyped-def]
             deadline: float = T0 + 10) -> Manifest:
    return Manifest(cid=cid, mid=f"mid-{cid}", ori="IL0160000", mke=mke, expected=list(expected),
                    skipped=dict(skipped or {}), deadline=deadline, created=T0)


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
    assert emit.decision is not None and emit.decision.event == "first" and emit.decision.missing == {}
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
    assert sup.decision is not None and sup.decision.event == "supplement" and sup.decision.leg == "NCIC"
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
    assert emits[1].decision is None and emits[1].reply.cid == "c1"
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


def test_finished_transactions_are_forgotten_after_retention_or_over_budget() -> None:
    t = PendingTable(retention_s=100, max_bytes=300_000)
    big = [ImageRecord(system="LEADS", imn="I1", imt="M", doi="20250101", image=b"x" * 100_000)]
    for i in range(5):
        cid = f"q{i}"
        t.on_manifest(manifest(cid, mke="QIM", expected=("LEADS",)), 0)
        t.on_answer(answer(cid, "LEADS", images=big, at=T0 + i), now=T0 + i)
    # Over budget: the oldest finished ones went first; the newest is still answerable.
    assert t.counters.evicted >= 2 and len(t.done) <= 3 and t.done_bytes <= 300_000
    assert "q4" in t.done and "q0" not in t.done
    [dup] = t.on_duplicate(DuplicateNotice(cid="q4", mid="mid-q4"))
    assert dup.reply.duplicate and dup.reply.images[0].image == b"x" * 100_000
    assert t.sweep(T0 + 50) == 0
    assert t.sweep(T0 + 10_000) >= 1
    assert len(t) == 0


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
    assert "q" in t2.done
