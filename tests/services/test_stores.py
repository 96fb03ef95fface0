"""Partition stores: each record in its LNO's partition, an earlier single store split,
and one read-only view over all of a system's stores (pure SQLite, no Kafka)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.population import generate
from services.rules import apply_request
from services.store import Store
from services.stores import SystemStores, read_only_union
from switch.contract.internal import LegAnswer, LegRequest, RecordEntry
from switch.contract.messages import EnterImage, QueryImage
from switch.kafka.keys import key_partition
from switch.settings import Settings

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def settings(tmp_path: Path, partitions: int = 3) -> Settings:
    return Settings.from_env({"SWITCH_PARTITIONS": str(partitions)}, home=tmp_path / "home",
                             bootstrap_servers="127.0.0.1:1")


def test_key_partition_spreads_lnos_over_every_partition() -> None:
    lnos = [r.lno for r in generate(300, 1)]
    counts = [sum(key_partition(lno, 3) == p for lno in lnos) for p in range(3)]
    assert all(60 < c < 140 for c in counts), counts
    assert all(key_partition(lno, 1) == 0 for lno in lnos)


def test_an_earlier_single_store_is_split_by_partition_and_kept(tmp_path: Path) -> None:
    s = settings(tmp_path)
    records = generate(60, 2)
    sor = [r for r in records if r.rtype == "SOR"]
    with Store(s.legacy_store_path("LEADS"), "LEADS") as old:
        old.insert_records(records)
        for n, rec in enumerate(sor[:10]):
            req = EnterImage(mid=f"m{n}", ori=rec.ori, lno=rec.lno, imt="M", doi="20250101",
                             image=f"jpeg {n}".encode())
            applied = apply_request(old, LegRequest(cid=f"c{n}", system="LEADS", deadline=0.0,
                                                    request=req, imn=f"I00000000{n}",
                                                    rtype=rec.rtype, nic=rec.nic), now=NOW)
            assert applied.answer.leg.status == "ACK", applied.answer.leg.text

    with SystemStores(s, "LEADS") as stores:
        assert stores.record_count() == 60
        for p, store in stores.all():
            for _, rec in store.records_after(0):
                assert key_partition(rec.lno, 3) == p
            assert store.applied_count() == 10  # answers by cid: copied to every partition
        for n, rec in enumerate(sor[:10]):
            image = stores.for_lno(rec.lno).image_by_imn(f"I00000000{n}")
            assert image is not None and image.lno == rec.lno and image.jpeg == f"jpeg {n}".encode()
    assert not s.legacy_store_path("LEADS").exists()
    assert s.legacy_store_path("LEADS").with_name("leads.sqlite3.split").is_file()
    with SystemStores(s, "LEADS") as again:  # once only
        assert again.record_count() == 60


def test_one_read_only_view_over_the_partition_stores(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with SystemStores(s, "NCIC") as stores:
        added = stores.insert_records(generate(50, 3))
    db = read_only_union(s.store_paths("NCIC"))
    try:
        assert db.execute("SELECT count(*) FROM records").fetchone()[0] == added > 0
        with pytest.raises(sqlite3.OperationalError):
            db.execute("DELETE FROM records")
    finally:
        db.close()
    with pytest.raises(FileNotFoundError):
        read_only_union(settings(tmp_path / "none").store_paths("NCIC"))


def test_a_partition_beyond_the_configured_count_says_what_to_do(tmp_path: Path) -> None:
    with SystemStores(settings(tmp_path), "LEADS") as stores, \
            pytest.raises(ValueError, match="SWITCH_PARTITIONS"):
        stores.store(3)


def test_a_query_reads_the_other_partitions_where_an_lno_does_not_decide(tmp_path: Path) -> None:
    """A name search finds the records of that name in every partition; a query by NIC or
    by IMN the router could not key by LNO finds its record wherever it is."""
    s = settings(tmp_path)
    records = [r for r in generate(200, 4) if r.rtype == "SOR"]
    a = records[0]
    b = next(r for r in records if key_partition(r.lno, 3) != key_partition(a.lno, 3))
    twin = RecordEntry(lno=b.lno, rtype=b.rtype, ori=b.ori, nic=b.nic, nam=a.nam, sex=a.sex,
                       dob=a.dob)  # b renamed: two records of one name, two partitions
    with SystemStores(s, "NCIC") as stores:
        stores.insert_records([a, twin])
        entered = apply_request(stores.for_lno(b.lno), LegRequest(
            cid="c1", system="NCIC", deadline=0.0, imn="I000000001", request=EnterImage(
                mid="m1", ori=b.ori, lno=b.lno, imt="M", doi="20250101", image=b"jpeg")), now=NOW)
        assert entered.answer.leg.status == "ACK", entered.answer.leg.text
        home = stores.partition_of(a.lno)  # the leg arrives on a's partition
        store, others = stores.store(home), stores.others(home)

        def ask(**by: str) -> LegAnswer:
            q = LegRequest(cid="q", system="NCIC", deadline=0.0,
                           request=QueryImage(mid="q", ori=a.ori, **by))  # type: ignore[arg-type]
            return apply_request(store, q, now=NOW, others=others).answer

        by_name = ask(nam=a.nam or "", sex=a.sex or "", dob=a.dob or "")
        assert by_name.leg.status == "ACK" and [i.imn for i in by_name.images] == ["I000000001"]
        assert ask(nic=b.nic or "").leg.status == "ACK"
        assert ask(imn="I000000001").leg.status == "ACK"
        assert apply_request(store, LegRequest(cid="q2", system="NCIC", deadline=0.0, request=(
            QueryImage(mid="q2", ori=a.ori, imn="I000000001"))), now=NOW).answer.leg.status \
            == "NOT_FOUND"  # without the others: not in this partition
