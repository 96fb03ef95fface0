"""The rules a system of record enforces (DOMAIN.md), applied to its store. No Kafka.

`serve_leg` decides what a system does with one leg request (drop it, refuse it, apply
it) and is what the Kafka loop calls; `apply_request` applies one; `answer_unapplied`
answers one without applying it (a simulated reject, a system that is down). Both are
idempotent by correlation id: the answer to an entry (EIM, MII, XIM) is stored in
the same transaction as its change, and a redelivery gets that stored answer back
and changes nothing.

Choices of this simulator **[SIM]**, beyond DOMAIN.md:
- A query changes nothing, so its answer is not stored (it would hold every image
  on file); a redelivered QIM is answered afresh from what is on file then.
- A modify or cancel of a cancelled IMN is `NOT_ON_FILE`, the text saying when it
  was cancelled.
- Checks run in this order: record on file, owner, field sanity (DOI not before DOB),
  duplicate image, image limit. A duplicate is therefore named as such even when the
  type's limit is also reached.
- A sex-offender image is stored under the shared IMN the router allocated
  (`LegRequest.imn`); without one (unit tests, a hand-made request) the IMN is
  derived from the cid: `I` + the first 9 decimal digits of int(sha256(cid)) mod 10^9,
  so LEADS and NCIC still agree.
- A VOAY image's IMN is LNO + IMT + a digit: the digit after the last one used for
  that LNO and IMT (mod 10), skipping digits of active images.
- A duplicate-entry reject returns the image on file in `images`, without its bytes
  (they are the sender's own).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec

from services.controls import DOWN_DROP, Controls
from services.store import ACTIVE, ImageRow, Store, StoreFull
from switch.contract.internal import LegAnswer, LegRequest, RecordEntry
from switch.contract.messages import (
    CancelImage,
    Codes,
    EnterImage,
    ImageRecord,
    Leg,
    LegStatus,
    ModifyImage,
    QueryImage,
)

ACK: LegStatus = "ACK"
NOT_FOUND: LegStatus = "NOT_FOUND"
REJECT: LegStatus = "REJECT"
UNAVAILABLE: LegStatus = "UNAVAILABLE"

# Active images per record, per system, by image type.
LIMITS: dict[str, int] = {"M": 1, "S": 1, "I": 10}

_encoder = msgspec.json.Encoder()
_answer_decoder = msgspec.json.Decoder(LegAnswer)


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying (or refusing) a leg request produced."""

    answer: LegAnswer
    encoded: bytes  # the answer as it goes on the responses topic
    redelivered: bool = False  # True: the stored answer of an earlier delivery
    changed: bool = False  # the store was changed by this call
    lno: str | None = None
    imn: str | None = None
    nic: str | None = None
    image_sha256: str | None = None


@dataclass(slots=True)
class _Result:
    leg: Leg
    images: list[ImageRecord] = field(default_factory=list)
    changed: bool = False
    lno: str | None = None
    imn: str | None = None
    nic: str | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class DeadlinePassed:
    """A query whose deadline passed while it waited: dropped unanswered (the correlator
    has answered TIMEOUT for it)."""

    late_s: float


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to send, after `delay_s` of simulated latency."""

    applied: Applied
    delay_s: float = 0.0
    failed: Exception | None = None  # applying raised: refused as an internal error


# --------------------------------------------------------------------------- entry points


def serve_leg(
    store: Store,
    leg: LegRequest,
    controls: Controls,
    *,
    late_s: float | None,
    now: datetime,
    renewal_days: int = 365,
    others: Sequence[Store] = (),
) -> DeadlinePassed | Answer:
    """What a system does with one leg request, given how far past its deadline it is
    (`late_s`, None when it is not; deadline.py), in this order:

    - a query past its deadline is dropped (an entry is applied whenever it comes);
    - a system down (`down_drop`) answers UNAVAILABLE at once, without applying;
    - else a latency is drawn, then whether to simulate a reject (REJECT, not applied);
    - else the request is applied.

    A stored answer (a redelivery) is sent without the latency. A failure of the store
    is refused UNAVAILABLE so the loop goes on; but a full store (StoreFull) raises: the
    whole batch is rolled back and nothing of it may be answered (storefull.py).

    `others`: the system's other partition stores, which a query also reads (see _query).
    """
    if isinstance(leg.request, QueryImage) and late_s is not None:
        return DeadlinePassed(late_s)
    delay = 0.0
    try:
        if controls.mode == DOWN_DROP:
            applied = answer_unapplied(store, leg, UNAVAILABLE, code=Codes.SYSTEM_UNAVAILABLE,
                                       text="UNAVAILABLE - SYSTEM DOWN, NOT APPLIED", now=now)
        else:
            delay = controls.sample_latency_s()
            if controls.should_reject():
                applied = answer_unapplied(store, leg, REJECT, code=Codes.SIMULATED_REJECT,
                                           text="REJECT SIMULATED REJECT", now=now, delay_s=delay)
            else:
                applied = apply_request(store, leg, now=now, renewal_days=renewal_days,
                                        delay_s=delay, others=others)
    except StoreFull:
        raise
    except Exception as exc:
        answer = LegAnswer(
            cid=leg.cid,
            system=store.system,
            leg=Leg(status=UNAVAILABLE, code=Codes.SYSTEM_UNAVAILABLE,
                    text=f"{store.system:<5} UNAVAILABLE - INTERNAL ERROR, NOT APPLIED"),
            answered=now.timestamp(),
        )
        return Answer(Applied(answer=answer, encoded=_encoder.encode(answer)), delay, failed=exc)
    return Answer(applied, 0.0 if applied.redelivered else delay)



def apply_request(
    store: Store,
    leg: LegRequest,
    *,
    now: datetime | None = None,
    renewal_days: int = 365,
    delay_s: float = 0.0,
    others: Sequence[Store] = (),
) -> Applied:
    """Apply one leg request to `store` and return the answer (stored for entries).

    `delay_s` is the simulated service time: the answer is stamped as answered then.
    `others`: the system's other partition stores, read by queries only (see _query).
    """
    now = now or datetime.now(UTC)
    with store.transaction():
        stored = _stored(store, leg.cid)
        if stored is not None:
            return stored
        req = leg.request
        system = store.system
        if isinstance(req, EnterImage):
            result = _enter(store, system, leg, req, now)
        elif isinstance(req, ModifyImage):
            result = _modify(store, system, req, now)
        elif isinstance(req, CancelImage):
            result = _cancel(store, system, req, now)
        else:
            result = _query(store, system, req, now.date(), renewal_days, others)
        answer = LegAnswer(
            cid=leg.cid,
            system=system,
            leg=result.leg,
            images=result.images,
            answered=now.timestamp() + delay_s,
        )
        encoded = _encoder.encode(answer)
        if not isinstance(req, QueryImage):
            store.record_applied(leg.cid, encoded, now.timestamp())
        return Applied(
            answer=answer,
            encoded=encoded,
            changed=result.changed,
            lno=result.lno,
            imn=result.imn,
            nic=result.nic,
            image_sha256=result.sha256,
        )


def answer_unapplied(
    store: Store,
    leg: LegRequest,
    status: LegStatus,
    *,
    code: str | None,
    text: str,
    now: datetime | None = None,
    delay_s: float = 0.0,
) -> Applied:
    """Answer without applying: a simulated reject, or UNAVAILABLE from a dropped system.

    An entry already applied keeps its stored answer; otherwise this answer is stored
    for entries, so a redelivery gets the same answer again.
    """
    now = now or datetime.now(UTC)
    with store.transaction():
        stored = _stored(store, leg.cid)
        if stored is not None:
            return stored
        answer = LegAnswer(
            cid=leg.cid,
            system=store.system,
            leg=Leg(status=status, code=code, text=_line(store.system, text)),
            answered=now.timestamp() + delay_s,
        )
        encoded = _encoder.encode(answer)
        if not isinstance(leg.request, QueryImage):
            store.record_applied(leg.cid, encoded, now.timestamp())
        return Applied(answer=answer, encoded=encoded)


def shared_imn_for(cid: str) -> str:
    """The sex-offender IMN derived from a cid when the router did not allocate one."""
    number = int.from_bytes(hashlib.sha256(cid.encode()).digest(), "big") % 1_000_000_000
    return f"I{number:09d}"


def renewal_due(doi: str, today: date, renewal_days: int = 365) -> bool:
    """True when the photo dated `doi` (CCYYMMDD) is more than `renewal_days` old."""
    d = _date(doi)
    return d is not None and today - d > timedelta(days=renewal_days)


# --------------------------------------------------------------------------- the four formats


def _enter(
    store: Store, system: str, leg: LegRequest, req: EnterImage, now: datetime
) -> _Result:
    record = store.record_by_lno(req.lno)
    if record is None:
        return _reject(system, Codes.NOT_ON_FILE, f"LNO/{req.lno}", lno=req.lno)
    denied = _owner_check(system, req.ori, record)
    if denied is not None:
        return denied
    bad = _doi_check(system, req.doi, record)
    if bad is not None:
        return bad
    if req.imt not in LIMITS:
        return _reject(system, Codes.INVALID_FIELD, f"IMT/{req.imt} IS NOT M, S OR I", lno=req.lno)
    sha = hashlib.sha256(req.image).hexdigest()
    active = store.active_images(record.lno)
    for image in active:
        if image.sha256 == sha:
            return _Result(
                leg=Leg(
                    status=REJECT,
                    code=Codes.ON_FILE,
                    imn=image.imn,
                    text=_line(
                        system,
                        "REJECT ON FILE DUPLICATE IMAGE",
                        f"LNO/{record.lno}",
                        f"IMN/{image.imn}",
                        f"IMT/{image.imt}",
                        f"DOI/{image.doi}",
                    ),
                ),
                images=[_image_record(system, image, with_bytes=False)],
                lno=record.lno,
                nic=record.nic,
                imn=image.imn,
                sha256=sha,
            )
    same_type = [i for i in active if i.imt == req.imt]
    if len(same_type) >= LIMITS[req.imt]:
        last = same_type[-1]
        limit = LIMITS[req.imt]
        what = f"IMT/{req.imt} IMN/{last.imn} DOI/{last.doi} ALREADY ON FILE"
        if limit > 1:
            what = f"IMT/{req.imt} LIMIT {limit} REACHED, LAST IMN/{last.imn} DOI/{last.doi}"
        return _Result(
            leg=Leg(
                status=REJECT,
                code=Codes.ON_FILE,
                imn=last.imn,
                text=_line(system, "REJECT ON FILE", f"LNO/{record.lno}", what),
            ),
            lno=record.lno,
            nic=record.nic,
            imn=last.imn,
            sha256=sha,
        )
    if record.rtype == "SOR":
        imn = leg.imn or shared_imn_for(leg.cid)
        on_file = store.image_by_imn(imn)
        if on_file is not None and on_file.status == ACTIVE:
            return _reject(
                system, Codes.ON_FILE, f"IMN/{imn} ALREADY ON FILE", lno=record.lno, imn=imn
            )
    else:
        imn = _next_voay_imn(store, record.lno, req.imt, {i.imn for i in active})
    store.insert_image(
        imn=imn,
        lno=record.lno,
        imt=req.imt,
        doi=req.doi,
        mis=_mis(req.mis),
        jpeg=req.image,
        sha256=sha,
        entered=_ts(now),
        cid=leg.cid,
    )
    text = _line(
        system,
        "ACKNOWLEDGMENT EIM",
        f"ORI/{req.ori}",
        f"NIC/{record.nic}" if system == "NCIC" and record.nic else "",
        f"LNO/{record.lno}",
        f"IMN/{imn}",
        f"IMT/{req.imt}",
        f"DOI/{req.doi}",
    )
    return _Result(
        leg=Leg(status=ACK, imn=imn, text=text),
        changed=True,
        lno=record.lno,
        nic=record.nic,
        imn=imn,
        sha256=sha,
    )


def _modify(store: Store, system: str, req: ModifyImage, now: datetime) -> _Result:
    found = _image_on_file(store, system, req.imn)
    if isinstance(found, _Result):
        return found
    image, record = found
    denied = _owner_check(system, req.ori, record, imn=req.imn)
    if denied is not None:
        return denied
    if req.image is None and req.doi is None and req.mis is None:
        return _reject(
            system, Codes.MISSING_FIELD, f"IMN/{req.imn} NOTHING TO MODIFY", lno=record.lno
        )
    if req.doi is not None:
        bad = _doi_check(system, req.doi, record)
        if bad is not None:
            return bad
    sha = image.sha256
    jpeg = image.jpeg
    changed: list[str] = []
    if req.image is not None:
        sha = hashlib.sha256(req.image).hexdigest()
        jpeg = req.image
        for other in store.active_images(record.lno):
            if other.id != image.id and other.sha256 == sha:
                return _reject(
                    system,
                    Codes.ON_FILE,
                    f"DUPLICATE IMAGE IMN/{other.imn} LNO/{record.lno}",
                    lno=record.lno,
                    imn=other.imn,
                )
        changed.append("IMAGE")
    doi = req.doi if req.doi is not None else image.doi
    if req.doi is not None:
        changed.append("DOI")
    mis = _mis(req.mis) if req.mis is not None else image.mis
    if req.mis is not None:
        changed.append("MIS")
    store.modify_image(image.id, doi=doi, mis=mis, jpeg=jpeg, sha256=sha, modified=_ts(now))
    text = _line(
        system,
        "ACKNOWLEDGMENT MII",
        f"ORI/{req.ori}",
        f"LNO/{record.lno}",
        f"IMN/{image.imn}",
        f"IMT/{image.imt}",
        f"DOI/{doi}",
        f"CHANGED/{','.join(changed)}",
    )
    return _Result(
        leg=Leg(status=ACK, imn=image.imn, text=text),
        changed=True,
        lno=record.lno,
        nic=record.nic,
        imn=image.imn,
        sha256=sha,
    )


def _cancel(store: Store, system: str, req: CancelImage, now: datetime) -> _Result:
    found = _image_on_file(store, system, req.imn)
    if isinstance(found, _Result):
        return found
    image, record = found
    denied = _owner_check(system, req.ori, record, imn=req.imn)
    if denied is not None:
        return denied
    store.cancel_image(image.id, doc=req.doc, cancelled=_ts(now))
    text = _line(
        system,
        "ACKNOWLEDGMENT XIM",
        f"ORI/{req.ori}",
        f"LNO/{record.lno}",
        f"IMN/{image.imn}",
        f"IMT/{image.imt}",
        f"DOC/{req.doc}",
    )
    return _Result(
        leg=Leg(status=ACK, imn=image.imn, text=text),
        changed=True,
        lno=record.lno,
        nic=record.nic,
        imn=image.imn,
        sha256=image.sha256,
    )


def _query(
    store: Store, system: str, req: QueryImage, today: date, renewal_days: int,
    others: Sequence[Store] = (),
) -> _Result:
    """A query reads the leg's partition store first. An LNO's record is only ever there
    (the router keys legs by LNO); a query by IMN or NIC the router could not resolve to
    an LNO, and a name search (records of one name may hash to any partition), also read
    `others`, the system's other partition stores (read only; entries never touch them)."""
    images: list[ImageRow] = []
    records: list[tuple[RecordEntry, Store]] = []
    if req.imn:
        key = f"IMN/{req.imn}"
        for s in (store, *others):
            image = s.image_by_imn(req.imn)
            if image is not None and image.status == ACTIVE:
                images = [image]
                rec = s.record_by_lno(image.lno)
                records = [(rec, s)] if rec else []
                break
    elif req.lno:
        key = f"LNO/{req.lno}"
        rec = store.record_by_lno(req.lno)
        records = [(rec, store)] if rec else []
    elif req.nic:
        key = f"NIC/{req.nic}"
        for s in (store, *others):
            if (rec := s.record_by_nic(req.nic)) is not None:
                records = [(rec, s)]
                break
    elif req.nam and req.sex and req.dob:
        key = f"NAM/{req.nam} SEX/{req.sex} DOB/{req.dob}"
        records = sorted(((r, s) for s in (store, *others)
                          for r in s.records_by_person(req.nam, req.sex, req.dob)),
                         key=lambda found: found[0].lno)
    else:
        return _reject(system, Codes.MISSING_FIELD, "QIM NEEDS IMN, LNO, NIC OR NAM/SEX/DOB")
    if not req.imn:
        for rec, s in records:
            images.extend(s.active_images(rec.lno))
    first = records[0][0] if records else None
    lno = first.lno if first else None
    nic = first.nic if first else None
    if not records and not images:
        return _Result(
            leg=Leg(status=NOT_FOUND, imn=req.imn, text=_line(system, "NOT FOUND QIM", key,
                                                              "NO RECORD ON FILE")),
            lno=req.lno,
            nic=req.nic,
            imn=req.imn,
        )
    if not images:
        return _Result(
            leg=Leg(status=NOT_FOUND, imn=req.imn, text=_line(system, "NOT FOUND QIM", key,
                                                              "NO IMAGE ON FILE")),
            lno=lno,
            nic=nic,
            imn=req.imn,
        )
    found = [_image_record(system, i, today=today, renewal_days=renewal_days) for i in images]
    due = sum(1 for i in found if i.renewal_due)
    count = f"{len(found)} IMAGE{'S' if len(found) != 1 else ''} ON FILE"
    text = _line(
        system,
        "ACKNOWLEDGMENT QIM",
        key,
        f"LNO/{lno}" if lno and not req.lno and len(records) == 1 else "",
        count,
        f"{due} DUE FOR RENEWAL" if due else "",
    )
    return _Result(
        leg=Leg(status=ACK, imn=images[0].imn if len(images) == 1 else None, text=text),
        images=found,
        lno=lno,
        nic=nic,
        imn=req.imn,
    )


# --------------------------------------------------------------------------- helpers


def _stored(store: Store, cid: str) -> Applied | None:
    raw = store.applied_answer(cid)
    if raw is None:
        return None
    answer = _answer_decoder.decode(raw)
    return Applied(answer=answer, encoded=raw, redelivered=True, imn=answer.leg.imn)


def _image_on_file(
    store: Store, system: str, imn: str
) -> tuple[ImageRow, RecordEntry] | _Result:
    image = store.image_by_imn(imn)
    if image is None:
        return _reject(system, Codes.NOT_ON_FILE, f"IMN/{imn}", imn=imn)
    if image.status != ACTIVE:
        when = f" ON {image.doc}" if image.doc else ""
        return _reject(
            system, Codes.NOT_ON_FILE, f"IMN/{imn} CANCELLED{when}", lno=image.lno, imn=imn
        )
    record = store.record_by_lno(image.lno)
    if record is None:  # an image always belongs to a record (foreign key); be safe anyway
        return _reject(system, Codes.NOT_ON_FILE, f"IMN/{imn}", imn=imn)
    return image, record


def _owner_check(
    system: str, ori: str, record: RecordEntry, *, imn: str | None = None
) -> _Result | None:
    if ori == record.ori:
        return None
    return _reject(
        system,
        Codes.NOT_AUTHORIZED,
        f"ORI/{ori} IS NOT THE OWNER OF LNO/{record.lno}",
        lno=record.lno,
        nic=record.nic,
        imn=imn,
    )


def _doi_check(system: str, doi: str, record: RecordEntry) -> _Result | None:
    if record.dob and doi < record.dob:
        return _reject(
            system,
            Codes.INVALID_FIELD,
            f"DOI/{doi} IS BEFORE DOB/{record.dob} OF LNO/{record.lno}",
            lno=record.lno,
            nic=record.nic,
        )
    return None


def _reject(
    system: str,
    code: str,
    detail: str,
    *,
    lno: str | None = None,
    nic: str | None = None,
    imn: str | None = None,
) -> _Result:
    text = _line(system, f"REJECT {code.replace('_', ' ')}", detail)
    return _Result(
        leg=Leg(status=REJECT, code=code, text=text, imn=imn), lno=lno, nic=nic, imn=imn
    )


def _next_voay_imn(store: Store, lno: str, imt: str, active: set[str]) -> str:
    last = store.last_imn(lno, imt)
    start = (int(last[-1]) + 1) % 10 if last and last[-1].isdigit() else 0
    for step in range(10):
        imn = f"{lno}{imt}{(start + step) % 10}"
        if imn not in active:
            return imn
    # Unreachable while no type allows more than 10 active images.
    raise AssertionError(f"no free IMN digit for {lno} {imt}")


def _image_record(
    system: str,
    image: ImageRow,
    *,
    today: date | None = None,
    renewal_days: int = 365,
    with_bytes: bool = True,
) -> ImageRecord:
    return ImageRecord(
        system=system,
        imn=image.imn,
        imt=image.imt,
        doi=image.doi,
        mis=image.mis,
        renewal_due=renewal_due(image.doi, today, renewal_days) if today else False,
        image=image.jpeg if with_bytes else b"",
        lno=image.lno,
    )


def _line(system: str, *parts: str) -> str:
    """One operator line: the system name padded to 5 characters, then the parts."""
    return " ".join([f"{system:<5}", *(p for p in parts if p)])


def _mis(mis: str | None) -> str | None:
    return mis.upper() if mis else None


def _date(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _ts(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
