"""Building replies: overall status (CONTRACT.md) and the operator's lines (DOMAIN.md).

Shared by the router (switch-level rejects) and the correlator (everything else).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from switch.contract.messages import (
    ACK,
    COMPLETE,
    NOT_FOUND,
    PARTIAL,
    PENDING,
    QUEUED,
    REJECT,
    REJECTED,
    SKIPPED,
    SYSTEMS,
    FieldError,
    Leg,
    Reply,
    ReplyStatus,
)

SWITCH_SKIP_TEXT = "NOT SENT - REJECTED BY THE SWITCH"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def overall_status(legs: Mapping[str, Leg]) -> ReplyStatus:
    """COMPLETE, REJECTED, PENDING or PARTIAL from the routed legs (SKIPPED ones ignored)."""
    routed = [leg.status for leg in legs.values() if leg.status != SKIPPED]
    if not routed:
        return REJECTED
    if any(s == QUEUED for s in routed):
        return PENDING
    if all(s in (ACK, NOT_FOUND) for s in routed):
        return COMPLETE
    if all(s == REJECT for s in routed):
        return REJECTED
    return PARTIAL


def system_line(system: str, text: str) -> str:
    """`LEADS ...` / `NCIC  ...`: the system name padded to five characters."""
    return f"{system:<5} {text}"


def leg_line(system: str, leg: Leg) -> str:
    text = leg.text or leg.status
    if text.startswith(system):
        return text
    return system_line(system, text)


def reject_reply(
    *,
    cid: str,
    mid: str | None,
    ori: str | None,
    mke: str | None,
    errors: list[FieldError],
    echo: str,
) -> Reply:
    """A switch-level reject: one line per problem, then the first 100 input characters."""
    lines = [f"SWITCH {e.text}" for e in errors]
    lines.append(f"SWITCH ECHO {echo[:100]}")
    legs = {s: Leg(status=SKIPPED, text=system_line(s, SWITCH_SKIP_TEXT)) for s in SYSTEMS}
    return Reply(
        mid=mid, cid=cid, mke=mke, ori=ori, status=REJECTED, legs=legs, errors=errors,
        text="\n".join(lines), ts=now_rfc3339(),
    )


def undelivered_reply(reply: Reply, reason: str, *, moved_to: str | None) -> Reply:
    """The reply to send when `reply` itself cannot be written (too large for its topic, a
    reply_to topic missing or not writable): the same answer without images, and a line
    saying why (and where it went instead)."""
    line = f"SWITCH {reason}; SENT WITHOUT IMAGES"
    if moved_to:
        line += f" TO {moved_to}"
    if reply.images:
        line += f" ({len(reply.images)} IMAGES NOT SENT)"
    return msgspec.structs.replace(reply, images=[], text=f"{reply.text}\n{line}" if reply.text else line)
