"""A transaction's state -> the Reply the operator sees (pure)."""

from __future__ import annotations

from switch.contract.internal import LegAnswer, Manifest
from switch.contract.messages import (
    QUEUED,
    SKIPPED,
    SYSTEMS,
    TIMEOUT,
    ImageRecord,
    Leg,
    Reply,
)
from switch.contract.replies import leg_line, now_rfc3339, overall_status, system_line


def missing_leg(system: str, status: str, manifest: Manifest) -> Leg:
    secs = manifest.timeout_s
    if status == QUEUED:
        text = (f"QUEUED - {system} DID NOT ANSWER IN {secs:g} S; THE {manifest.mke} "
                f"STAYS QUEUED AND WILL BE APPLIED WHEN {system} RETURNS")
    else:
        text = f"TIMEOUT - {system} DID NOT ANSWER THE {manifest.mke} IN {secs:g} S"
    return Leg(status=status, text=system_line(system, text))  # type: ignore[arg-type]


def build_reply(
    manifest: Manifest,
    answers: dict[str, LegAnswer],
    missing: dict[str, str],
    *,
    supplement: bool = False,
    duplicate: bool = False,
) -> Reply:
    legs: dict[str, Leg] = {}
    images: list[ImageRecord] = []
    for system in SYSTEMS:
        if system in manifest.skipped:
            legs[system] = Leg(status=SKIPPED, text=system_line(system, manifest.skipped[system]))
        elif system in answers:
            a = answers[system]
            leg = a.leg
            if leg.ms is None and a.answered:
                leg = Leg(status=leg.status, code=leg.code, text=leg.text, imn=leg.imn,
                          ms=round((a.answered - manifest.created) * 1000, 1))
            legs[system] = leg
            images.extend(a.images)
        elif system in manifest.expected:
            legs[system] = missing_leg(system, missing.get(system, TIMEOUT), manifest)
    text = "\n".join(leg_line(s, leg) for s, leg in legs.items())
    return Reply(
        mid=manifest.mid, cid=manifest.cid, mke=manifest.mke, ori=manifest.ori,
        status=overall_status(legs), duplicate=duplicate, supplement=supplement,
        legs=legs, errors=[], images=images, text=text, ts=now_rfc3339(),
    )
