"""The store itself: schema migrations, WAL, transactions, what each system holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.store import MIGRATIONS, Store, StoreError
from tests.services.helpers import RECORDS, SOR, SOR_NIC, VOAY


def test_new_store_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "s" / "leads.sqlite3"
    with Store(path, "LEADS") as store:
        assert store.schema_version == len(MIGRATIONS)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        db.close()
    with Store(path, "LEADS") as store:  # reopening migrates nothing and loses nothing
        assert store.schema_version == len(MIGRATIONS)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "leads.sqlite3"
    Store(path, "LEADS").close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path, "LEADS")


def test_leads_holds_every_record_ncic_the_sex_offenders(leads: Store, ncic: Store) -> None:
    assert leads.record_count() == 2 and ncic.record_count() == 1
    assert leads.record_by_lno(VOAY.lno) == VOAY
    assert ncic.record_by_lno(VOAY.lno) is None
    assert ncic.record_by_nic(SOR_NIC) == SOR
    assert leads.records_by_person(SOR.nam or "", "M", SOR.dob or "") == [SOR]


def test_inserting_records_again_is_harmless(leads: Store) -> None:
    assert leads.insert_records(RECORDS) == 0
    assert leads.record_count() == 2
    assert [lno for _, e in leads.records_after(0) for lno in [e.lno]] == [SOR.lno, VOAY.lno]


def test_nested_transactions_roll_back_the_inner_part_only(leads: Store) -> None:
    with leads.transaction():
        leads.record_applied("outer", b"{}", 1.0)
        with pytest.raises(RuntimeError), leads.transaction():
            leads.record_applied("inner", b"{}", 1.0)
            raise RuntimeError("boom")
    assert leads.applied_answer("outer") == b"{}"
    assert leads.applied_answer("inner") is None


def test_prune_applied(leads: Store) -> None:
    with leads.transaction():
        leads.record_applied("old", b"{}", 100.0)
        leads.record_applied("new", b"{}", 200.0)
    assert leads.prune_applied(150.0) == 1
    assert leads.applied_answer("old") is None and leads.applied_answer("new") == b"{}"


def test_highest_shared_imns_per_partition_digit_cancelled_included(leads: Store) -> None:
    from switch.contract.internal import RecordEntry
    from tests.services.helpers import jpeg

    def put(imn: str, lno: str = SOR.lno) -> int:
        return leads.insert_image(imn=imn, lno=lno, imt="M", doi="20250101", mis=None,
                                  jpeg=jpeg(len(imn)), sha256=imn, entered="2025-01-01")

    assert leads.highest_shared_imns() == []
    put("I100000007")
    gone = put("I100000041")
    leads.cancel_image(gone, doc="20250102", cancelled="2025-01-02")
    put("I200000003")
    put(f"{VOAY.lno}M0", VOAY.lno)
    # A VOAY IMN whose LNO starts with I and a digit sorts above them: not a shared number.
    leads.insert_records([RecordEntry(lno="I25U3253", rtype="VOAY", ori=VOAY.ori)])
    put("I25U3253M0", "I25U3253")
    assert leads.highest_shared_imns() == ["I100000041", "I200000003"]
