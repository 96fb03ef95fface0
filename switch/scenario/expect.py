"""Checking a reply against a step's expectation (pure): a list of what differed.

Paths are dotted, through objects and lists: `legs.NCIC.code`, `images.0.imn`, `errors.0.field`.
"""

from __future__ import annotations

import re
from typing import Any

from switch.scenario.model import Expect

MISSING = object()


def lookup(obj: Any, path: str) -> Any:
    """The value at dotted `path` in a JSON-like value, or MISSING."""
    node = obj
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part, MISSING)
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return MISSING
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def _empty(value: Any) -> bool:
    return value is MISSING or value is None or value == "" or value == [] or value == {}


def _show(value: Any) -> str:
    return "missing" if value is MISSING else repr(value)


def differences(exp: Expect, reply: dict[str, Any], elapsed_ms: float) -> list[str]:
    """What in `reply` (a reply as JSON) does not match `exp`; empty when all does."""
    out: list[str] = []
    if exp.status is not None and reply.get("status") != exp.status:
        out.append(f"status {reply.get('status')}, expected {exp.status}")
    legs = reply.get("legs") or {}
    for system, want in exp.legs.items():
        leg = legs.get(system)
        if leg is None:
            out.append(f"{system}: no leg, expected one")
            continue
        if want.status is not None and leg.get("status") != want.status:
            out.append(f"{system} {leg.get('status')}, expected {want.status}")
        if want.code is not None and leg.get("code") != want.code:
            out.append(f"{system} code {leg.get('code')!r}, expected {want.code!r}")
        if want.text is not None and not re.search(want.text, leg.get("text") or ""):
            out.append(f"{system} text {leg.get('text')!r} does not match /{want.text}/")
    codes = [e.get("code") for e in reply.get("errors") or []]
    for code in exp.codes:
        if code not in codes:
            out.append(f"no {code} among the errors {codes}")
    for flag in ("duplicate", "supplement"):
        want_flag = getattr(exp, flag)
        if want_flag is not None and bool(reply.get(flag)) != want_flag:
            out.append(f"{flag} {bool(reply.get(flag))}, expected {want_flag}")
    for path, want_value in exp.fields.items():
        got = lookup(reply, path)
        if got is MISSING or got != want_value:
            out.append(f"{path} {_show(got)}, expected {want_value!r}")
    for path in exp.present:
        if _empty(lookup(reply, path)):
            out.append(f"{path} is empty, expected a value")
    for path in exp.absent:
        got = lookup(reply, path)
        if not _empty(got):
            out.append(f"{path} is {_show(got)}, expected none")
    text = reply.get("text") or ""
    for pattern in exp.text:
        if not re.search(pattern, text):
            out.append(f"text does not match /{pattern}/")
    if exp.images is not None:
        got_systems = sorted(i.get("system") for i in reply.get("images") or [])
        if got_systems != sorted(exp.images):
            out.append(f"images from {got_systems}, expected {sorted(exp.images)}")
    if exp.within_ms is not None and elapsed_ms > exp.within_ms:
        out.append(f"took {elapsed_ms:.0f} ms, expected within {exp.within_ms:.0f} ms")
    return out
