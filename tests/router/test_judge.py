"""Every decision the router makes about one readable request (`judge`), without Kafka:
the order of the checks and what each one answers."""

from __future__ import annotations

from typing import Any

from switch.contract.internal import RecordEntry
from switch.contract.messages import Codes, EnterImage, FieldError, QueryImage
from switch.images.errors import ImageRejected
from switch.router.dedupe import Seen
from switch.router.directory import Directory
from switch.router.imns import ImnSequences
from switch.router.rules import Duplicate, Reject, Route, judge

SOR = RecordEntry(lno="X17A4394", rtype="SOR", ori="IL0160000", nic="X123456782",
                  nam="DOE, JOHN", sex="M", dob="19800101")
NEW = Seen("new")
REFUSED = FieldError(field="ori", code=Codes.NOT_AUTHORIZED, text="REJECT NOT AUTHORIZED")
BAD_IMAGE = ImageRejected(Codes.IMAGE_INVALID, "IMAGE INVALID: NOT A JPEG")


def eim(lno: str = SOR.lno) -> EnterImage:
    return EnterImage(mid="m1", ori=SOR.ori, lno=lno, imt="M", doi="20250101", image=b"x",
                      reply_to="switch.replies.x")


def decide(req: Any = None, **kw: Any) -> Reject | Duplicate | Route:
    directory = Directory()
    directory.put(SOR)
    args: dict[str, Any] = dict(agency=None, refused=None, seen=NEW, reply_to_missing=False,
                                image_error=None, directory=directory, partition=0,
                                imns=ImnSequences().batch())
    args.update(kw)
    return judge(req or eim(), **args)


def test_a_valid_request_is_routed() -> None:
    r = decide()
    assert isinstance(r, Route) and r.expected == ("LEADS", "NCIC")


def test_an_unauthorized_sender_is_refused_before_anything_else() -> None:
    r = decide(refused=REFUSED, seen=Seen("duplicate", "c0"), image_error=BAD_IMAGE)
    assert r == Reject([REFUSED], "not_authorized")


def test_the_same_mid_and_content_again_is_a_duplicate_of_the_original() -> None:
    assert decide(seen=Seen("duplicate", "c0"), image_error=BAD_IMAGE) == Duplicate("c0")


def test_the_same_mid_with_other_content_is_refused() -> None:
    r = decide(seen=Seen("conflict", "c0"))
    assert isinstance(r, Reject) and r.why == "duplicate_mid"
    assert r.errors[0].code == Codes.DUPLICATE_MID
    assert r.errors[0].text == "REJECT MKE/EIM DUPLICATE MID/m1 WITH DIFFERENT CONTENT"


def test_a_missing_reply_to_is_refused_on_the_default_topic_unless_an_agency_sent_it() -> None:
    r = decide(reply_to_missing=True, image_error=BAD_IMAGE)
    assert isinstance(r, Reject) and r.default_reply_to and r.why == "reply_to"
    assert r.errors[0].text == ("REJECT MKE/EIM BAD REPLY_TO: TOPIC switch.replies.x "
                                "DOES NOT EXIST")
    # An agency's replies go to its own topic whatever it asked: the image is judged next.
    r = decide(agency="cook", reply_to_missing=True, image_error=BAD_IMAGE)
    assert isinstance(r, Reject) and r.why == "image" and not r.default_reply_to


def test_a_refused_image_names_its_code() -> None:
    r = decide(image_error=BAD_IMAGE)
    assert r == Reject([FieldError(field="image", code=Codes.IMAGE_INVALID,
                                   text="REJECT MKE/EIM IMAGE INVALID: NOT A JPEG")], "image")


def test_routing_refusals_come_last() -> None:
    r = decide(eim(lno="Z99Z9999"))
    assert isinstance(r, Reject) and r.why == "route"
    assert r.errors[0].code == Codes.NOT_ON_FILE
    q = decide(QueryImage(mid="m2", ori=SOR.ori, lno=SOR.lno))
    assert isinstance(q, Route) and q.expected == ("LEADS", "NCIC")
