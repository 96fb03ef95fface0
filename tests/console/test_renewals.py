"""`switch report renewals`: a seeded LEADS store where a few photos were entered, some
with old DOIs, through the services' own rules (no Kafka)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.renewals import cutoff_for, open_read_only, renewals
from services.rules import apply_request, renewal_due
from services.seeding import seed_stores
from services.store import Store
from services.stores import SystemStores
from switch.cli import report
from switch.cli.main import build_parser
from switch.contract.internal import LegRequest, RecordEntry
from switch.contract.messages import CancelImage, EnterImage
from switch.settings import Settings

TODAY = date(2025, 1, 10)
NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
# 365 days before TODAY is 20240111: a photo dated then is not yet due, one a day older is.
DOIS = {"old": "20230216", "edge_due": "20240110", "edge_ok": "20240111", "fresh": "20241201"}


def enter(store: Store, rec: RecordEntry, imt: str, doi: str, n: int) -> str:
    req = EnterImage(mid=f"m{n}", ori=rec.ori, lno=rec.lno, imt=imt, doi=doi,
                     image=f"jpeg {n}".encode())
    applied = apply_request(store, LegRequest(cid=f"c{n}", system="LEADS", deadline=0.0, request=req,
                                              rtype=rec.rtype, nic=rec.nic), now=NOW)
    assert applied.answer.leg.status == "ACK", applied.answer.leg.text
    assert applied.imn is not None
    return applied.imn


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Settings, list[RecordEntry], dict[str, RecordEntry]]:
    settings = Settings.from_env({}, home=tmp_path / "home", bootstrap_servers="127.0.0.1:1")
    records = seed_stores(settings, 30, 5)
    with_photo: dict[str, RecordEntry] = {}
    with SystemStores(settings, "LEADS") as stores:
        for n, (name, doi) in enumerate(DOIS.items()):
            with_photo[name] = records[n]
            enter(stores.for_lno(records[n].lno), records[n], "M", doi, n)
        # A signature alone is no mugshot; a cancelled old mugshot leaves none.
        enter(stores.for_lno(records[4].lno), records[4], "S", DOIS["fresh"], 4)
        imn = enter(stores.for_lno(records[5].lno), records[5], "M", DOIS["old"], 5)
        cancel = CancelImage(mid="x", ori=records[5].ori, imn=imn, doc="20250101")
        apply_request(stores.for_lno(records[5].lno),
                      LegRequest(cid="c-x", system="LEADS", deadline=0.0, request=cancel), now=NOW)
    return settings, records, with_photo


def args_for(settings: Settings, *argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["report", "renewals", *argv, "--home", str(settings.home),
                                      "--bootstrap-servers", "127.0.0.1:1"])


def test_missing_and_due_are_listed_current_ones_are_not(seeded) -> None:  # type: ignore[no-untyped-def]
    settings, records, with_photo = seeded
    db = open_read_only(settings.store_paths("LEADS"))
    try:
        rep = renewals(db, today=TODAY)
    finally:
        db.close()
    assert rep.cutoff == cutoff_for(TODAY, 365) == "20240111"
    by_lno = {r.lno: r for r in rep.items}
    assert by_lno[with_photo["old"].lno].doi == "20230216"
    assert by_lno[with_photo["old"].lno].days_old == 694
    assert by_lno[with_photo["edge_due"].lno].reason == "DUE"
    assert with_photo["edge_ok"].lno not in by_lno and with_photo["fresh"].lno not in by_lno
    assert by_lno[records[4].lno].reason == "NO PHOTO"  # signature only
    assert by_lno[records[5].lno].reason == "NO PHOTO"  # mugshot cancelled
    assert (rep.records, rep.no_photo, rep.due, rep.current) == (30, 26, 2, 2)
    # The same cut as the services' renewal_due (what a QIM marks).
    for name, doi in DOIS.items():
        assert renewal_due(doi, TODAY) == (with_photo[name].lno in by_lno), name


def test_text_report_with_ori_filter(seeded) -> None:  # type: ignore[no-untyped-def]
    settings, _, with_photo = seeded
    rec = with_photo["old"]
    out, err = io.StringIO(), io.StringIO()
    assert report.execute(args_for(settings, "--ori", rec.ori.lower()), out=out, err=err, today=TODAY) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Mugshots missing or due for renewal, LEADS store, as of 2025-01-10 "
                               "(due: DOI before 20240111, more than 365 days old), ORI " + rec.ori)
    row = next(line for line in lines if line.startswith(rec.lno))
    assert row.split()[:3] == [rec.lno, rec.rtype, rec.ori]
    assert (rec.nam or "") in row and "DOI/20230216 IMN/" in row
    assert "DUE (694 days old)" in row
    assert all(line.split()[2] == rec.ori for line in lines[2:-1])
    assert lines[-1].startswith("switch report renewals: ")


def test_json_report_and_only_filter(seeded) -> None:  # type: ignore[no-untyped-def]
    settings, _, with_photo = seeded
    out = io.StringIO()
    assert report.execute(args_for(settings, "--json", "--only", "due", "--today", "20250110"),
                          out=out, err=io.StringIO()) == 0
    data = json.loads(out.getvalue())
    assert data["summary"] == {"records": 30, "no_photo": 26, "due": 2, "current": 2}
    assert {r["lno"] for r in data["records"]} == {with_photo["old"].lno, with_photo["edge_due"].lno}
    assert {r["reason"] for r in data["records"]} == {"DUE"}


def test_no_store_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "empty", bootstrap_servers="127.0.0.1:1")
    err = io.StringIO()
    assert report.execute(args_for(settings), out=io.StringIO(), err=err) == 2
    assert "no store at" in err.getvalue() and "switch seed" in err.getvalue()
    assert not (tmp_path / "empty" / "stores").exists()  # reading never creates a store
    for argv in (("--ori", "IL01"), ("--today", "2025-01-10")):
        err = io.StringIO()
        assert report.execute(args_for(settings, *argv), out=io.StringIO(), err=err) == 2
        assert err.getvalue().count("\n") == 1
