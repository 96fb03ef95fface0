"""The operator's text form: parse, format, round trip (switch/contract/textform.py)."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from switch.contract.messages import AnyRequest, EnterImage, QueryImage
from switch.contract.textform import (
    CODES,
    TextFormError,
    format_text,
    parse_text,
    text_to_dict,
)
from switch.contract.validate import RequestInvalid
from tests.contract.contract_strategies import TODAY, requests

BULLETIN = "EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20230216.MIS/ANNUAL PHOTO."
_ambiguous = re.compile(rf"\.(?:{'|'.join(CODES)})/", re.IGNORECASE).search


def test_bulletin_example() -> None:
    req = parse_text(BULLETIN, image=b"jpeg", mid="m-1", today=TODAY)
    assert req == EnterImage(
        mid="m-1",
        ori="IL0160000",
        lno="X17A4394",
        imt="M",
        doi="20230216",
        mis="ANNUAL PHOTO",
        image=b"jpeg",
    )
    assert format_text(req) == BULLETIN


def test_mid_generated_when_absent() -> None:
    a = parse_text(BULLETIN, image=b"x", today=TODAY)
    b = parse_text(BULLETIN, image=b"x", today=TODAY)
    assert a.mid != b.mid
    assert re.fullmatch(r"[0-9a-f]{32}", a.mid)


def test_codes_any_case_values_kept_and_whitespace_trimmed() -> None:
    d = text_to_dict("  qim.IL0160000.nam/smith, john.Sex/M.dob/19800101.\n", mid="m")
    assert d == {
        "mid": "m",
        "mke": "QIM",
        "ori": "IL0160000",
        "nam": "smith, john",
        "sex": "M",
        "dob": "19800101",
    }


def test_dots_inside_mis() -> None:
    text = "MII.IL0160000.IMN/I000012345.MIS/SEEN AT 10 A.M. ON 3.4..DOI/20240101."
    d = text_to_dict(text, mid="m")
    assert d["mis"] == "SEEN AT 10 A.M. ON 3.4."
    assert d["doi"] == "20240101"
    req = parse_text(text, mid="m", today=TODAY)
    assert format_text(req) == "MII.IL0160000.IMN/I000012345.DOI/20240101.MIS/SEEN AT 10 A.M. ON 3.4.."


def test_mis_holding_a_field_code_cannot_be_written() -> None:
    req = EnterImage(
        mid="m", ori="IL0160000", lno="X17A4394", imt="M", doi="20230216", image=b"x",
        mis="SEE.LNO/X17A4394",
    )  # fmt: skip
    with pytest.raises(TextFormError):
        format_text(req)


def test_ori_may_be_left_out_and_is_then_missing() -> None:
    assert "ori" not in text_to_dict("QIM.LNO/X17A4394.", mid="m")
    with pytest.raises(RequestInvalid) as info:
        parse_text("QIM.LNO/X17A4394.", mid="m", today=TODAY)
    assert [e.text for e in info.value.errors] == ["REJECT MKE/QIM MISSING ORI"]


@pytest.mark.parametrize(
    "text",
    [
        "EIM.IL0160000.LNO/X17A4394",  # no final '.'
        "EIM.IL0160000.FOO/BAR.",  # unknown code
        "EIM.IL0160000.LNO/X17A4394.LNO/X17A4395.",  # twice
        "EIM.IL0160000.LNOX17A4394.",  # no '/'
        "LNO/X17A4394.",  # no MKE
        "",
    ],
)
def test_grammar_errors(text: str) -> None:
    with pytest.raises(TextFormError):
        text_to_dict(text)


def test_field_errors_come_from_parse_request() -> None:
    with pytest.raises(RequestInvalid) as info:
        parse_text("EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20231345.", image=b"x", today=TODAY)
    assert [e.text for e in info.value.errors] == ["REJECT MKE/EIM INVALID DOI: 20231345 IS NOT A DATE"]


def test_term_and_reply_to_travel_beside_the_text() -> None:
    req = parse_text("QIM.IL0160000.NIC/X123456782.", mid="m", term="T1", reply_to="switch.replies.c1")
    assert isinstance(req, QueryImage)
    assert (req.term, req.reply_to, req.nic) == ("T1", "switch.replies.c1", "X123456782")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_round_trip_all_four_keys(req: AnyRequest) -> None:
    req = msgspec.structs.replace(req, term=None, reply_to=None)  # not in the text form
    mis = getattr(req, "mis", None)
    if mis is not None and _ambiguous(mis):
        with pytest.raises(TextFormError):
            format_text(req)
        return
    text = format_text(req)
    back = parse_text(text, image=getattr(req, "image", None), mid=req.mid, today=TODAY)
    assert back == req
