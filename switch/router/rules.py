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

`judge` is every decision the router makes about one readable request, in order:
authorization, duplicate or conflicting mid, reply_to, image, then `route`.
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
    mke_of,
)
from switch.contract.validate import check_doi_against_dob
from switch.images.errors import ImageRejected
from switch.router.dedupe import Seen
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


@dataclass(frozen=True)
class Reject:
    """A REJECTED reply. `why` names the check that refused, for the log; with
    `default_reply_to`, the reply goes to the default replies topic, not `reply_to`."""

    errors: list[FieldError]
    why: str
    default_reply_to: bool = False


@dataclass(frozen=True)
class Duplicate:
    """The same mid with the same content again: the original is answered (again)."""

    original_cid: str


def judge(
    req: AnyRequest, *, agency: str | None, refused: FieldError | None, seen: Seen,
    reply_to_missing: bool, image_error: ImageRejected | None, directory: Directory,
    partition: int, imns: ImnBatch,
) -> Reject | Duplicate | Route:
    """What becomes of a readable request. `agency`: its sender (None: a trusted
    producer); `refused`: why the agency may not send it (principals.authorize); `seen`:
    its mid's verdict (dedupe); `reply_to_missing`: its reply_to topic does not exist (an
    agency's replies always go to its own topic); `image_error`: its image is refused."""
    mke = mke_of(req)
    if refused is not None:
        return Reject([refused], "not_authorized")
    if seen.verdict == "duplicate":
        assert seen.cid is not None
        return Duplicate(seen.cid)
    if seen.verdict == "conflict":
        return Reject([FieldError(
            field="mid", code=Codes.DUPLICATE_MID,
            text=f"REJECT MKE/{mke} DUPLICATE MID/{req.mid} WITH DIFFERENT CONTENT",
        )], "duplicate_mid")
    if reply_to_missing and agency is None:
        return Reject([FieldError(
            field="reply_to", code=Codes.BAD_REPLY_TO,
            text=f"REJECT MKE/{mke} BAD REPLY_TO: TOPIC {req.reply_to} DOES NOT EXIST",
        )], "reply_to", default_reply_to=True)
    if image_error is not None:
        return Reject([FieldError(field="image", code=image_error.code,
                                  text=f"REJECT MKE/{mke} {image_error.text}")], "image")
    decision = route(req, directory, partition=partition, imns=imns)
    if isinstance(decision, Refusal):
        return Reject(decision.errors, "route")
    return decision


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
    # A shared IMN: keyed by its record's LNO (ImageOwner), so the leg reaches the store
    # that holds the image; an IMN never entered goes anywhere and is answered NOT ON FILE.
    return Route(expected=(LEADS, NCIC), key=directory.lno_of_imn(imn) or imn)


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
