"""What a scenario run prints (a ticket a step) and writes for CI systems (JUnit XML). Pure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class StepResult:
    scenario: str
    index: int
    name: str
    ok: bool
    ms: float
    problems: list[str] = field(default_factory=list)
    summary: str = ""  # e.g. "COMPLETE cid 3f2a..." or "ctl NCIC down_forward"


@dataclass
class ScenarioResult:
    name: str
    path: str
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the scenario could not run at all (no records ...)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.ok for s in self.steps)


def ticket(r: StepResult) -> str:
    mark = "[OK]  " if r.ok else "[FAIL]"
    head = f"{mark} {r.ms:6.0f} ms  {r.scenario} > {r.index}. {r.name}"
    if r.summary:
        head += f"  ({r.summary})"
    return head + "".join(f"\n         - {p}" for p in r.problems)


def summary(results: list[ScenarioResult]) -> str:
    steps = [s for r in results for s in r.steps]
    failed = [s for s in steps if not s.ok]
    broken = [r for r in results if r.error]
    scen_ok = sum(r.ok for r in results)
    line = (f"{scen_ok}/{len(results)} scenarios passed, {len(steps) - len(failed)}/{len(steps)} "
            "steps")
    if broken:
        line += f"; {len(broken)} could not run"
    return line


def junit_xml(results: list[ScenarioResult]) -> bytes:
    """JUnit XML: a test suite a scenario, a test case a step."""
    suites = ET.Element("testsuites", name="switch scenarios")
    for r in results:
        failures = sum(not s.ok for s in r.steps) + (1 if r.error else 0)
        suite = ET.SubElement(suites, "testsuite", name=r.name, tests=str(len(r.steps) or 1),
                              failures=str(failures), errors="0", time=f"{r.seconds:.3f}",
                              file=r.path)
        if r.error:
            case = ET.SubElement(suite, "testcase", classname=r.name, name="set-up", time="0")
            ET.SubElement(case, "failure", message=r.error).text = r.error
        for s in r.steps:
            case = ET.SubElement(suite, "testcase", classname=r.name, name=f"{s.index}. {s.name}",
                                 time=f"{s.ms / 1000:.3f}")
            if not s.ok:
                text = "\n".join(s.problems)
                ET.SubElement(case, "failure", message=s.problems[0] if s.problems else "failed"
                              ).text = text
    ET.indent(suites)
    data: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
