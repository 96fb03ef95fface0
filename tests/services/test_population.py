"""The synthetic population and `switch seed`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from services.population import ORIS, generate
from services.seeding import seed_stores, stores_empty
from services.stores import SystemStores
from switch.cli.main import main
from switch.contract.fields import check_dob, check_lno, check_nam, check_nic, check_ori
from switch.settings import Settings


def settings(home: Path) -> Settings:
    return Settings.from_env({}, home=home, bootstrap_servers="127.0.0.1:9")


def test_same_seed_same_records_and_a_longer_run_extends_a_shorter() -> None:
    assert generate(500, 42) == generate(500, 42)
    assert generate(1000, 42)[:500] == generate(500, 42)
    assert generate(500, 43) != generate(500, 42)


def test_records_are_well_formed_and_unique() -> None:
    records = generate(5000, 1)
    for r in records:
        assert check_lno(r.lno) is None
        assert check_ori(r.ori) is None and r.ori in ORIS and r.ori.startswith("IL")
        assert r.nam and check_nam(r.nam) is None and len(r.nam) <= 30
        assert r.sex in ("M", "F", "U")
        assert r.dob and check_dob(r.dob) is None and "19450101" <= r.dob <= "20061231"
        if r.rtype == "SOR":
            assert r.nic and check_nic(r.nic) is None and r.nic.startswith("X")
        else:
            assert r.rtype == "VOAY" and r.nic is None
    assert len({r.lno for r in records}) == len(records)
    nics = [r.nic for r in records if r.nic]
    assert len(set(nics)) == len(nics)
    assert len(ORIS) == 50


@pytest.mark.parametrize("share", [0.0, 0.85, 1.0])
def test_sor_share(share: float) -> None:
    records = generate(4000, 9, sor_share=share)
    got = sum(r.rtype == "SOR" for r in records) / len(records)
    assert got == pytest.approx(share, abs=0.03)


def test_seed_stores_writes_both_stores_in_agreement(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert stores_empty(s)
    entries = seed_stores(s, 300, 5)
    assert not stores_empty(s)
    sor = [e for e in entries if e.rtype == "SOR"]
    with SystemStores(s, "LEADS") as leads, SystemStores(s, "NCIC") as ncic:
        assert leads.record_count() == 300 and ncic.record_count() == len(sor)
        for e in sor[:20]:
            assert leads.for_lno(e.lno).record_by_lno(e.lno) == e
            assert ncic.for_lno(e.lno).record_by_lno(e.lno) == e
        for p, store in leads.all():  # each record in its LNO's partition store only
            assert all(leads.partition_of(r.lno) == p for _, r in store.records_after(0))
    assert seed_stores(s, 300, 5) == entries  # again: harmless
    with SystemStores(s, "LEADS") as leads:
        assert leads.record_count() == 300


def test_seed_command_writes_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records.jsonl"
    home = tmp_path / "home"
    argv = ["seed", "--count", "40", "--seed", "3", "--home", str(home), "--out", str(out)]
    assert main(argv) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 40
    assert set(lines[0]) == {"lno", "rtype", "nic", "ori", "nam", "sex", "dob"}
    assert "40 records" in capsys.readouterr().err
    assert main(["seed", "--count", "40", "--seed", "3", "--home", str(home)]) == 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == lines


def test_seed_command_rejects_a_bad_share(tmp_path: Path) -> None:
    assert main(["seed", "--count", "1", "--sor-share", "2", "--home", str(tmp_path)]) == 2


@pytest.mark.slow
def test_seeding_100000_records_is_quick(tmp_path: Path) -> None:
    # A generous bound (about 2 s on the 2-core machine): catches an accidental
    # row-by-row commit, not a benchmark.
    started = time.perf_counter()
    entries = seed_stores(settings(tmp_path), 100_000, 11)
    assert len(entries) == 100_000
    assert time.perf_counter() - started < 30
