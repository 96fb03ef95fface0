"""The store changelog without Kafka: what the outbox queues, what a changelog record
writes back, and when a store must be rebuilt (services/changelog.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from services.changelog import apply_change, pending_changes
from services.population import generate
from services.rules import apply_request
from services.store import Store
from switch.contract.internal import LegRequest
from switch.contract.messages import CancelImage, EnterImage

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def _enter(store: Store, cid: str, rec, imn: str, jpeg: bytes) -> None:  # type: ignore[no-untyped-def]
    req = EnterImage(mid=cid, ori=rec.ori, lno=rec.lno, imt="M", doi="20250101", image=jpeg)
    a = apply_request(store, LegRequest(cid=cid, system="LEADS", deadline=0.0, request=req,
                                        imn=imn, rtype=rec.rtype, nic=rec.nic), now=NOW)
    assert a.answer.leg.status == "ACK", a.answer.leg.text


def _replay(changes: list[tuple[bytes, bytes | None]], into: Store) -> None:
    with into.transaction():
        for offset, (key, value) in enumerate(changes):
            apply_change(into, SimpleNamespace(key=key, value=value, offset=offset))  # type: ignore[arg-type]


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        db.close()


def test_every_change_reaches_a_copy_through_the_changelog(tmp_path: Path) -> None:
    sor = [r for r in generate(40, 6) if r.rtype == "SOR"][:3]
    with Store(tmp_path / "a.sqlite3", "LEADS") as a:
        a.insert_records(sor)
        _enter(a, "c1", sor[0], "I000000001", b"first")
        _enter(a, "c2", sor[1], "I000000002", b"second")
        cancel = CancelImage(mid="x", ori=sor[1].ori, imn="I000000002", doc="20250102")
        apply_request(a, LegRequest(cid="c3", system="LEADS", deadline=0.0, request=cancel), now=NOW)
        with a.transaction():
            assert a.prune_applied(NOW.timestamp() + 1) == 3  # tombstones for the answers
        first = pending_changes(a, 0)
        keys = [k for k, _ in first.changes]
        assert keys[:3] == [f"r/{r.lno}".encode() for r in sor]
        assert b"i/2" in keys and b"a/c3" in keys
        assert dict(first.changes)[b"a/c1"] is None  # pruned since: sent as a tombstone
        assert pending_changes(a, first.upto).changes == []  # read once
        with a.transaction():
            a.outbox_done(first.upto, 42)
        assert a.outbox_after(0) == [] and a.position() == 42 and not a.unclean()
    with Store(tmp_path / "b.sqlite3", "LEADS") as b:
        _replay(first.changes, b)
        assert b.image_by_imn("I000000001").jpeg == b"first"  # type: ignore[union-attr]
        assert b.image_by_imn("I000000002").status == "cancelled"  # type: ignore[union-attr]
    for table in ("records", "images", "applied"):
        assert _rows(tmp_path / "a.sqlite3", table) == _rows(tmp_path / "b.sqlite3", table)


def test_an_unsent_answer_makes_the_store_unclean_and_a_rebuild_drops_it(tmp_path: Path) -> None:
    sor = [r for r in generate(40, 7) if r.rtype == "SOR"][:2]
    with Store(tmp_path / "s.sqlite3", "LEADS") as s:
        s.insert_records(sor)
        with s.transaction():
            s.outbox_done(s.last_outbox_seq(), None)
        assert not s.unclean()  # seeded records only: never a reason to rebuild
        _enter(s, "c1", sor[0], "I000000001", b"x")
        assert s.unclean()  # the process died before sending: its answer never went out
        with s.transaction():
            assert s.forget_unsent() == 2  # the image and the answer
        assert s.image_count() == 0 and s.applied_count() == 0 and s.record_count() == 2
        assert not s.unclean() and s.position() == 0  # read the changelog from its start


def test_a_store_of_the_first_schema_is_queued_in_bulk_not_unclean(tmp_path: Path) -> None:
    from services.store import MIGRATIONS
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version=1;")
    db.execute("INSERT INTO records (lno, rtype, ori) VALUES ('X17A4394', 'SOR', 'IL0160000')")
    db.execute("INSERT INTO applied (cid, answer, applied) VALUES ('c0', x'7b7d', 1.0)")
    db.commit()
    db.close()
    with Store(path, "LEADS") as s:
        assert s.schema_version == len(MIGRATIONS)
        assert [(t, k) for _, t, k in s.outbox_after(0)] == [("r", "X17A4394"), ("a", "c0")]
        assert not s.unclean()  # everything on file goes to the changelog; nothing is dropped
