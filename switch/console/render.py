"""A reply as the operator reads it. Pure: a Reply in, text out; colour is an option.

    2025-01-10 15:40:12.345Z COMPLETE EIM ORI/IL0160000 mid/eim-1 cid/c-7f3a
      LEADS ACKNOWLEDGMENT EIM ORI/IL0160000 LNO/X17A4394 IMN/I000012345 IMT/M DOI/20230216
      NCIC  ACKNOWLEDGMENT EIM ORI/IL0160000 NIC/X000012345 LNO/X17A4394 IMN/I000012345 ...
        LEADS ACK         -                IMN/I000012345      12.3 ms
        NCIC  ACK         -                IMN/I000012345      15.0 ms

Text off the wire is shown with control characters replaced by `?`: a reply echoes
what a sender typed, and an escape sequence in it must not reach the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from switch.console.filters import STATUSES
from switch.console.state import Counts, First
from switch.contract.messages import ImageRecord, Leg, Reply, encode
from switch.contract.replies import leg_line
from switch.terminal import BOLD, CYAN, DIM, GREEN, MAGENTA, RED, YELLOW, paint

STATUS_COLOURS: dict[str, str] = {
    "COMPLETE": GREEN,
    "PARTIAL": YELLOW,
    "PENDING": CYAN,
    "REJECTED": RED,
}
LEG_COLOURS: dict[str, str] = {
    "ACK": GREEN,
    "NOT_FOUND": GREEN,
    "REJECT": RED,
    "SKIPPED": DIM,
    "QUEUED": CYAN,
    "TIMEOUT": YELLOW,
    "UNAVAILABLE": RED,
}

_UNPRINTABLE = {c: "?" for c in range(0x20)} | {0x7F: "?"} | {c: "?" for c in range(0x80, 0xA0)}


def clean(text: str | None) -> str:
    """`text` with every control character (ESC, CR, NUL, C1 ...) replaced by `?`."""
    return (text or "").translate(_UNPRINTABLE)


def header(reply: Reply, *, color: bool = False) -> str:
    ts = clean(reply.ts).replace("T", " ") or "-"
    status = paint(f"{reply.status:<8}", BOLD, STATUS_COLOURS.get(reply.status, ""), color=color)
    parts = [
        ts,
        status,
        clean(reply.mke) or "-",
        f"ORI/{clean(reply.ori) or '-'}",
        f"mid/{clean(reply.mid) or '-'}",
        f"cid/{clean(reply.cid)}",
    ]
    if reply.duplicate:
        parts.append(paint("DUPLICATE", YELLOW, color=color))
    if reply.supplement:
        parts.append(paint("SUPPLEMENT", MAGENTA, color=color))
    return " ".join(parts)


def supplement_line(reply: Reply, first: First | None, *, color: bool = False) -> str:
    """`SUPPLEMENT to <mid> (cid <cid>) - was PENDING, now COMPLETE`."""
    mid = clean(first.mid if first and first.mid else reply.mid) or "-"
    was = f"was {first.status}" if first else "first reply not seen"
    text = f"SUPPLEMENT to {mid} (cid {clean(reply.cid)}) - {was}, now {reply.status}"
    return paint(text, BOLD, MAGENTA, color=color)


def operator_lines(reply: Reply) -> list[str]:
    """The reply's own lines; built from the legs and errors if a sender left `text` empty."""
    if reply.text:
        return [clean(line) for line in reply.text.splitlines()]
    lines = [f"SWITCH {clean(e.text)}" for e in reply.errors]
    lines += [clean(leg_line(system, leg)) for system, leg in reply.legs.items()]
    return lines


def leg_row(system: str, leg: Leg, *, color: bool = False) -> str:
    """`LEADS ACK  -  IMN/I000012345  12.3 ms`: status, code, imn and time of one leg."""
    status = paint(f"{leg.status:<11}", LEG_COLOURS.get(leg.status, ""), color=color)
    code = clean(leg.code) or "-"
    imn = f"IMN/{clean(leg.imn)}" if leg.imn else "-"
    ms = f"{leg.ms:8.1f} ms" if leg.ms is not None else ""
    return f"{clean(system):<5} {status} {code:<16} {imn:<16} {ms}".rstrip()


def image_row(image: ImageRecord, saved: Path | None = None, *, color: bool = False) -> str:
    parts = [
        "image",
        f"{clean(image.system):<5}",
        f"IMN/{clean(image.imn)}",
        f"IMT/{clean(image.imt)}",
        f"DOI/{clean(image.doi)}",
    ]
    if image.mis:
        parts.append(f"MIS/{clean(image.mis)}")
    if image.renewal_due:
        parts.append(paint("RENEWAL DUE", BOLD, YELLOW, color=color))
    parts.append(f"{len(image.image)} bytes")
    if saved is not None:
        parts.append(f"saved {saved}")
    return " ".join(parts)


def render_reply(
    reply: Reply,
    *,
    color: bool = False,
    first: First | None = None,
    saved: Mapping[tuple[str, str], Path] | None = None,
) -> str:
    """The lines for one reply, without a final newline.

    `first` is the first reply of the transaction when `reply` is a supplement (None
    when it was not seen); `saved` maps (system, imn) to where an image was written.
    """
    lines = [header(reply, color=color)]
    if reply.supplement:
        lines.append("  " + supplement_line(reply, first, color=color))
    lines += ["  " + line for line in operator_lines(reply)]
    lines += ["    " + leg_row(system, leg, color=color) for system, leg in reply.legs.items()]
    saved = saved or {}
    lines += [
        "    " + image_row(image, saved.get((image.system, image.imn)), color=color)
        for image in reply.images
    ]
    return "\n".join(lines)


def render_json(reply: Reply) -> str:
    """The reply as one line of JSON (the contract's form; images as base64)."""
    return encode(reply).decode("utf-8")


def render_counts(counts: Counts, *, prefix: str = "switch console") -> str:
    """The footer: `switch console: 12 shown of 40 read (COMPLETE 10, ...); ...`."""
    by_status = ", ".join(f"{s} {counts.by_status.get(s, 0)}" for s in STATUSES)
    return (
        f"{prefix}: {counts.shown} shown of {counts.read} read ({by_status}); "
        f"supplements {counts.supplements}, duplicates {counts.duplicates}, "
        f"unreadable {counts.unreadable}, images saved {counts.images_saved}"
    )
