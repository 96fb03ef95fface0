"""Builders shared by the service tests: records, images, leg requests."""

from __future__ import annotations

import io
import time
import uuid
from functools import cache

from PIL import Image

from switch.contract.fields import make_nic
from switch.contract.internal import LegRequest, RecordEntry
from switch.contract.messages import AnyRequest

OWNER = "IL0160000"
OTHER = "IL0310000"
SOR_LNO = "X17A4394"
SOR_NIC = make_nic("X", "12345678")
VOAY_LNO = "V22B1234"
VOAY_OWNER = "IL0990300"

SOR = RecordEntry(
    lno=SOR_LNO, rtype="SOR", ori=OWNER, nic=SOR_NIC, nam="SMITH, JOHN A", sex="M", dob="19800101"
)
VOAY = RecordEntry(
    lno=VOAY_LNO, rtype="VOAY", ori=VOAY_OWNER, nam="DOE, RICHARD", sex="M", dob="19700505"
)
RECORDS = [SOR, VOAY]


@cache
def jpeg(shade: int) -> bytes:
    """A small real JPEG; a different `shade` gives different bytes."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 10), (shade % 256, (shade * 7) % 256, (shade * 13) % 256)).save(
        buf, "JPEG", quality=90
    )
    return buf.getvalue()


def leg(
    request: AnyRequest,
    system: str = "LEADS",
    *,
    cid: str | None = None,
    imn: str | None = None,
    deadline: float | None = None,
    timeout_s: float = 30.0,
) -> LegRequest:
    return LegRequest(
        cid=cid or uuid.uuid4().hex,
        system=system,
        deadline=deadline if deadline is not None else time.time() + timeout_s,
        request=request,
        imn=imn,
        timeout_s=timeout_s,
    )


def mid() -> str:
    return f"m-{uuid.uuid4().hex[:16]}"
