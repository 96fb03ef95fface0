"""Replies built by hand, as the correlator would write them."""

from __future__ import annotations

import re

from switch.contract.messages import FieldError, ImageRecord, Leg, Reply

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ORI = "IL0160000"
OTHER_ORI = "IL0990000"


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def eim_reply(
    *,
    mid: str = "eim-1",
    cid: str = "c-eim-1",
    ori: str = ORI,
    status: str = "COMPLETE",
    ncic: str = "ACK",
    supplement: bool = False,
    duplicate: bool = False,
) -> Reply:
    leads = Leg(status="ACK", imn="I000012345", ms=12.3,
                text="LEADS ACKNOWLEDGMENT EIM ORI/IL0160000 LNO/X17A4394 IMN/I000012345 IMT/M DOI/20230216")
    if ncic == "ACK":
        ncic_leg = Leg(status="ACK", imn="I000012345", ms=15.0,
                       text="NCIC  ACKNOWLEDGMENT EIM ORI/IL0160000 NIC/X000012345 LNO/X17A4394 "
                            "IMN/I000012345 IMT/M DOI/20230216")
    else:
        ncic_leg = Leg(status="QUEUED", text="NCIC  QUEUED - NCIC DID NOT ANSWER IN 10 S")
    legs = {"LEADS": leads, "NCIC": ncic_leg}
    return Reply(mid=mid, cid=cid, mke="EIM", ori=ori, status=status, supplement=supplement,  # type: ignore[arg-type]
                 duplicate=duplicate, legs=legs, text="\n".join(leg.text for leg in legs.values()),
                 ts="2025-01-10T15:40:12.345Z")


def reject_reply(*, mid: str = "bad-1", cid: str = "c-bad-1", ori: str = ORI) -> Reply:
    return Reply(
        mid=mid, cid=cid, mke="EIM", ori=ori, status="REJECTED",
        legs={"LEADS": Leg(status="REJECT", code="NOT_AUTHORIZED", ms=3.0,
                           text="LEADS REJECT NOT AUTHORIZED ORI/IL0160000 LNO/X17A4394"),
              "NCIC": Leg(status="REJECT", code="NOT_AUTHORIZED", ms=4.0,
                          text="NCIC  REJECT NOT AUTHORIZED ORI/IL0160000 NIC/X000012345")},
        text="LEADS REJECT NOT AUTHORIZED ORI/IL0160000 LNO/X17A4394\n"
             "NCIC  REJECT NOT AUTHORIZED ORI/IL0160000 NIC/X000012345",
        ts="2025-01-10T15:40:13.000Z",
    )


def qim_reply(*, mid: str = "q-1", cid: str = "c-q-1", imn: str = "X17A4394M0",
              image: bytes = b"\xff\xd8jpeg-bytes\xff\xd9") -> Reply:
    return Reply(
        mid=mid, cid=cid, mke="QIM", ori=ORI, status="COMPLETE",
        legs={"LEADS": Leg(status="ACK", imn=imn, ms=5.5,
                           text="LEADS ACKNOWLEDGMENT QIM LNO/X17A4394 1 IMAGE ON FILE"),
              "NCIC": Leg(status="SKIPPED", text="NCIC  SKIPPED - VOAY/MURDERER RECORD IS LEADS ONLY")},
        images=[ImageRecord(system="LEADS", imn=imn, imt="M", doi="20230216", mis="ANNUAL",
                            renewal_due=True, image=image)],
        text="LEADS ACKNOWLEDGMENT QIM LNO/X17A4394 1 IMAGE ON FILE\n"
             "NCIC  SKIPPED - VOAY/MURDERER RECORD IS LEADS ONLY",
        ts="2025-01-10T15:40:14.000Z",
    )


def switch_reject(*, mid: str = "sw-1") -> Reply:
    """A switch-level reject without `text`: the console builds the lines itself."""
    return Reply(mid=mid, cid="c-sw-1", mke="EIM", ori=ORI, status="REJECTED",
                 errors=[FieldError(field="doi", code="INVALID_FIELD",
                                    text="REJECT MKE/EIM INVALID DOI: 20231345 IS NOT A DATE")],
                 legs={"LEADS": Leg(status="SKIPPED", text="NOT SENT - REJECTED BY THE SWITCH")})
