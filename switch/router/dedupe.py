"""The router's memory of `mid`s: the idempotency key of CONTRACT.md.

A resubmitted mid with the same content is a duplicate (answered with the original
reply); with different content it is a DUPLICATE_MID reject. The memory is rebuilt at
start-up from the compacted `<prefix>.mids` topic, written in the same Kafka
transaction as the request's manifest, so it survives restarts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import msgspec

from switch.contract.messages import AnyRequest, encode


class MidRecord(msgspec.Struct, kw_only=True, frozen=True):
    """Value of a `<prefix>.mids` record, keyed by mid."""

    fp: str  # content fingerprint
    cid: str
    ts: float  # epoch seconds when first seen


mid_record_decoder = msgspec.json.Decoder(MidRecord)


def fingerprint(request: AnyRequest) -> str:
    """The request's content, without where the reply goes or who typed it."""
    core = msgspec.structs.replace(request, reply_to=None, term=None)
    return hashlib.sha256(encode(core)).hexdigest()[:32]


@dataclass(frozen=True)
class Seen:
    verdict: Literal["new", "duplicate", "conflict"]
    cid: str | None = None


class MidMemory:
    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self._mids: dict[str, MidRecord] = {}

    def __len__(self) -> int:
        return len(self._mids)

    def check(self, mid: str, fp: str, now: float) -> Seen:
        rec = self._mids.get(mid)
        if rec is None or now - rec.ts > self.retention_s:
            return Seen("new")
        if rec.fp == fp:
            return Seen("duplicate", rec.cid)
        return Seen("conflict", rec.cid)

    def remember(self, mid: str, rec: MidRecord) -> None:
        self._mids[mid] = rec

    def forget(self, mid: str) -> None:
        self._mids.pop(mid, None)

    def expire(self, now: float) -> int:
        old = [m for m, r in self._mids.items() if now - r.ts > self.retention_s]
        for m in old:
            del self._mids[m]
        return len(old)
