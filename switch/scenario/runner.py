"""Running scenarios against a switch: the I/O around `model`, `template` and `expect`.

Steps of one scenario run in order. Independent scenarios run concurrently, each on
records of its own (picked fresh: no photo on file yet, found by quiet queries, as the
demo does). A scenario with a `ctl` step changes the switch for everyone, so those run
one at a time, after the others.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from switch.client import SwitchClient, new_mid
from switch.contract.internal import RecordEntry
from switch.contract.messages import Reply, control_decoder
from switch.contract.textform import TextFormError, text_to_dict
from switch.demo import mugshot
from switch.scenario.expect import MISSING, differences, lookup
from switch.scenario.model import Scenario, Step
from switch.scenario.report import ScenarioResult, StepResult
from switch.scenario.template import UnknownVariable, record_vars, substitute, substitute_all
from switch.settings import Settings

MAX_PROBES = 200
CONTROL_SETTLE_S = 1.0  # a service applies a control on its next poll


class RecordPicker:
    """Hands out distinct records with no image on file, per record type."""

    def __init__(self, client: SwitchClient, records: list[RecordEntry], settings: Settings) -> None:
        self.client = client
        self.records = records
        self.settings = settings
        self.taken: set[str] = set()
        self.lock = asyncio.Lock()

    async def take(self, rtype: str) -> RecordEntry:
        async with self.lock:
            probes = 0
            for rec in self.records:
                if rec.rtype != rtype or rec.lno in self.taken:
                    continue
                self.taken.add(rec.lno)
                probes += 1
                if probes > MAX_PROBES:
                    break
                reply = await self.client.request(
                    {"mid": new_mid("probe"), "mke": "QIM", "ori": rec.ori, "lno": rec.lno},
                    timeout=max(30.0, self.settings.deadline_s * 3))
                if reply.status == "COMPLETE" and not reply.images:
                    return rec
        raise LookupError(f"no {rtype} record without a photo left among the records given; "
                          "seed more (switch seed) or use a fresh home")


@dataclass
class _Sent:
    mid: str
    cid: str | None


@dataclass
class _Run:
    scenario: Scenario
    env: dict[str, str]
    today: date
    sent: dict[str, _Sent] = field(default_factory=dict)


def _reply_json(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(reply)
    return out


def _summary(reply: Reply) -> str:
    return f"{reply.status}{' supplement' if reply.supplement else ''} cid {reply.cid[:12]}"


class Runner:
    def __init__(self, settings: Settings, records: list[RecordEntry], *,
                 on_step: Callable[[StepResult], None] | None = None,
                 timeout_s: float | None = None) -> None:
        self.settings = settings
        self.records = records
        self.on_step = on_step or (lambda _: None)
        self.timeout_s = timeout_s or max(30.0, settings.deadline_s * 3)

    async def run(self, scenarios: list[Scenario]) -> list[ScenarioResult]:
        results: dict[int, ScenarioResult] = {}
        async with SwitchClient(self.settings) as client:
            picker = RecordPicker(client, self.records, self.settings)
            independent = [i for i, s in enumerate(scenarios) if not _controls(s)]
            done = await asyncio.gather(*(self._one(client, picker, scenarios[i])
                                          for i in independent))
            results.update(zip(independent, done, strict=True))
            for i, s in enumerate(scenarios):
                if i not in results:
                    results[i] = await self._one(client, picker, s)
        return [results[i] for i in range(len(scenarios))]

    async def _one(self, client: SwitchClient, picker: RecordPicker, scenario: Scenario) -> ScenarioResult:
        result = ScenarioResult(scenario.name, scenario.path)
        t0 = time.monotonic()
        today = date.today()
        env = {"uid": uuid.uuid4().hex[:12], "replies": self.settings.topics.replies}
        try:
            for var, rtype in scenario.use.items():
                env.update(record_vars(var, msgspec.structs.asdict(await picker.take(rtype))))
            for var, value in scenario.vars.items():
                env[var] = substitute(value, env, today=today)
        except (LookupError, UnknownVariable) as exc:
            result.error = str(exc)
            result.seconds = time.monotonic() - t0
            return result
        run = _Run(scenario, env, today)
        for index, step in enumerate(scenario.step, 1):
            r = await self._step(client, run, index, step)
            result.steps.append(r)
            self.on_step(r)
        result.seconds = time.monotonic() - t0
        return result

    async def _step(self, client: SwitchClient, run: _Run, index: int, step: Step) -> StepResult:
        name = step.name or step.send or step.kind()
        r = StepResult(run.scenario.name, index, name, ok=False, ms=0.0)
        t0 = time.monotonic()
        try:
            kind = step.kind()
            if kind == "ctl":
                assert step.ctl is not None
                raw = substitute_all(msgspec.to_builtins(step.ctl), run.env, today=run.today)
                control = control_decoder.decode(msgspec.json.encode(
                    {k: v for k, v in raw.items() if v is not None}))
                await client.control(control)
                await asyncio.sleep(CONTROL_SETTLE_S)
                r.summary = f"ctl {control.system} {control.mode or ''}".strip()
                r.ok = True
            elif kind == "sleep_ms":
                await asyncio.sleep((step.sleep_ms or 0) / 1000)
                r.ok = True
            else:
                reply = await (self._supplement(client, run, step) if kind == "supplement_of"
                               else self._send(client, run, step))
                r.ms = (time.monotonic() - t0) * 1000
                self._check(run, step, reply, r)
        except (UnknownVariable, TextFormError, msgspec.ValidationError, OSError) as exc:
            r.problems.append(str(exc))
        except TimeoutError:
            r.problems.append(f"no reply within {self._timeout(step):.0f} s")
        r.ms = r.ms or (time.monotonic() - t0) * 1000
        return r

    def _timeout(self, step: Step) -> float:
        return step.timeout_s or self.timeout_s

    async def _send(self, client: SwitchClient, run: _Run, step: Step) -> Reply:
        env, today = run.env, run.today
        mid = substitute(step.mid, env, today=today) if step.mid else new_mid("scn")
        reply_to = substitute(step.reply_to, env, today=today) if step.reply_to else None
        image = _image(step.image, Path(run.scenario.path).parent) if step.image else None
        if step.send is not None:
            request = text_to_dict(substitute(step.send, env, today=today), image=image, mid=mid,
                                   reply_to=reply_to)
        else:
            request = substitute_all(dict(step.request or {}), env, today=today)
            request.setdefault("mid", mid)
            if reply_to:
                request["reply_to"] = reply_to
            if image is not None:
                request["image"] = base64.b64encode(image).decode()
        mid = str(request.get("mid"))
        before = len([x for x in client.replies(mid) if not x.supplement])
        key = substitute(step.key, env, today=today) if step.key else None
        await client.send(request, key=key)
        replies = await client.wait(mid, count=before + 1, timeout=self._timeout(step),
                                    predicate=lambda x: not x.supplement)
        reply = replies[before]
        if step.name:
            run.sent[step.name] = _Sent(mid, reply.cid)
        return reply

    async def _supplement(self, client: SwitchClient, run: _Run, step: Step) -> Reply:
        assert step.supplement_of is not None
        sent = run.sent.get(step.supplement_of)
        if sent is None:
            raise UnknownVariable(f"reply of step {step.supplement_of!r}")
        replies = await client.wait(sent.mid, timeout=self._timeout(step),
                                    predicate=lambda x: x.supplement and x.cid == sent.cid)
        return replies[0]

    def _check(self, run: _Run, step: Step, reply: Reply, r: StepResult) -> None:
        data = _reply_json(reply)
        r.summary = _summary(reply)
        if step.expect is not None:
            exp = msgspec.convert(substitute_all(msgspec.to_builtins(step.expect), run.env,
                                                 today=run.today), type(step.expect))
            r.problems.extend(differences(exp, data, r.ms))
        for var, path in step.capture.items():
            value = lookup(data, path)
            if value is MISSING or value is None:
                r.problems.append(f"capture {var}: nothing at {path}")
            else:
                run.env[var] = str(value)
        r.ok = not r.problems


def _controls(s: Scenario) -> bool:
    return any(step.ctl is not None for step in s.step)


def _image(spec: str, base: Path) -> bytes:
    """`@mugshot` (a generated camera photo; `@mugshot:N` another shade) or a file."""
    if spec == "@mugshot" or spec.startswith("@mugshot:"):
        shade = int(spec.partition(":")[2] or 0)
        return mugshot(shade=shade)
    path = Path(spec)
    return (path if path.is_absolute() else base / path).read_bytes()

