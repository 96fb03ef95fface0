"""Messages on the switch's internal topics (not part of the public contract).

Router -> services: `LegRequest` on `<prefix>.leads.requests` / `<prefix>.ncic.requests`,
keyed by the record's LNO (NIC for NCIC) so one record's entries stay in order.
Router and services -> correlator: `Manifest`, `LegAnswer` and `DuplicateNotice` on
`<prefix>.responses`, keyed by cid, so one transaction's messages share a partition
and the manifest comes first. LEADS -> router: `RecordEntry` on `<prefix>.records`
(compacted, keyed by LNO), the record directory, and `ImageOwner` (keyed `imn/<IMN>`).
All are JSON (msgspec), so `kafka-console-consumer` shows them readably.
"""

from __future__ import annotations

import msgspec

from switch.contract import fields as F
from switch.contract.messages import AnyRequest, ImageRecord, Leg


class RecordEntry(msgspec.Struct, kw_only=True, frozen=True):
    """The record directory: what the router needs to route by the record on file."""

    lno: str
    rtype: str  # "SOR" (sex offender, has a NIC) or "VOAY" (LEADS only)
    ori: str  # record owner
    nic: str | None = None
    nam: str | None = None
    sex: str | None = None
    dob: str | None = None


class ImageOwner(msgspec.Struct, kw_only=True, frozen=True):
    """On the records topic too, key `imn/<IMN>`: the record a shared IMN was entered on,
    published by LEADS (at start-up for every shared image on file, then as it enters
    them). The router keys a request addressed by a shared IMN by that LNO, so it reaches
    the partition (and the service instance) whose store holds the image."""

    imn: str
    lno: str


IMAGE_OWNER_PREFIX = "imn/"


def image_owner_key(imn: str) -> str:
    return IMAGE_OWNER_PREFIX + imn


class LegRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One system's share of a transaction, sent by the router."""

    cid: str
    system: str
    deadline: float  # the router's wall clock + timeout_s: informational only (clocks differ)
    request: AnyRequest  # image, if any, already normalised by the router
    rtype: str | None = None  # from the record directory, when the request names a record
    nic: str | None = None
    imn: str | None = None  # EIM on a sex-offender record: the shared IMN the router allocated
    image_sha256: str | None = None
    # Who sent the request (switch/router/principals.py), for the services' audit entries.
    principal: str | None = None
    # The deadline as a duration from the broker's append time of this record (the topic
    # uses LogAppendTime); see switch/kafka/brokerclock.py.
    timeout_s: float = 10.0


class Manifest(msgspec.Struct, kw_only=True, frozen=True, tag="manifest", tag_field="kind"):
    """Written by the router, keyed by cid, before any leg request is sent."""

    cid: str
    mid: str
    ori: str
    mke: str
    expected: list[str]
    skipped: dict[str, str]  # system -> reason
    deadline: float  # the router's wall clock + timeout_s: informational only (clocks differ)
    created: float
    reply_to: str | None = None
    term: str | None = None
    # Echoed in the operator's lines.
    lno: str | None = None
    imn: str | None = None
    nic: str | None = None
    imt: str | None = None
    doi: str | None = None
    doc: str | None = None
    # The deadline as a duration from the broker's append time of this record.
    timeout_s: float = 10.0
    # The router's hop in the transaction's trace (W3C traceparent, switch/tracing.py): a
    # reply the correlator makes without a record in hand (a deadline) stays in the trace.
    traceparent: str | None = None
    # Who sent the request (switch/router/principals.py).
    principal: str | None = None


class LegAnswer(msgspec.Struct, kw_only=True, frozen=True, tag="answer", tag_field="kind"):
    """A system's answer to a leg request, keyed by cid."""

    cid: str
    system: str
    leg: Leg
    images: list[ImageRecord] = []
    answered: float = 0.0  # epoch seconds


class DuplicateNotice(msgspec.Struct, kw_only=True, frozen=True, tag="duplicate", tag_field="kind"):
    """A request resubmitted with the same mid and content: answer with the original reply."""

    cid: str  # the original transaction's cid
    mid: str
    reply_to: str | None = None
    received: float = 0.0
    # The requester's ORI: mids are scoped by ORI, so it is the original's ORI too, and
    # even a "no longer held" reject names it.
    ori: str | None = None
    # Who sent the resubmission (switch/router/principals.py), for the correlator's audit.
    principal: str | None = None


class Decision(msgspec.Struct, kw_only=True, frozen=True, tag="decision", tag_field="kind"):
    """No longer written (the correlator's changelog carries the same facts); still read
    from old `<prefix>.responses` logs, so an upgrade does not send a reply twice.

    event "first": the transaction's one (non-supplement) reply; `missing` names the legs
    that had not answered by then (system -> QUEUED or TIMEOUT). event "supplement": a
    supplement sent for the late answer of leg `leg`.
    """

    cid: str
    event: str
    leg: str | None = None
    missing: dict[str, str] = {}
    ts: float = 0.0


ResponseMessage = Manifest | LegAnswer | DuplicateNotice | Decision


# ---------------------------------------------------------------- the correlator's changelog
# `<prefix>.correlator`, compacted, keyed by cid, partition p holding the state of the
# transactions of `<prefix>.responses` partition p; written in the same Kafka transaction
# as the replies and input offsets it accounts for.


class Waiting(msgspec.Struct, kw_only=True, frozen=True, tag="waiting", tag_field="kind"):
    """A transaction that has had its first reply but still waits (QUEUED legs, or the
    late grace of TIMEOUT query legs)."""

    manifest: Manifest
    start: float  # the manifest's broker append time, epoch seconds
    offset: int  # the manifest's offset in responses
    answers: list[LegAnswer] = []
    missing: dict[str, str] = {}
    supplemented: list[str] = []
    grace_until: float | None = None


class Finished(msgspec.Struct, kw_only=True, frozen=True, tag="finished", tag_field="kind"):
    """A finished transaction's final reply, for resubmitted mids (until the mid retention
    has passed: then a tombstone)."""

    cid: str
    ori: str
    mid: str
    reply: msgspec.Raw  # the final Reply, as encoded JSON (inline)
    reply_to: str | None = None
    done_at: float = 0.0  # broker time, epoch seconds
    # The SHA-256 of each of the reply's images, in order, when `reply` is kept without
    # their bytes: those are in the changelog once, keyed `~image:<sha256>` (raw bytes;
    # switch/correlator/images.py). None: the images are inline.
    images: list[str] | None = None


class Checkpoint(msgspec.Struct, kw_only=True, frozen=True, tag="checkpoint", tag_field="kind"):
    """Key `~checkpoint`: a restore replays responses from `offset` (the lowest offset of
    a manifest without its first reply, else the committed offset). `committed` is the
    responses offset committed in the same transaction: a restore never resumes before
    it, even when the group coordinator still answers an older offset (after a broker
    restart it can, until the transaction's offset commit is materialised)."""

    offset: int
    committed: int | None = None


CHECKPOINT_KEY = "~checkpoint"
ChangelogRecord = Waiting | Finished | Checkpoint
changelog_decoder = msgspec.json.Decoder(ChangelogRecord)

response_decoder = msgspec.json.Decoder(ResponseMessage)
leg_request_decoder = msgspec.json.Decoder(LegRequest)
record_decoder = msgspec.json.Decoder(RecordEntry)
image_owner_decoder = msgspec.json.Decoder(ImageOwner)


class ImnSequence(msgspec.Struct, kw_only=True, frozen=True, tag="sequence", tag_field="kind"):
    """On `<prefix>.imns` (compacted), keyed by the requests partition: the next shared-IMN
    sequence number of that partition. Written by the router in the same Kafka transaction
    as the leg requests that used the numbers below it."""

    partition: int
    next: int


class ImnFloor(msgspec.Struct, kw_only=True, frozen=True, tag="floor", tag_field="kind"):
    """On `<prefix>.imns`, key `floor`: published by LEADS at start-up from its store, the
    highest shared-IMN sequence number it holds per partition digit. The router never
    allocates at or below it, so recreated topics cannot restart the numbering."""

    highest: dict[int, int]  # partition digit -> highest 8-digit sequence number on file
    published: float = 0.0


ImnState = ImnSequence | ImnFloor

FLOOR_KEY = "floor"  # the key of LEADS's ImnFloor on `<prefix>.imns`


def parse_shared_imn(imn: str) -> tuple[int, int] | None:
    """(partition digit, sequence) of a shared IMN, None for any other IMN."""
    if F.imn_kind(imn) != "SHARED":
        return None
    return int(imn[1]), int(imn[2:])


def floor_from_imns(imns: list[str]) -> dict[int, int]:
    """The highest sequence number per partition digit among shared IMNs (LEADS's floor)."""
    highest: dict[int, int] = {}
    for imn in imns:
        parsed = parse_shared_imn(imn)
        if parsed is not None:
            digit, seq = parsed
            highest[digit] = max(highest.get(digit, -1), seq)
    return highest


def make_floor(imns: list[str], published: float) -> ImnFloor:
    return ImnFloor(highest=floor_from_imns(imns), published=published)


imn_state_decoder = msgspec.json.Decoder(ImnState)
