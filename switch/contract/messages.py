"""Public message types of CONTRACT.md (version 1).

Every struct is keyword-only; every field added later must carry a default so old
readers and writers keep working (msgspec schema evolution). Unknown fields are
ignored on decode. Encoders and decoders are built once, here.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

MKE = Literal["EIM", "MII", "XIM", "QIM"]
SYSTEMS: tuple[str, ...] = ("LEADS", "NCIC")
System = Literal["LEADS", "NCIC"]

# Overall reply statuses.
COMPLETE: Final = "COMPLETE"
PARTIAL: Final = "PARTIAL"
PENDING: Final = "PENDING"
REJECTED: Final = "REJECTED"
ReplyStatus = Literal["COMPLETE", "PARTIAL", "PENDING", "REJECTED"]

# Leg statuses.
ACK: Final = "ACK"
NOT_FOUND: Final = "NOT_FOUND"
REJECT: Final = "REJECT"
SKIPPED: Final = "SKIPPED"
QUEUED: Final = "QUEUED"
TIMEOUT: Final = "TIMEOUT"
UNAVAILABLE: Final = "UNAVAILABLE"
LegStatus = Literal["ACK", "NOT_FOUND", "REJECT", "SKIPPED", "QUEUED", "TIMEOUT", "UNAVAILABLE"]


class Codes:
    """Reject codes on the wire (CONTRACT.md, 'Reject codes')."""

    INVALID_FIELD = "INVALID_FIELD"
    MISSING_FIELD = "MISSING_FIELD"
    NOT_ON_FILE = "NOT_ON_FILE"
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    ON_FILE = "ON_FILE"
    IMAGE_INVALID = "IMAGE_INVALID"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    DUPLICATE_MID = "DUPLICATE_MID"
    BAD_REPLY_TO = "BAD_REPLY_TO"
    TOO_LARGE = "TOO_LARGE"
    # Extensions (the contract says "at least").
    UNREADABLE = "UNREADABLE"
    SIMULATED_REJECT = "SIMULATED_REJECT"
    SYSTEM_UNAVAILABLE = "SYSTEM_UNAVAILABLE"
    IMN_EXHAUSTED = "IMN_EXHAUSTED"  # a requests partition used all 10^8 shared IMNs


# --------------------------------------------------------------------------- requests


class Request(msgspec.Struct, kw_only=True, frozen=True, tag_field="mke"):
    """Fields common to every format. `mke` is the union's tag."""

    mid: str
    ori: str
    term: str | None = None
    reply_to: str | None = None


class EnterImage(Request, tag="EIM", frozen=True, kw_only=True):
    lno: str
    imt: str
    doi: str
    image: bytes  # JSON: base64
    mis: str | None = None


class ModifyImage(Request, tag="MII", frozen=True, kw_only=True):
    imn: str
    image: bytes | None = None
    doi: str | None = None
    mis: str | None = None


class CancelImage(Request, tag="XIM", frozen=True, kw_only=True):
    imn: str
    doc: str


class QueryImage(Request, tag="QIM", frozen=True, kw_only=True):
    imn: str | None = None
    lno: str | None = None
    nic: str | None = None
    nam: str | None = None
    sex: str | None = None
    dob: str | None = None


AnyRequest = EnterImage | ModifyImage | CancelImage | QueryImage


def mke_of(req: Request) -> str:
    """A request's format: the union's tag, which msgspec keeps on the class."""
    tag = type(req).__struct_config__.tag
    assert isinstance(tag, str), type(req)
    return tag


# --------------------------------------------------------------------------- replies


class Leg(msgspec.Struct, kw_only=True, frozen=True):
    """One system's part of a reply."""

    status: LegStatus
    code: str | None = None
    text: str = ""
    imn: str | None = None
    ms: float | None = None


class FieldError(msgspec.Struct, kw_only=True, frozen=True):
    """A switch-level reject of one field."""

    field: str
    code: str
    text: str


class ImageRecord(msgspec.Struct, kw_only=True, frozen=True):
    """An image returned by a QIM."""

    system: str
    imn: str
    imt: str
    doi: str
    mis: str | None = None
    renewal_due: bool = False
    image: bytes = b""
    lno: str | None = None


class Reply(msgspec.Struct, kw_only=True, frozen=True):
    mid: str | None
    cid: str
    mke: str | None
    ori: str | None
    status: ReplyStatus
    duplicate: bool = False
    supplement: bool = False
    legs: dict[str, Leg] = {}
    errors: list[FieldError] = []
    images: list[ImageRecord] = []
    text: str = ""
    ts: str = ""


# --------------------------------------------------------------------------- other topics


class DeadLetter(msgspec.Struct, kw_only=True, frozen=True):
    """Input that is not a readable request, or whose outputs could not be written.

    `key` and `raw` are bounded and never hold image data (switch/contract/redact.py):
    an image is replaced by its size and SHA-256; `key_bytes` and `raw_bytes` give the
    sizes as received."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: str | None  # as received (first 256 bytes, redacted), decoded as UTF-8 with replacement
    raw: bytes  # the first 4 KiB, redacted; JSON: base64
    ts: str = ""
    key_bytes: int | None = None  # the key's size as received (None: no key)
    raw_bytes: int = 0  # the value's size as received


class AuditEntry(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=False):
    ts: str
    component: str
    event: str
    cid: str | None = None
    mid: str | None = None
    ori: str | None = None
    term: str | None = None
    mke: str | None = None
    lno: str | None = None
    imn: str | None = None
    nic: str | None = None
    image_sha256: str | None = None
    outcome: str | None = None
    detail: str | None = None
    # Who sent the request (issue 12): "User:agency-NAME" for an agency's own topic,
    # "trusted" for the public requests topic of a secured switch; null when plaintext.
    principal: str | None = None


class Latency(msgspec.Struct, kw_only=True, frozen=True):
    p50: float = 20.0
    p99: float = 200.0


ControlMode = Literal["up", "down_forward", "down_drop"]


class Control(msgspec.Struct, kw_only=True, frozen=True):
    system: System
    mode: ControlMode | None = None
    latency_ms: Latency | None = None
    reject_rate: float | None = None


# --------------------------------------------------------------------------- codecs, built once

json_encoder = msgspec.json.Encoder()
reply_decoder = msgspec.json.Decoder(Reply)
dead_letter_decoder = msgspec.json.Decoder(DeadLetter)
control_decoder = msgspec.json.Decoder(Control)


def encode(msg: msgspec.Struct) -> bytes:
    return json_encoder.encode(msg)
