"""Scenario files without a broker: reading them, variables, checking replies, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest

from switch.scenario.expect import MISSING, differences, lookup
from switch.scenario.model import Expect, LegExpect, ScenarioError, load, parse
from switch.scenario.report import ScenarioResult, StepResult, junit_xml, summary, ticket
from switch.scenario.template import UnknownVariable, substitute, substitute_all

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 3)

REPLY = {
    "mid": "m1", "cid": "c1", "mke": "EIM", "ori": "IL0160000", "status": "PENDING",
    "duplicate": False, "supplement": False,
    "legs": {"LEADS": {"status": "ACK", "code": "", "text": "LEADS ACKNOWLEDGMENT EIM", "imn": "I1"},
             "NCIC": {"status": "QUEUED", "code": "", "text": "NCIC QUEUED - DOWN", "imn": None}},
    "errors": [], "images": [{"system": "LEADS", "imn": "I1"}],
    "text": "LEADS ACKNOWLEDGMENT EIM ORI/IL0160000\nNCIC  QUEUED", "ts": "x",
}


def test_every_shipped_scenario_reads() -> None:
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        assert load(f).step


@pytest.mark.parametrize(("body", "error"), [
    ('name = "x"', "no [[step]]"),
    ('name = "x"\n[[step]]\nsend = "QIM.IL0160000.LNO/X17A4394."\nctl = { system = "NCIC" }',
     "exactly one of send, request, supplement_of, ctl, sleep_ms (has send, ctl)"),
    ('name = "x"\n[[step]]\nsupplement_of = "later"', "names no earlier step"),
    ('name = "x"\n[[step]]\nsend = "Q."\nexpect = { stauts = "COMPLETE" }', "stauts"),
    ('name = "x"\n[use]\nr = "SEX"\n[[step]]\nsleep_ms = 1', "one of SOR, VOAY"),
    ('name = "x"\n[[step]]\nname = "a"\nsleep_ms = 1\n[[step]]\nname = "a"\nsleep_ms = 1',
     "two steps named 'a'"),
    ('name = "x"\n[[step]]\nctl = { system = "NCIC" }\nimage = "@mugshot"', "belong to a send step"),
])
def test_a_bad_file_is_refused_naming_what_is_wrong(tmp_path: Path, body: str, error: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(body)
    with pytest.raises(ScenarioError) as exc:
        load(f)
    assert error in str(exc.value) and str(f) in str(exc.value)


def test_not_toml_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("name = ")
    with pytest.raises(ScenarioError, match="not TOML"):
        load(f)


def test_variables() -> None:
    env = {"rec.lno": "X17A4394", "imn": "I100000001"}
    assert substitute("QIM.LNO/${rec.lno}.IMN/${ imn }.", env, today=TODAY) == \
        "QIM.LNO/X17A4394.IMN/I100000001."
    assert substitute("${today} ${date:-3} ${date:+1}", env, today=TODAY) == "20261203 20261130 20261204"
    assert substitute_all({"a": ["${imn}", 3]}, env, today=TODAY) == {"a": ["I100000001", 3]}
    with pytest.raises(UnknownVariable, match=r"\$\{nope\}"):
        substitute("${nope}", env, today=TODAY)
    with pytest.raises(UnknownVariable):
        substitute("${date:x}", env, today=TODAY)


def test_lookup_goes_through_objects_and_lists() -> None:
    assert lookup(REPLY, "legs.LEADS.imn") == "I1"
    assert lookup(REPLY, "images.0.system") == "LEADS"
    assert lookup(REPLY, "images.5.system") is MISSING
    assert lookup(REPLY, "legs.FBI.status") is MISSING


def test_a_matching_expectation_has_no_differences() -> None:
    exp = Expect(status="PENDING", legs={"LEADS": LegExpect(status="ACK", text="ACKNOWLEDGMENT"),
                                         "NCIC": LegExpect(status="QUEUED")},
                 fields={"ori": "IL0160000", "legs.LEADS.imn": "I1"}, present=["cid"],
                 absent=["errors", "legs.NCIC.imn", "nothing.here"], text=["ORI/IL0160000"],
                 images=["LEADS"], duplicate=False, within_ms=100)
    assert differences(exp, REPLY, 50) == []


def test_each_difference_is_named() -> None:
    exp = Expect(status="COMPLETE", legs={"NCIC": LegExpect(status="ACK", code="X"),
                                          "FBI": LegExpect(status="ACK")},
                 codes=["INVALID_FIELD"], fields={"ori": "IL0000000"}, present=["legs.NCIC.imn"],
                 absent=["cid"], text=["NEVER"], images=["LEADS", "NCIC"], supplement=True,
                 within_ms=10)
    got = differences(exp, REPLY, 50)
    assert got == [
        "status PENDING, expected COMPLETE",
        "NCIC QUEUED, expected ACK",
        "NCIC code '', expected 'X'",
        "FBI: no leg, expected one",
        "no INVALID_FIELD among the errors []",
        "supplement False, expected True",
        "ori 'IL0160000', expected 'IL0000000'",
        "legs.NCIC.imn is empty, expected a value",
        "cid is 'c1', expected none",
        "text does not match /NEVER/",
        "images from ['LEADS'], expected ['LEADS', 'NCIC']",
        "took 50 ms, expected within 10 ms",
    ]


def test_tickets_summary_and_junit() -> None:
    ok = StepResult("s", 1, "query", True, 87.4, summary="COMPLETE cid abc")
    bad = StepResult("s", 2, "enter", False, 3012, ["status PENDING, expected COMPLETE"])
    assert ticket(ok) == "[OK]       87 ms  s > 1. query  (COMPLETE cid abc)"
    assert ticket(bad).endswith("s > 2. enter\n         - status PENDING, expected COMPLETE")
    results = [ScenarioResult("s", "s.toml", [ok, bad], 3.1), ScenarioResult("t", "t.toml", error="no SOR")]
    assert summary(results) == "0/2 scenarios passed, 1/2 steps; 1 could not run"
    root = ET.fromstring(junit_xml(results))
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1", "1"]
    assert suites[0].findall("testcase")[1].find("failure").get("message") == (  # type: ignore[union-attr]
        "status PENDING, expected COMPLETE")


def test_parse_keeps_where_it_came_from() -> None:
    s = parse({"name": "n", "step": [{"sleep_ms": 1}]}, "here.toml")
    assert s.path == "here.toml" and s.step[0].kind() == "sleep_ms"
