"""Which replies the console shows. Pure: values in, a predicate out.

Each filter holds a set of accepted values; an empty set accepts everything. Values
are given as they would be typed (`--status pending,partial`) and normalised here, so
a typo is refused at start-up with the accepted values named, not silently matching
nothing for hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from switch.contract.messages import Reply
from switch.errors import SwitchError

STATUSES: tuple[str, ...] = ("COMPLETE", "PARTIAL", "PENDING", "REJECTED")
MKES: tuple[str, ...] = ("EIM", "MII", "XIM", "QIM")
_ORI = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")


class FilterError(SwitchError):
    """A filter value that can never match; the message names what would."""


def _split(values: Iterable[str] | None) -> list[str]:
    """`["a,b", "c"]` -> `["A", "B", "C"]`: repeatable and comma-separated flags both work."""
    out: list[str] = []
    for value in values or ():
        out += [v.strip().upper() for v in value.split(",") if v.strip()]
    return out


def parse_statuses(values: Iterable[str] | None) -> frozenset[str]:
    got = _split(values)
    bad = [v for v in got if v not in STATUSES]
    if bad:
        raise FilterError(f"--status {', '.join(bad)}: expected one of {', '.join(STATUSES)}")
    return frozenset(got)


def parse_mkes(values: Iterable[str] | None) -> frozenset[str]:
    got = _split(values)
    bad = [v for v in got if v not in MKES]
    if bad:
        raise FilterError(f"--mke {', '.join(bad)}: expected one of {', '.join(MKES)}")
    return frozenset(got)


def parse_oris(values: Iterable[str] | None) -> frozenset[str]:
    got = _split(values)
    bad = [v for v in got if not _ORI.fullmatch(v)]
    if bad:
        raise FilterError(
            f"--ori {', '.join(bad)}: an ORI is 9 characters, a 2-letter state code and "
            "7 letters or digits, e.g. IL0160000"
        )
    return frozenset(got)


@dataclass(frozen=True, slots=True)
class ReplyFilter:
    """Accept a reply when it matches every non-empty set (AND across, OR within)."""

    oris: frozenset[str] = frozenset()
    mkes: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        *,
        ori: Iterable[str] | None = None,
        mke: Iterable[str] | None = None,
        status: Iterable[str] | None = None,
    ) -> ReplyFilter:
        """From command-line values; raises FilterError naming the bad value."""
        return cls(oris=parse_oris(ori), mkes=parse_mkes(mke), statuses=parse_statuses(status))

    def __call__(self, reply: Reply) -> bool:
        return matches(self, reply)

    def describe(self) -> str:
        parts = [
            f"{name} {','.join(sorted(values))}"
            for name, values in (("ori", self.oris), ("mke", self.mkes), ("status", self.statuses))
            if values
        ]
        return "; ".join(parts) if parts else "all replies"


def matches(f: ReplyFilter, reply: Reply) -> bool:
    """True when `reply` passes `f`. A reply without ori/mke fails a filter on that field."""
    if f.oris and (reply.ori or "").upper() not in f.oris:
        return False
    if f.mkes and (reply.mke or "").upper() not in f.mkes:
        return False
    return not (f.statuses and reply.status not in f.statuses)
