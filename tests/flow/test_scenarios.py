"""The shipped scenarios (scenarios/*.toml) against a real switch on the real broker, and
`switch scenario run` as a user runs it: tickets, exit status, JUnit XML."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import msgspec
import pytest

from switch.scenario.model import load
from switch.scenario.report import StepResult
from switch.scenario.runner import Runner
from tests.flow.conftest import RunningSwitch

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))


async def test_every_shipped_scenario_passes_against_the_switch(switch: RunningSwitch) -> None:
    assert len(SHIPPED) >= 4
    seen: list[StepResult] = []
    results = await Runner(switch.settings, switch.records, on_step=seen.append).run(
        [load(p) for p in SHIPPED])
    failed = [f"{s.scenario} > {s.name}: {s.problems}" for r in results for s in r.steps if not s.ok]
    assert not failed, failed
    assert all(r.error is None for r in results), [r.error for r in results]
    assert len(seen) == sum(len(load(p).step) for p in SHIPPED)  # one ticket a step
    # The control scenario ran after the others, alone (its records differ from theirs).
    order = [s.scenario for s in seen]
    down = next(r.name for r in results if "NCIC out of service" in r.name)
    assert order[-4:] == [down] * 4


async def _cli(switch: RunningSwitch, tmp_path: Path, *args: str) -> tuple[int, str]:
    import asyncio

    records = tmp_path / "records.jsonl"
    records.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in switch.records))
    s = switch.settings
    env = {**os.environ, "SWITCH_HOME": str(s.home), "KAFKA_BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
           "SWITCH_TOPIC_PREFIX": s.topics.prefix, "SWITCH_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switch.cli.main", "scenario", "run", "--records", str(records), *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_a_failing_step_is_named_and_the_run_exits_1_with_junit(
    switch: RunningSwitch, tmp_path: Path
) -> None:
    scenario = tmp_path / "wrong.toml"
    scenario.write_text('''
name = "a wrong expectation"
[use]
rec = "SOR"
[[step]]
name = "query"
send = "QIM.${rec.ori}.LNO/${rec.lno}."
expect = { status = "COMPLETE" }
capture = { cid = "cid" }
[[step]]
name = "expects a photo that is not there"
send = "QIM.${rec.ori}.LNO/${rec.lno}."
expect = { status = "PENDING", images = ["LEADS"], fields = { cid = "${cid}" } }
''')
    junit = tmp_path / "results.xml"
    code, out = await _cli(switch, tmp_path, str(scenario), "--junit", str(junit))
    assert code == 1, out
    assert "[OK]" in out and "1. query" in out
    assert "[FAIL]" in out and "2. expects a photo that is not there" in out
    assert "status COMPLETE, expected PENDING" in out
    assert "images from [], expected ['LEADS']" in out
    assert "cid '" in out  # a captured value used later: the second query has its own cid
    assert "0/1 scenarios passed, 1/2 steps" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert cases[0].find("failure") is None and cases[1].find("failure") is not None


async def test_the_cli_passes_a_good_scenario_with_exit_0(switch: RunningSwitch, tmp_path: Path) -> None:
    code, out = await _cli(switch, tmp_path, str(ROOT / "scenarios" / "bulletin-voay.toml"))
    assert code == 0, out
    assert out.count("[OK]") == 5 and "1/1 scenarios passed, 5/5 steps" in out

