"""The operator's text form: `EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20230216.MIS/ANNUAL PHOTO.`

Grammar: `MKE.ORI.` then `CODE/VALUE.` for each field, every part ended by a `.`.
MKE and the field codes are read in any case; values are kept as typed and then
validated exactly like JSON requests (`parse_request`). The image travels beside the
text (`image=`), and so do `mid`, `term` and `reply_to`; `mid` is generated when none
is given. The ORI may be left out (`QIM.LNO/X17A4394.`): the reject then says
`MISSING ORI`.

A `.` inside a value (only MIS may hold one) ends the value only when it is followed
by a field code (in any case) and `/` (`LNO/`, `mis/`, ...) or by the end of the text. So
`MIS/SEEN AT 10 A.M..` reads as `SEEN AT 10 A.M.`, but a MIS that itself contains
`.DOI/` cannot be written in this form: `format_text` raises TextFormError for it
(the JSON form has no such limit).
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
import uuid
from typing import Any

import msgspec

from switch.contract.fields import DEFAULT_REPLY_PREFIX, show
from switch.contract.messages import (
    AnyRequest,
    mke_of,
)
from switch.contract.validate import DEFAULT_MAX_BYTES, ContractError, parse_request

# Field order per key, as written by format_text; MIS last since it is free text.
ORDER: dict[str, tuple[str, ...]] = {
    "EIM": ("lno", "imt", "doi", "mis"),
    "MII": ("imn", "doi", "mis"),
    "XIM": ("imn", "doc"),
    "QIM": ("imn", "lno", "nic", "nam", "sex", "dob"),
}
CODES: tuple[str, ...] = ("LNO", "IMT", "DOI", "MIS", "IMN", "DOC", "NIC", "NAM", "SEX", "DOB")

_codes = "|".join(CODES)
# A value runs, shortest first, up to a '.' followed by the next field code or the end.
_field = re.compile(rf"({_codes})/(.*?)\.(?=(?:{_codes})/|\Z)", re.IGNORECASE | re.DOTALL).match
_head = re.compile(r"([^./]*)\.([^./]*\.)?").match


class TextFormError(ContractError):
    """Text that does not follow the `MKE.ORI.CODE/VALUE.` grammar."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def text_to_dict(
    text: str,
    *,
    image: bytes | None = None,
    mid: str | None = None,
    term: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """The wire JSON object for `text` (image as base64), not yet validated.

    Useful to send a request as typed, invalid fields included, and let the switch
    reject it. Raises TextFormError when the grammar itself is broken.
    """
    t = text.strip()
    if not t.endswith("."):
        raise TextFormError(f"{show(t)}: EVERY PART MUST END WITH '.'")
    head = _head(t)
    if head is None:
        raise TextFormError(f"{show(t)}: EXPECTED MKE.ORI. FIRST")
    out: dict[str, Any] = {"mid": mid if mid is not None else uuid.uuid4().hex}
    out["mke"] = head.group(1).upper()
    pos = head.end(1) + 1
    if head.group(2) is not None:
        out["ori"] = head.group(2)[:-1]
        pos = head.end(2)
    seen: set[str] = set()
    while pos < len(t):
        m = _field(t, pos)
        if m is None:
            raise TextFormError(
                f"CANNOT READ {show(t[pos:])}: EXPECTED CODE/VALUE. WITH CODE ONE OF " + ", ".join(CODES)
            )
        code = m.group(1).upper()
        if code in seen:
            raise TextFormError(f"{code} GIVEN TWICE")
        seen.add(code)
        out[code.lower()] = m.group(2)
        pos = m.end()
    if image is not None:
        out["image"] = base64.b64encode(image).decode("ascii")
    if term is not None:
        out["term"] = term
    if reply_to is not None:
        out["reply_to"] = reply_to
    return out


def parse_text(
    text: str,
    *,
    image: bytes | None = None,
    mid: str | None = None,
    term: str | None = None,
    reply_to: str | None = None,
    reply_prefix: str = DEFAULT_REPLY_PREFIX,
    max_bytes: int = DEFAULT_MAX_BYTES,
    today: _dt.date | None = None,
) -> AnyRequest:
    """The typed request for `text`. Raises TextFormError, or what `parse_request` raises."""
    d = text_to_dict(text, image=image, mid=mid, term=term, reply_to=reply_to)
    try:
        raw = msgspec.json.encode(d)
    except (TypeError, ValueError):  # text with lone surrogates cannot be UTF-8
        raise TextFormError("TEXT IS NOT VALID UNICODE") from None
    return parse_request(raw, reply_prefix=reply_prefix, max_bytes=max_bytes, today=today)


def format_text(req: AnyRequest) -> str:
    """The text form of `req`, without image, mid, term and reply_to.

    Raises TextFormError when the text would not read back as the same fields (a MIS
    holding `.CODE/`, or a value with a `.` or `/` where the grammar cannot allow one).
    """
    mke = mke_of(req)
    values = {name: getattr(req, name) for name in ORDER[mke]}
    parts = [mke, req.ori]
    parts += [f"{name.upper()}/{value}" for name, value in values.items() if value is not None]
    text = ".".join(parts) + "."
    back = text_to_dict(text, mid="x")
    expected = {k: v for k, v in values.items() if v is not None}
    got = {k: v for k, v in back.items() if k not in ("mid", "mke", "ori")}
    if back.get("ori") != req.ori or got != expected:
        raise TextFormError(f"{text[:60]}: CANNOT BE WRITTEN IN THE TEXT FORM, USE JSON")
    return text
