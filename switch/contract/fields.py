"""One rule per field code of DOMAIN.md, as plain functions with no I/O.

Every `check_*` function takes the value as text and returns `None` when it is
valid, else the reason in the operator's words, value first, e.g.
`20231345 IS NOT A DATE`; `validate.py` puts `REJECT MKE/EIM INVALID DOI: ` in front.
Values are never changed here except where DOMAIN.md says so: `normalise_mis` and
`normalise_nam` upper-case (every other code must already be in capitals).

Choices of this simulator (DOMAIN.md leaves them open):

* NIC check digit: **Luhn (mod 10) over the 8 digits after the prefix letter**; the
  letter does not take part. Starting from the rightmost of the 8 digits, every
  second digit is doubled (9 is subtracted when the double exceeds 9), the digits
  are summed, and the check digit is `(10 - sum % 10) % 10`. So `X12345678` gets 2:
  `make_nic("X", "12345678") == "X123456782"`. Luhn catches every single-digit error
  and most swaps of adjacent digits. Any prefix letter passes the format rule;
  sex-offender records carry `X` (`SEX_OFFENDER_NIC_PREFIX`).
* "Printable" (MIS, TERM) means printable ASCII, space to `~`: these are terminal
  systems, and upper-casing non-ASCII text can change its length (`ß` -> `SS`).
* NAM is `LAST, FIRST MIDDLE`: words of letters joined by `-` or `'`, several words
  allowed on each side of the one `, `; at most 30 characters; lower case is accepted
  and stored upper-case, like MIS.
* Dates are CCYYMMDD real calendar dates; "today" is the local date of the process
  (injectable everywhere as `today`).
* ORI: the 2-letter state code is not checked against a list of states.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

MKES: tuple[str, ...] = ("EIM", "MII", "XIM", "QIM")
IMTS: tuple[str, ...] = ("M", "S", "I")
SEXES: tuple[str, ...] = ("M", "F", "U")
SEX_OFFENDER_NIC_PREFIX = "X"
SHARED_IMN_PREFIX = "I"
MID_MAX = 64
MIS_MAX = 200
NAM_MAX = 30
TERM_MAX = 32
DEFAULT_REPLY_PREFIX = "switch.replies"

# Patterns as text too, so the JSON Schema files can carry them. ASCII classes only:
# `\d` would accept other scripts' digits.
MID_PATTERN = r"[A-Za-z0-9._:-]{1,64}"
ORI_PATTERN = r"[A-Z]{2}[A-Z0-9]{7}"
LNO_PATTERN = r"[A-Z][0-9]{2}[A-Z][0-9]{4}"
NIC_PATTERN = r"[A-Z][0-9]{9}"
IMT_PATTERN = r"[MSI]"
VOAY_IMN_PATTERN = LNO_PATTERN + IMT_PATTERN + r"[0-9]"
SHARED_IMN_PATTERN = r"I[0-9]{9}"
IMN_PATTERN = f"{VOAY_IMN_PATTERN}|{SHARED_IMN_PATTERN}"
DATE_PATTERN = r"[0-9]{8}"
MIS_PATTERN = r"[ -~]{0,200}"
_NAM_WORD = r"[A-Z]+(?:['-][A-Z]+)*"
NAM_PATTERN = rf"{_NAM_WORD}(?: {_NAM_WORD})*, {_NAM_WORD}(?: {_NAM_WORD})*"
SEX_PATTERN = r"[MFU]"
TERM_PATTERN = r"[ -~]{0,32}"
TOPIC_PATTERN = r"[A-Za-z0-9._-]{1,249}"

_mid = re.compile(MID_PATTERN).fullmatch
_ori = re.compile(ORI_PATTERN).fullmatch
_lno = re.compile(LNO_PATTERN).fullmatch
_nic = re.compile(NIC_PATTERN).fullmatch
_voay_imn = re.compile(VOAY_IMN_PATTERN).fullmatch
_shared_imn = re.compile(SHARED_IMN_PATTERN).fullmatch
_date = re.compile(DATE_PATTERN).fullmatch
_printable = re.compile(r"[ -~]*").fullmatch
_nam = re.compile(NAM_PATTERN).fullmatch
_topic = re.compile(TOPIC_PATTERN).fullmatch
_eight_digits = re.compile(r"[0-9]{8}").fullmatch
_letter = re.compile(r"[A-Z]").fullmatch

_SHOW_MAX = 40


def show(value: str) -> str:
    """A value as echoed in a reject: printable ASCII only, at most 40 characters."""
    if not _printable(value):
        value = "".join(c if " " <= c <= "~" else "?" for c in value)
    if len(value) > _SHOW_MAX:
        value = value[: _SHOW_MAX - 3] + "..."
    return value


# --------------------------------------------------------------------------- today


_today_cache: tuple[float, float, str] = (0.0, 0.0, "")  # (from, until) wall time, the text


def today_text(today: _dt.date | None = None) -> str:
    """`today` (default: the local date) as CCYYMMDD; cached until local midnight."""
    global _today_cache
    if today is not None:
        return today.strftime("%Y%m%d")
    now = time.time()
    since, until, text = _today_cache
    if since <= now < until:  # a wall clock stepped back before `since` recomputes too
        return text
    local = time.localtime(now)  # the same reading as `now`, not a second one
    day = _dt.date(local.tm_year, local.tm_mon, local.tm_mday)
    start = _dt.datetime.combine(day, _dt.time()).timestamp()
    midnight = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time()).timestamp()
    text = f"{day.year:04d}{day.month:02d}{day.day:02d}"
    _today_cache = (start, midnight, text)
    return text


# --------------------------------------------------------------------------- NIC


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 0:  # the rightmost payload digit sits next to the check digit: doubled
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def nic_check_digit(body: str) -> str:
    """The check digit for the 8 digits of a NIC after its letter.

    `body` is those 8 digits, or the letter and the 8 digits (the letter is skipped).
    Raises ValueError for anything else.
    """
    if len(body) == 9 and _letter(body[0]):
        body = body[1:]
    if not _eight_digits(body):
        raise ValueError(f"NIC body must be 8 digits, got {body!r}")
    return _luhn(body)


def make_nic(prefix_letter: str, eight_digits: str) -> str:
    """A NIC: the letter, the 8 digits and their check digit. Raises ValueError on bad input."""
    if not _letter(prefix_letter):
        raise ValueError(f"NIC prefix must be one capital letter, got {prefix_letter!r}")
    return prefix_letter + eight_digits + nic_check_digit(eight_digits)


def check_nic(value: str) -> str | None:
    if not _nic(value):
        return f"{show(value)} IS NOT A LETTER + 9 DIGITS"
    if _luhn(value[1:9]) != value[9]:
        return f"{value} FAILS THE CHECK DIGIT"
    return None


# --------------------------------------------------------------------------- identifiers


def check_mid(value: str) -> str | None:
    if _mid(value):
        return None
    return f"{show(value)} IS NOT 1-64 OF A-Z a-z 0-9 . _ : -"


def check_ori(value: str) -> str | None:
    if _ori(value):
        return None
    return f"{show(value)} IS NOT A 2-LETTER STATE CODE + 7 LETTERS/DIGITS"


def check_lno(value: str) -> str | None:
    if _lno(value):
        return None
    return f"{show(value)} IS NOT A LETTER + 2 DIGITS + A LETTER + 4 DIGITS"


def check_imt(value: str) -> str | None:
    if value in IMTS:
        return None
    return f"{show(value)} IS NOT M, S OR I"


def imn_kind(imn: str) -> Literal["VOAY", "SHARED"] | None:
    """`VOAY` for a LEADS-only IMN (LNO + IMT + digit), `SHARED` for `I` + 9 digits."""
    if _voay_imn(imn):
        return "VOAY"
    if _shared_imn(imn):
        return "SHARED"
    return None


def check_imn(value: str) -> str | None:
    if _voay_imn(value) or _shared_imn(value):
        return None
    return f"{show(value)} IS NOT LNO + IMT + DIGIT OR I + 9 DIGITS"


def check_sex(value: str) -> str | None:
    if value in SEXES:
        return None
    return f"{show(value)} IS NOT M, F OR U"


def check_term(value: str) -> str | None:
    if len(value) > TERM_MAX:
        return f"{len(value)} CHARACTERS, AT MOST {TERM_MAX}"
    if not _printable(value):
        return f"{show(value)} HAS CHARACTERS OTHER THAN PRINTABLE ASCII"
    return None


def check_reply_to(value: str, prefix: str = DEFAULT_REPLY_PREFIX) -> str | None:
    if not value.startswith(prefix):
        return f"{show(value)} IS NOT UNDER {prefix}"
    if not _topic(value):
        return f"{show(value)} IS NOT A TOPIC NAME"
    return None


# --------------------------------------------------------------------------- free text


def check_mis(value: str) -> str | None:
    if len(value) > MIS_MAX:
        return f"{len(value)} CHARACTERS, AT MOST {MIS_MAX}"
    if not _printable(value):
        return f"{show(value)} HAS CHARACTERS OTHER THAN PRINTABLE ASCII"
    return None


def normalise_mis(value: str) -> str:
    """MIS as stored: upper-case. Only call on a value `check_mis` accepted."""
    return value.upper()


def check_nam(value: str) -> str | None:
    if len(value) > NAM_MAX:
        return f"{len(value)} CHARACTERS, AT MOST {NAM_MAX}"
    if not (value.isascii() and _nam(value.upper())):
        return f"{show(value)} IS NOT LAST, FIRST MIDDLE"
    return None


def normalise_nam(value: str) -> str:
    """NAM as stored and matched: upper-case. Only call on a value `check_nam` accepted."""
    return value.upper()


# --------------------------------------------------------------------------- dates


@lru_cache(maxsize=65536)
def is_date(value: str) -> bool:
    """True when `value` is CCYYMMDD and a real calendar date."""
    if not _date(value):
        return False
    try:
        _dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def _date_reason(value: str) -> str | None:
    if is_date(value):
        return None
    if _date(value):
        return f"{value} IS NOT A DATE"
    return f"{show(value)} IS NOT CCYYMMDD"


def check_past_date(value: str, *, today: str) -> str | None:
    """A date that may not be in the future; `today` as CCYYMMDD (see `today_text`)."""
    reason = _date_reason(value)
    if reason is None and value > today:  # CCYYMMDD strings sort like the dates
        return f"{value} IS IN THE FUTURE"
    return reason


def check_doi(value: str, *, dob: str | None = None, today: _dt.date | None = None) -> str | None:
    """DOI: a date, not in the future, and not before the record's DOB when it is known.

    The router calls this with `dob` after it has looked the record up; a `dob` that is
    not itself a valid date is ignored.
    """
    reason = check_past_date(value, today=today_text(today))
    if reason is None and dob is not None and is_date(dob) and value < dob:
        return f"{value} IS BEFORE DOB {dob}"
    return reason


def check_doc(value: str, *, today: _dt.date | None = None) -> str | None:
    return check_past_date(value, today=today_text(today))


def check_dob(value: str, *, today: _dt.date | None = None) -> str | None:
    return check_past_date(value, today=today_text(today))


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, kw_only=True)
class FieldRule:
    """One field of the contract, for the docs, the JSON Schema and the tests."""

    code: str  # upper-case field code; the JSON name is `code.lower()`
    rule: str
    example: str
    bad: str  # an invalid value, to show the reject it gets
    mke: str  # a key whose requests carry the field, for the example reject
    pattern: str | None = None  # for the JSON Schema (ECMA-262 compatible)
    max_length: int | None = None


FIELDS: tuple[FieldRule, ...] = (
    FieldRule(
        code="MID",
        rule="required; 1-64 of `A-Za-z0-9._:-`; the idempotency key",
        example="load-0001:42",
        bad="has space",
        mke="EIM",
        pattern=MID_PATTERN,
    ),
    FieldRule(
        code="MKE",
        rule="required; `EIM`, `MII`, `XIM` or `QIM`",
        example="EIM",
        bad="EIX",
        mke="EIM",
    ),
    FieldRule(
        code="ORI",
        rule="required; 9 characters: 2-letter state code + 7 capital letters/digits",
        example="IL0160000",
        bad="IL016",
        mke="EIM",
        pattern=ORI_PATTERN,
    ),
    FieldRule(
        code="TERM",
        rule=f"optional; at most {TERM_MAX} printable ASCII characters",
        example="T042",
        bad="T" * 33,
        mke="EIM",
        pattern=TERM_PATTERN,
        max_length=TERM_MAX,
    ),
    FieldRule(
        code="REPLY_TO",
        rule="optional; a topic name starting with the reply prefix (default `switch.replies`)",
        example="switch.replies.console7",
        bad="other.topic",
        mke="EIM",
        pattern=TOPIC_PATTERN,
    ),
    FieldRule(
        code="LNO",
        rule="EIM, QIM; a capital letter + 2 digits + a letter + 4 digits",
        example="X17A4394",
        bad="X17A439",
        mke="EIM",
        pattern=LNO_PATTERN,
    ),
    FieldRule(
        code="NIC",
        rule="QIM; a capital letter + 9 digits, the last a Luhn check digit over the 8 "
        "before it; sex-offender records use `X`",
        example="X123456782",
        bad="X123456789",
        mke="QIM",
        pattern=NIC_PATTERN,
    ),
    FieldRule(
        code="IMT",
        rule="EIM; `M` mugshot, `S` signature, `I` identifying image",
        example="M",
        bad="P",
        mke="EIM",
        pattern=IMT_PATTERN,
    ),
    FieldRule(
        code="IMN",
        rule="MII, XIM, QIM; VOAY: LNO + IMT + a digit; sex offender (shared): `I` + 9 digits",
        example="X17A4394M0",
        bad="X17A4394P0",
        mke="XIM",
        pattern=IMN_PATTERN,
    ),
    FieldRule(
        code="DOI",
        rule="EIM, MII; CCYYMMDD, a real date, not in the future, not before the "
        "record's DOB (checked by the router)",
        example="20230216",
        bad="20231345",
        mke="EIM",
        pattern=DATE_PATTERN,
    ),
    FieldRule(
        code="DOC",
        rule="XIM; CCYYMMDD, a real date, not in the future",
        example="20240301",
        bad="2024031",
        mke="XIM",
        pattern=DATE_PATTERN,
    ),
    FieldRule(
        code="DOB",
        rule="QIM (with NAM, SEX); CCYYMMDD, a real date, not in the future",
        example="19800101",
        bad="19800230",
        mke="QIM",
        pattern=DATE_PATTERN,
    ),
    FieldRule(
        code="MIS",
        rule=f"EIM, MII, optional; at most {MIS_MAX} printable ASCII characters; stored upper-case",
        example="ANNUAL PHOTO",
        bad="CAFÉ",
        mke="EIM",
        pattern=MIS_PATTERN,
        max_length=MIS_MAX,
    ),
    FieldRule(
        code="NAM",
        rule=f"QIM (with SEX, DOB); `LAST, FIRST MIDDLE`, at most {NAM_MAX} characters; stored upper-case",
        example="SMITH, JOHN PAUL",
        bad="SMITH JOHN",
        mke="QIM",
        pattern=NAM_PATTERN.replace("[A-Z]", "[A-Za-z]"),  # lower case is accepted
        max_length=NAM_MAX,
    ),
    FieldRule(
        code="SEX",
        rule="QIM (with NAM, DOB); `M`, `F` or `U`",
        example="M",
        bad="X",
        mke="QIM",
        pattern=SEX_PATTERN,
    ),
    FieldRule(
        code="IMAGE",
        rule="EIM required, MII optional; base64 (standard alphabet, padded, no line "
        "breaks) of the JPEG or PNG bytes, not empty",
        example="/9j/4AAQSkZJRg...",
        bad="not base64!",
        mke="EIM",
    ),
)
