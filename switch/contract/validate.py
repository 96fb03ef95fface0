"""Bytes off `switch.requests` -> a typed request, or one of two ContractErrors.

`parse_request` decodes once into a loose struct whose fields are all `Any` (the image is
kept raw, for msgspec's base64 decoder), then checks every field and collects every
problem, so a reject lists them all at once. It raises only `Unreadable` (not a request
at all: goes to the dead-letter topic) or `RequestInvalid` (a request with bad fields:
gets a REJECTED reply); any other exception would be a bug, and is turned into
`Unreadable("INTERNAL ERROR ...")` rather than let out.

A JSON `null` counts as an absent field. Unknown fields are ignored (CONTRACT.md).
Lone UTF-16 surrogate escapes (`"\\ud800"`) and nesting deeper than the decoder allows
make the input Unreadable.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import Any

import msgspec

from switch.contract import fields as F
from switch.contract.messages import (
    AnyRequest,
    CancelImage,
    Codes,
    EnterImage,
    FieldError,
    ModifyImage,
    QueryImage,
)
from switch.contract.redact import redact_text
from switch.errors import SwitchError

# The contract's request size limit; SWITCH_MAX_REQUEST_BYTES changes it (settings.py).
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
ECHO_CHARS = 100
_ID_ECHO_MAX = 100

MII_ONE_OF = "image|doi|mis"
QIM_ONE_OF = "imn|lno|nic|nam+sex+dob"


class ContractError(SwitchError):
    """Input from `switch.requests` that breaks the contract."""

    code: str = Codes.INVALID_FIELD
    mid: str | None = None
    ori: str | None = None
    mke: str | None = None
    echo: str = ""


class Unreadable(ContractError):
    """Not a request at all: over the size limit, not UTF-8, not JSON, not a JSON object.

    `mid` and `ori` are set when they could still be read (and are valid), so the switch
    can send a REJECTED reply besides the dead letter. `code` is TOO_LARGE or UNREADABLE.
    """

    def __init__(
        self,
        reason: str,
        *,
        mid: str | None = None,
        ori: str | None = None,
        code: str = Codes.UNREADABLE,
        echo: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mid = mid
        self.ori = ori
        self.code = code
        self.echo = echo


class RequestInvalid(ContractError):
    """A readable request with at least one bad field; `errors` lists every problem.

    `mid`, `ori`, `mke` are echoed from the input when they are text (cut to 100
    characters), even if invalid; `echo` is the first 100 characters of the input, image data redacted
    (switch/contract/redact.py).
    """

    def __init__(
        self,
        errors: list[FieldError],
        mid: str | None = None,
        ori: str | None = None,
        mke: str | None = None,
        echo: str = "",
    ) -> None:
        super().__init__("; ".join(e.text for e in errors))
        self.errors = errors
        self.mid = mid
        self.ori = ori
        self.mke = mke
        self.echo = echo
        self.code = errors[0].code if errors else Codes.INVALID_FIELD


_NO_VALUE = msgspec.Raw(b"")
_NULL = msgspec.Raw(b"null")


class _Loose(msgspec.Struct, kw_only=True):
    """Every field any request may carry, untyped, so one decode sees them all."""

    mid: Any = None
    mke: Any = None
    ori: Any = None
    term: Any = None
    reply_to: Any = None
    lno: Any = None
    imt: Any = None
    doi: Any = None
    mis: Any = None
    # Kept raw so msgspec's C base64 decoder reads it (4x faster than binascii).
    image: msgspec.Raw = _NO_VALUE
    imn: Any = None
    doc: Any = None
    nic: Any = None
    nam: Any = None
    sex: Any = None
    dob: Any = None


class _LooseRaw(msgspec.Struct, kw_only=True):
    """Fallback when a field holds JSON that `Any` cannot (a number out of range)."""

    mid: msgspec.Raw = _NO_VALUE
    mke: msgspec.Raw = _NO_VALUE
    ori: msgspec.Raw = _NO_VALUE
    term: msgspec.Raw = _NO_VALUE
    reply_to: msgspec.Raw = _NO_VALUE
    lno: msgspec.Raw = _NO_VALUE
    imt: msgspec.Raw = _NO_VALUE
    doi: msgspec.Raw = _NO_VALUE
    mis: msgspec.Raw = _NO_VALUE
    image: msgspec.Raw = _NO_VALUE
    imn: msgspec.Raw = _NO_VALUE
    doc: msgspec.Raw = _NO_VALUE
    nic: msgspec.Raw = _NO_VALUE
    nam: msgspec.Raw = _NO_VALUE
    sex: msgspec.Raw = _NO_VALUE
    dob: msgspec.Raw = _NO_VALUE


class _Unrepresentable:
    """Stands for a JSON value this process cannot hold (e.g. 1e999)."""


_UNREPRESENTABLE = _Unrepresentable()
_loose_decoder = msgspec.json.Decoder(_Loose)
_loose_raw_decoder = msgspec.json.Decoder(_LooseRaw)
_any_decoder = msgspec.json.Decoder()
_bytes_decoder = msgspec.json.Decoder(bytes)
_salvage_mid = re.compile(r'"mid"\s*:\s*"([A-Za-z0-9._:-]{1,64})"').search
_salvage_ori = re.compile(r'"ori"\s*:\s*"([A-Z]{2}[A-Z0-9]{7})"').search
_KINDS = frozenset(F.MKES)
Check = Callable[[str], str | None]


# --------------------------------------------------------------------------- error texts


def _prefix(mke: str | None) -> str:
    return f"REJECT MKE/{mke} " if mke else "REJECT "


def missing(mke: str | None, field: str) -> FieldError:
    return FieldError(field=field, code=Codes.MISSING_FIELD, text=f"{_prefix(mke)}MISSING {field.upper()}")


def invalid(mke: str | None, field: str, reason: str, code: str = Codes.INVALID_FIELD) -> FieldError:
    """A FieldError in the operator's words: `REJECT MKE/EIM INVALID DOI: <reason>`."""
    word = "BAD" if code == Codes.BAD_REPLY_TO else "INVALID"
    return FieldError(field=field, code=code, text=f"{_prefix(mke)}{word} {field.upper()}: {reason}")


def check_doi_against_dob(
    mke: str, doi: str, dob: str | None, *, today: _dt.date | None = None
) -> FieldError | None:
    """For the router, once it has the record on file: DOI may not be before its DOB."""
    reason = F.check_doi(doi, dob=dob, today=today)
    return None if reason is None else invalid(mke, "doi", reason)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE/FALSE"
    if isinstance(value, int | float):
        return "A NUMBER"
    if isinstance(value, list):
        return "A LIST"
    if isinstance(value, dict):
        return "AN OBJECT"
    return "AN UNREADABLE VALUE"


def _not_text(mke: str | None, field: str, value: Any) -> FieldError:
    code = Codes.IMAGE_INVALID if field == "image" else Codes.INVALID_FIELD
    return invalid(mke, field, f"MUST BE TEXT, NOT {_kind_of(value)}", code)


def _echo_id(value: Any) -> str | None:
    if type(value) is not str:
        return None
    return value if len(value) <= _ID_ECHO_MAX and value.isprintable() else _cut(value)


def _cut(value: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in value[:_ID_ECHO_MAX])


def echo(raw: bytes) -> str:
    """The first 100 characters of the input for a reject's text, image data redacted."""
    return redact_text(raw, ECHO_CHARS)


_echo = echo


# --------------------------------------------------------------------------- the entry point


def parse_request(
    raw: bytes,
    *,
    reply_prefix: str = F.DEFAULT_REPLY_PREFIX,
    max_bytes: int = DEFAULT_MAX_BYTES,
    today: _dt.date | None = None,
) -> AnyRequest:
    """Decode and validate one request. Raises only Unreadable or RequestInvalid.

    On success the request is typed; `image` holds the decoded bytes, MIS and NAM are
    upper-case.
    """
    try:
        return _parse(raw, reply_prefix, max_bytes, today)
    except ContractError:
        raise
    except Exception as exc:  # the promise to callers: nothing but ContractError
        raise Unreadable(f"INTERNAL ERROR: {type(exc).__name__}", echo=_safe_echo(raw)) from exc


def _safe_echo(raw: Any) -> str:
    try:
        return _echo(bytes(raw))
    except Exception:
        return ""


def _parse(raw: Any, reply_prefix: str, max_bytes: int, today: _dt.date | None) -> AnyRequest:
    if type(raw) is not bytes:
        raw = _as_bytes(raw)
    size = len(raw)
    if size > max_bytes:
        mid, ori = _salvage(raw)
        raise Unreadable(
            f"TOO_LARGE: {size} BYTES, AT MOST {max_bytes}",
            mid=mid,
            ori=ori,
            code=Codes.TOO_LARGE,
            echo=_echo(raw),
        )
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            mid, ori = _salvage(raw)
            raise Unreadable(
                f"NOT UTF-8: BAD BYTE AT OFFSET {exc.start}", mid=mid, ori=ori, echo=_echo(raw)
            ) from None
    try:
        loose = _loose_decoder.decode(raw)
    except msgspec.ValidationError:
        loose = _decode_fallback(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        mid, ori = _salvage(raw)
        raise Unreadable(_not_json(exc), mid=mid, ori=ori, echo=_echo(raw)) from None
    return _check(loose, raw, reply_prefix, F.today_text(today))


def _as_bytes(raw: Any) -> bytes:
    if raw is None:
        raise Unreadable("EMPTY: THE MESSAGE HAS NO VALUE")
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8")
        except UnicodeEncodeError:
            raise Unreadable("NOT UTF-8: TEXT WITH LONE SURROGATES") from None
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    raise Unreadable(f"NOT BYTES: {type(raw).__name__}")


def _not_json(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "NOT JSON: NESTED TOO DEEPLY"
    return f"NOT JSON: {str(exc).upper()}"


def _decode_fallback(raw: bytes) -> _Loose:
    """The `Any` decode refused a value (not an object, or a number out of range)."""
    try:
        lr = _loose_raw_decoder.decode(raw)
    except msgspec.ValidationError:
        raise Unreadable(f"NOT A JSON OBJECT: {_top_kind(raw)}", echo=_echo(raw)) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Unreadable(_not_json(exc), echo=_echo(raw)) from None
    values: dict[str, Any] = {}
    for name in _Loose.__struct_fields__:
        r: msgspec.Raw = getattr(lr, name)
        if len(r) == 0:
            continue
        if name == "image":
            values[name] = r
            continue
        try:
            values[name] = _any_decoder.decode(r)
        except Exception:
            values[name] = _UNREPRESENTABLE
    return _Loose(**values)


def _top_kind(raw: bytes) -> str:
    first = raw.lstrip()[:1]
    return {
        b"[": "AN ARRAY",
        b'"': "A STRING",
        b"t": "TRUE",
        b"f": "FALSE",
        b"n": "NULL",
    }.get(first, "A NUMBER")


def _salvage(raw: bytes) -> tuple[str | None, str | None]:
    """mid and ori, if they can still be read and are valid; only on the error path."""
    mid: Any = None
    ori: Any = None
    try:
        loose = _loose_decoder.decode(raw)
        mid, ori = loose.mid, loose.ori
    except Exception:
        text = raw.decode("utf-8", "replace")
        m = _salvage_mid(text)
        o = _salvage_ori(text)
        mid = m.group(1) if m else None
        ori = o.group(1) if o else None
    if type(mid) is not str or F.check_mid(mid) is not None:
        mid = None
    if type(ori) is not str or F.check_ori(ori) is not None:
        ori = None
    return mid, ori


# --------------------------------------------------------------------------- field checks


def _check(loose: _Loose, raw: bytes, reply_prefix: str, today: str) -> AnyRequest:
    errors: list[FieldError] = []
    add = errors.append
    mke_value = loose.mke
    mke: str | None = None
    if mke_value is None:
        add(missing(None, "mke"))
    elif type(mke_value) is not str:
        add(_not_text(None, "mke", mke_value))
    elif mke_value not in _KINDS:
        add(invalid(None, "mke", f"{F.show(mke_value)} IS NOT EIM, MII, XIM OR QIM"))
    else:
        mke = mke_value

    mid = loose.mid
    _required(errors, mke, "mid", mid, F.check_mid)
    ori = loose.ori
    _required(errors, mke, "ori", ori, F.check_ori)
    result: AnyRequest | None = None
    if mke == "EIM":
        result = _eim(errors, loose, today)
    elif mke == "MII":
        result = _mii(errors, loose, today)
    elif mke == "XIM":
        result = _xim(errors, loose, today)
    elif mke == "QIM":
        result = _qim(errors, loose, today)

    term = loose.term
    if term is not None:
        _text(errors, mke, "term", term, F.check_term)
    reply_to = loose.reply_to
    if reply_to is not None:
        if type(reply_to) is not str:
            add(_not_text(mke, "reply_to", reply_to))
        else:
            reason = F.check_reply_to(reply_to, reply_prefix)
            if reason is not None:
                add(invalid(mke, "reply_to", reason, Codes.BAD_REPLY_TO))

    if errors or result is None:
        raise RequestInvalid(
            errors, mid=_echo_id(mid), ori=_echo_id(ori), mke=_echo_id(mke_value), echo=_echo(raw)
        )
    return result


def _text(errors: list[FieldError], mke: str | None, field: str, value: Any, check: Check) -> bool:
    """Check a present value; True when it is valid text."""
    if type(value) is not str:
        errors.append(_not_text(mke, field, value))
        return False
    reason = check(value)
    if reason is not None:
        errors.append(invalid(mke, field, reason))
        return False
    return True


def _required(errors: list[FieldError], mke: str | None, field: str, value: Any, check: Check) -> bool:
    if value is None:
        errors.append(missing(mke, field))
        return False
    return _text(errors, mke, field, value, check)


def _date(errors: list[FieldError], mke: str, field: str, value: Any, today: str, *, required: bool) -> None:
    if value is None:
        if required:
            errors.append(missing(mke, field))
        return
    if type(value) is not str:
        errors.append(_not_text(mke, field, value))
        return
    reason = F.check_past_date(value, today=today)
    if reason is not None:
        errors.append(invalid(mke, field, reason))


def _present(raw: msgspec.Raw) -> bool:
    return len(raw) != 0 and raw != _NULL


def _image(errors: list[FieldError], mke: str, raw: msgspec.Raw, *, required: bool) -> bytes | None:
    if not _present(raw):
        if required:
            errors.append(missing(mke, "image"))
        return None
    try:
        data = _bytes_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        try:
            value = _any_decoder.decode(raw)
        except Exception:
            value = _UNREPRESENTABLE
        if type(value) is str:
            errors.append(invalid(mke, "image", "NOT BASE64", Codes.IMAGE_INVALID))
        else:
            errors.append(_not_text(mke, "image", value))
        return None
    if not data:
        errors.append(invalid(mke, "image", "EMPTY", Codes.IMAGE_INVALID))
        return None
    return data


def _mis(errors: list[FieldError], mke: str, value: Any) -> str | None:
    if value is None:
        return None
    if _text(errors, mke, "mis", value, F.check_mis):
        return F.normalise_mis(value)
    return None


def _eim(errors: list[FieldError], lo: _Loose, today: str) -> EnterImage | None:
    _required(errors, "EIM", "lno", lo.lno, F.check_lno)
    _required(errors, "EIM", "imt", lo.imt, F.check_imt)
    _date(errors, "EIM", "doi", lo.doi, today, required=True)
    mis = _mis(errors, "EIM", lo.mis)
    image = _image(errors, "EIM", lo.image, required=True)
    if errors or image is None:
        return None
    return EnterImage(
        mid=lo.mid,
        ori=lo.ori,
        term=lo.term,
        reply_to=lo.reply_to,
        lno=lo.lno,
        imt=lo.imt,
        doi=lo.doi,
        image=image,
        mis=mis,
    )


def _mii(errors: list[FieldError], lo: _Loose, today: str) -> ModifyImage | None:
    _required(errors, "MII", "imn", lo.imn, F.check_imn)
    if not _present(lo.image) and lo.doi is None and lo.mis is None:
        errors.append(
            FieldError(
                field=MII_ONE_OF,
                code=Codes.MISSING_FIELD,
                text="REJECT MKE/MII MISSING IMAGE, DOI OR MIS",
            )
        )
    _date(errors, "MII", "doi", lo.doi, today, required=False)
    mis = _mis(errors, "MII", lo.mis)
    image = _image(errors, "MII", lo.image, required=False)
    if errors:
        return None
    return ModifyImage(
        mid=lo.mid,
        ori=lo.ori,
        term=lo.term,
        reply_to=lo.reply_to,
        imn=lo.imn,
        image=image,
        doi=lo.doi,
        mis=mis,
    )


def _xim(errors: list[FieldError], lo: _Loose, today: str) -> CancelImage | None:
    _required(errors, "XIM", "imn", lo.imn, F.check_imn)
    _date(errors, "XIM", "doc", lo.doc, today, required=True)
    if errors:
        return None
    return CancelImage(mid=lo.mid, ori=lo.ori, term=lo.term, reply_to=lo.reply_to, imn=lo.imn, doc=lo.doc)


_PERSON = ("nam", "sex", "dob")


def _qim(errors: list[FieldError], lo: _Loose, today: str) -> QueryImage | None:
    given = [name for name in ("imn", "lno", "nic") if getattr(lo, name) is not None]
    person = [name for name in _PERSON if getattr(lo, name) is not None]
    if person:
        given.append("nam+sex+dob")
    if not given:
        errors.append(
            FieldError(
                field=QIM_ONE_OF,
                code=Codes.MISSING_FIELD,
                text="REJECT MKE/QIM MISSING IMN, LNO, NIC OR NAM/SEX/DOB",
            )
        )
    elif len(given) > 1:
        got = " AND ".join(g.upper().replace("+", "/") for g in given)
        errors.append(
            FieldError(
                field=QIM_ONE_OF,
                code=Codes.INVALID_FIELD,
                text=f"REJECT MKE/QIM INVALID QUERY: ONE OF IMN, LNO, NIC OR NAM/SEX/DOB, NOT {got}",
            )
        )
    elif person and len(person) < 3:
        for name in _PERSON:
            if getattr(lo, name) is None:
                errors.append(
                    FieldError(
                        field=name,
                        code=Codes.MISSING_FIELD,
                        text=f"REJECT MKE/QIM MISSING {name.upper()}: NAM, SEX AND DOB GO TOGETHER",
                    )
                )
    if lo.imn is not None:
        _text(errors, "QIM", "imn", lo.imn, F.check_imn)
    if lo.lno is not None:
        _text(errors, "QIM", "lno", lo.lno, F.check_lno)
    if lo.nic is not None:
        _text(errors, "QIM", "nic", lo.nic, F.check_nic)
    nam_ok = lo.nam is not None and _text(errors, "QIM", "nam", lo.nam, F.check_nam)
    if lo.sex is not None:
        _text(errors, "QIM", "sex", lo.sex, F.check_sex)
    _date(errors, "QIM", "dob", lo.dob, today, required=False)
    if errors:
        return None
    return QueryImage(
        mid=lo.mid,
        ori=lo.ori,
        term=lo.term,
        reply_to=lo.reply_to,
        imn=lo.imn,
        lno=lo.lno,
        nic=lo.nic,
        nam=F.normalise_nam(lo.nam) if nam_ok else None,
        sex=lo.sex,
        dob=lo.dob,
    )
