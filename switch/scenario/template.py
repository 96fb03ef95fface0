"""`${...}` in a scenario's strings (pure).

- `${name}`: a value from `[vars]` or captured by an earlier step (`capture`);
- `${sor.lno}`, `${sor.ori}` ...: a field of a record picked for the run (`[use]`):
  lno, ori, nic, nam, sex, dob, rtype;
- `${today}`, `${date:-3}`: a date (CCYYMMDD), today or N days from it;
- `${uid}`: unique to this run of the scenario (for mids that must not repeat between runs);
- `${replies}`: the switch's replies topic (a `reply_to` must start with it).
An unknown name is an error that names it, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from switch.errors import SwitchError

_VAR = re.compile(r"\$\{([^}]*)\}")


class UnknownVariable(SwitchError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown variable ${{{name}}}")


def substitute(text: str, env: Mapping[str, str], *, today: date) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name in env:
            return env[name]
        if name == "today":
            return today.strftime("%Y%m%d")
        if name.startswith("date:"):
            try:
                days = int(name[5:])
            except ValueError:
                raise UnknownVariable(name) from None
            return (today + timedelta(days=days)).strftime("%Y%m%d")
        raise UnknownVariable(name)

    return _VAR.sub(one, text)


def substitute_all(value: Any, env: Mapping[str, str], *, today: date) -> Any:
    """The same, through the strings of a JSON-like value (a request table, expectations)."""
    if isinstance(value, str):
        return substitute(value, env, today=today)
    if isinstance(value, list):
        return [substitute_all(v, env, today=today) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, env, today=today) for k, v in value.items()}
    return value


def record_vars(name: str, record: Mapping[str, Any]) -> dict[str, str]:
    return {f"{name}.{k}": str(v) for k, v in record.items() if v is not None}
