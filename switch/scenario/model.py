"""The scenario file format (TOML), as msgspec types: decoding names the bad field.

    name = "enter and re-query a sex-offender photo"
    [use]                       # records picked for this run: fresh, no photo on file yet
    sor = "SOR"
    [[step]]
    name = "enter"
    send = "EIM.${sor.ori}.LNO/${sor.lno}.IMT/M.DOI/${today}."
    image = "@mugshot"          # a generated camera photo, or a file next to the scenario
    expect = { status = "COMPLETE", legs = { LEADS = { status = "ACK" } } }
    capture = { imn = "legs.LEADS.imn" }
    [[step]]
    ctl = { system = "NCIC", mode = "down_forward" }

The full reference, with every key, is docs/SCENARIOS.md; `schemas/scenario.schema.json`
is its JSON Schema (editors validate TOML against it with Taplo or Even Better TOML).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec

from switch.errors import SwitchError

RECORD_TYPES = ("SOR", "VOAY")


class ScenarioError(SwitchError):
    """A scenario file that cannot be read: the message names the file and the field."""


class LegExpect(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: str | None = None
    code: str | None = None
    text: str | None = None  # a regular expression searched in the leg's text


class Expect(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: str | None = None  # COMPLETE | PARTIAL | PENDING | REJECTED
    legs: dict[str, LegExpect] = {}
    codes: list[str] = []  # switch-level reject codes that must all be in `errors`
    duplicate: bool | None = None
    supplement: bool | None = None
    fields: dict[str, Any] = {}  # dotted path in the reply -> value it must equal
    present: list[str] = []  # dotted paths that must hold a value (not null, not empty)
    absent: list[str] = []  # dotted paths that must be null, empty or missing
    text: list[str] = []  # regular expressions, each found in the reply's text
    images: list[str] | None = None  # the systems images came from (QIM), in any order
    within_ms: float | None = None  # latency bound, request sent to reply read


class Control(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    system: str
    mode: str | None = None
    latency_ms: dict[str, float] | None = None
    reject_rate: float | None = None


class Step(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | None = None
    send: str | None = None  # the text form, e.g. "QIM.IL0160000.LNO/X17A4394."
    request: dict[str, Any] | None = None  # or the JSON object as it goes on the wire
    image: str | None = None  # "@mugshot", "@mugshot:N" (another shade), or a file path
    mid: str | None = None  # default: a new mid per step (set one to test resubmission)
    key: str | None = None  # the Kafka key (default: the request's ORI)
    reply_to: str | None = None
    expect: Expect | None = None
    capture: dict[str, str] = {}  # variable -> dotted path in the reply
    supplement_of: str | None = None  # wait for the supplement of an earlier step (its name)
    ctl: Control | None = None
    sleep_ms: float | None = None
    timeout_s: float | None = None

    def kind(self) -> str:
        actions = [k for k, v in (("send", self.send), ("request", self.request),
                                  ("supplement_of", self.supplement_of), ("ctl", self.ctl),
                                  ("sleep_ms", self.sleep_ms)) if v is not None]
        if len(actions) != 1:
            raise ValueError("a step needs exactly one of send, request, supplement_of, ctl, "
                             f"sleep_ms (has {', '.join(actions) or 'none'})")
        return "send" if actions[0] == "request" else actions[0]


class Scenario(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    use: dict[str, str] = {}  # variable -> record type (SOR or VOAY), picked per run
    vars: dict[str, str] = {}
    step: list[Step] = []
    path: str = ""  # set by `load`, not read from the file


def load(path: Path) -> Scenario:
    """Read and check one scenario file; raise ScenarioError naming what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not TOML: {exc}") from None
    return parse(raw, str(path))


def parse(raw: dict[str, Any], where: str) -> Scenario:
    try:
        scenario = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if not scenario.step:
        raise ScenarioError(f"{where}: no [[step]]")
    names: set[str] = set()
    for i, step in enumerate(scenario.step, 1):
        label = f"{where}: step {i}" + (f" ({step.name})" if step.name else "")
        try:
            kind = step.kind()
        except ValueError as exc:
            raise ScenarioError(f"{label}: {exc}") from None
        if step.supplement_of is not None and step.supplement_of not in names:
            raise ScenarioError(f"{label}: supplement_of {step.supplement_of!r} names no earlier step")
        if kind != "send" and (step.image or step.mid or step.key or step.reply_to):
            raise ScenarioError(f"{label}: image, mid, key and reply_to belong to a send step")
        if step.name:
            if step.name in names:
                raise ScenarioError(f"{label}: two steps named {step.name!r}")
            names.add(step.name)
    for var, rtype in scenario.use.items():
        if rtype not in RECORD_TYPES:
            raise ScenarioError(f"{where}: use.{var} = {rtype!r}: one of {', '.join(RECORD_TYPES)}")
    return msgspec.structs.replace(scenario, path=where)


def json_schema() -> dict[str, Any]:
    schema = msgspec.json.schema(Scenario)
    defs = schema.get("$defs", {})
    defs.get("Scenario", {}).get("properties", {}).pop("path", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "switch scenario file (TOML)", **schema}
