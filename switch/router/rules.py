"""Routing rules (DOMAIN.md 'Routing'), pure: which systems get a request, and why not.

The switch decides from the record on file (the directory), never from the sender:
- EIM: sex-offender record -> LEADS and NCIC; VOAY/murderer -> LEADS only, NCIC skipped.
  An LNO not in the directory is a switch-level NOT_ON_FILE reject.
- MII/XIM follow the IMN's form: LNO+IMT+digit is LEADS-only; `I`+9 digits is shared.
- QIM goes to every system that can hold the record.

The shared IMN of a sex-offender image is allocated here, once, so LEADS and NCIC
store the image under the same number: `I` + the request's partition in
`switch.requests` (one digit) + the next number of that partition's sequence
(8 digits; see `imns.py`). The sequence counts allocated IMNs, not offsets, and never
goes back: not after a crash (an aborted batch takes the same numbers again when it is
routed again), not when the topics are recreated over existing stores (LEADS's floor).
A partition whose 10^8 numbers are used refuses the EIM rather than repeat one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from switch.contract import fields as F
from switch.contract.internal import RecordEntry
from switch.contract.messages import (
    AnyRequest,
    CancelImage,
    Codes,
    EnterImage,
    FieldError,
    ModifyImage,
    QueryImage,
)
from switch.contract.validate import check_doi_against_dob
from switch.router.directory import Directory
from switch.router.imns import SEQUENCE_LIMIT, ImnBatch

LEADS, NCIC = "LEADS", "NCIC"
VOAY_SKIP = "SKIPPED - VOAY/MURDERER RECORD IS LEADS ONLY"
VOAY_IMN_SKIP = "SKIPPED - IMN IS A LEADS-ONLY (VOAY/MURDERER) IMAGE"


@dataclass(frozen=True)
class Route:
    expected: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    record: RecordEntry | None = None
    key: str = ""  # partition key of the leg requests: the record, so its entries stay in order
    imn: str | None = None  # allocated shared IMN (EIM on a sex-offender record)


@dataclass(frozen=True)
class Refusal:
    errors: list[FieldError]


def route(
    req: AnyRequest, directory: Directory, *, partition: int, imns: ImnBatch,
    today: date | None = None,
) -> Route | Refusal:
    """`partition`: the request's in `switch.requests`; `imns`: the batch's IMN allocator
    (a number is taken only when an EIM on a sex-offender record is routed)."""
    if isinstance(req, EnterImage):
        return _enter(req, directory, partition, imns, today)
    if isinstance(req, ModifyImage | CancelImage):
        return _by_imn(req.imn, directory, req, today)
    return _query(req, directory)


def _not_on_file(mke: str, field_name: str, value: str) -> Refusal:
    return Refusal([FieldError(
        field=field_name, code=Codes.NOT_ON_FILE,
        text=f"REJECT MKE/{mke} NOT ON FILE {field_name.upper()}/{value}",
    )])


def _enter(
    req: EnterImage, directory: Directory, partition: int, imns: ImnBatch, today: date | None
) -> Route | Refusal:
    rec = directory.by_lno(req.lno)
    if rec is None:
        return _not_on_file("EIM", "lno", req.lno)
    dob_error = _doi_vs_dob("EIM", req.doi, rec, today)
    if dob_error:
        return dob_error
    if rec.rtype == "VOAY":
        return Route(expected=(LEADS,), skipped={NCIC: VOAY_SKIP}, record=rec, key=rec.lno)
    imn = imns.take(partition)
    if imn is None:
        return Refusal([FieldError(
            field="imn", code=Codes.IMN_EXHAUSTED,
            text=f"REJECT MKE/EIM NO SHARED IMN LEFT: THE {SEQUENCE_LIMIT:,} NUMBERS OF "
                 f"REQUESTS PARTITION {partition} ARE USED; NOTHING WAS ENTERED",
        )])
    return Route(expected=(LEADS, NCIC), record=rec, key=rec.lno, imn=imn)


def _by_imn(
    imn: str, directory: Directory, req: ModifyImage | CancelImage | QueryImage, today: date | None
) -> Route | Refusal:
    if F.imn_kind(imn) == "VOAY":
        lno = imn[:8]
        rec = directory.by_lno(lno)
        if isinstance(req, ModifyImage) and req.doi and rec is not None:
            dob_error = _doi_vs_dob("MII", req.doi, rec, today)
            if dob_error:
                return dob_error
        return Route(expected=(LEADS,), skipped={NCIC: VOAY_IMN_SKIP}, record=rec, key=lno)
    return Route(expected=(LEADS, NCIC), key=imn)


def _query(req: QueryImage, directory: Directory) -> Route | Refusal:
    if req.imn:
        return _by_imn(req.imn, directory, req, None)
    rec: RecordEntry | None = None
    if req.lno:
        rec = directory.by_lno(req.lno)
    elif req.nic:
        rec = directory.by_nic(req.nic)
    if rec is not None and rec.rtype == "VOAY":
        return Route(expected=(LEADS,), skipped={NCIC: VOAY_SKIP}, record=rec, key=rec.lno)
    key = rec.lno if rec else (req.lno or req.nic or f"{req.nam}/{req.sex}/{req.dob}")
    return Route(expected=(LEADS, NCIC), record=rec, key=key)


def _doi_vs_dob(mke: str, doi: str, rec: RecordEntry, today: date | None) -> Refusal | None:
    if not rec.dob:
        return None
    err = check_doi_against_dob(mke, doi, rec.dob, today=today)
    return Refusal([err]) if err else None
