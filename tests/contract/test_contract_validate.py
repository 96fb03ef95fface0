"""parse_request: examples of every outcome (switch/contract/validate.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from switch.contract.messages import (
    CancelImage,
    Codes,
    EnterImage,
    ModifyImage,
    QueryImage,
)
from switch.contract.validate import (
    ContractError,
    RequestInvalid,
    Unreadable,
    check_doi_against_dob,
    parse_request,
)
from switch.errors import SwitchError

TODAY = dt.date(2025, 6, 30)
IMAGE = b"\xff\xd8\xff\xe0 not really a jpeg"

EIM: dict[str, Any] = {
    "mid": "m-1",
    "mke": "EIM",
    "ori": "IL0160000",
    "lno": "X17A4394",
    "imt": "M",
    "doi": "20230216",
    "mis": "annual photo",
    "image": base64.b64encode(IMAGE).decode(),
}


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def parse(obj: Any, **kw: Any) -> Any:
    return parse_request(raw(obj), today=TODAY, **kw)


def invalid(obj: Any, **kw: Any) -> RequestInvalid:
    with pytest.raises(RequestInvalid) as info:
        parse(obj, **kw)
    return info.value


def unreadable(data: Any, **kw: Any) -> Unreadable:
    with pytest.raises(Unreadable) as info:
        parse_request(data, today=TODAY, **kw)
    return info.value


def test_exception_tree() -> None:
    assert issubclass(Unreadable, ContractError)
    assert issubclass(RequestInvalid, ContractError)
    assert issubclass(ContractError, SwitchError)


# --------------------------------------------------------------------------- accepted


def test_eim_accepted_typed_with_image_bytes_and_mis_upper_case() -> None:
    req = parse(EIM)
    assert req == EnterImage(
        mid="m-1",
        ori="IL0160000",
        lno="X17A4394",
        imt="M",
        doi="20230216",
        mis="ANNUAL PHOTO",
        image=IMAGE,
    )


def test_unknown_fields_ignored_and_null_is_absent() -> None:
    req = parse({**EIM, "future_field": {"x": [1, 2]}, "term": None, "mis": None})
    assert isinstance(req, EnterImage)
    assert req.term is None
    assert req.mis is None


def test_term_and_reply_to_kept() -> None:
    req = parse({**EIM, "term": "T042", "reply_to": "switch.replies.console7"})
    assert req.term == "T042"
    assert req.reply_to == "switch.replies.console7"


def test_reply_prefix_is_configurable() -> None:
    req = parse({**EIM, "reply_to": "t1.replies.x"}, reply_prefix="t1.replies")
    assert req.reply_to == "t1.replies.x"
    err = invalid({**EIM, "reply_to": "switch.replies"}, reply_prefix="t1.replies")
    assert [(e.field, e.code) for e in err.errors] == [("reply_to", Codes.BAD_REPLY_TO)]
    assert err.errors[0].text == "REJECT MKE/EIM BAD REPLY_TO: switch.replies IS NOT UNDER t1.replies"


def test_mii_xim_qim_accepted() -> None:
    mii = parse({"mid": "m", "mke": "MII", "ori": "IL0160000", "imn": "I000012345", "doi": "20240101"})
    assert mii == ModifyImage(mid="m", ori="IL0160000", imn="I000012345", doi="20240101")
    xim = parse({"mid": "m", "mke": "XIM", "ori": "IL0160000", "imn": "X17A4394M0", "doc": "20250630"})
    assert xim == CancelImage(mid="m", ori="IL0160000", imn="X17A4394M0", doc="20250630")
    qim = parse(
        {"mid": "m", "mke": "QIM", "ori": "IL0160000", "nam": "smith, john", "sex": "M", "dob": "19800101"}
    )
    assert qim == QueryImage(mid="m", ori="IL0160000", nam="SMITH, JOHN", sex="M", dob="19800101")
    assert parse({"mid": "m", "mke": "QIM", "ori": "IL0160000", "nic": "X123456782"}).nic == "X123456782"


def test_bytearray_and_memoryview_accepted() -> None:
    assert isinstance(parse_request(bytearray(raw(EIM)), today=TODAY), EnterImage)
    assert isinstance(parse_request(memoryview(raw(EIM)), today=TODAY), EnterImage)


# --------------------------------------------------------------------------- rejected


def test_operator_texts_of_the_brief() -> None:
    err = invalid({**EIM, "doi": "20231345"})
    assert [e.text for e in err.errors] == ["REJECT MKE/EIM INVALID DOI: 20231345 IS NOT A DATE"]
    no_lno = dict(EIM)
    del no_lno["lno"]
    err = invalid(no_lno)
    assert err.errors[0].text == "REJECT MKE/EIM MISSING LNO"
    assert err.errors[0].code == Codes.MISSING_FIELD
    assert err.errors[0].field == "lno"


def test_every_problem_is_listed_and_ids_echoed() -> None:
    bad = {
        **EIM,
        "lno": "X17A439",
        "imt": "P",
        "doi": 20230216,
        "mis": "X" * 201,
        "term": "T" * 40,
        "reply_to": "elsewhere",
    }
    del bad["image"]
    err = invalid(bad)
    assert [(e.field, e.code) for e in err.errors] == [
        ("lno", Codes.INVALID_FIELD),
        ("imt", Codes.INVALID_FIELD),
        ("doi", Codes.INVALID_FIELD),
        ("mis", Codes.INVALID_FIELD),
        ("image", Codes.MISSING_FIELD),
        ("term", Codes.INVALID_FIELD),
        ("reply_to", Codes.BAD_REPLY_TO),
    ]
    assert err.errors[2].text == "REJECT MKE/EIM INVALID DOI: MUST BE TEXT, NOT A NUMBER"
    assert (err.mid, err.ori, err.mke) == ("m-1", "IL0160000", "EIM")
    assert err.echo == raw(bad).decode()[:100]
    assert len(err.echo) == 100
    assert str(err).startswith("REJECT MKE/EIM INVALID LNO")


def test_missing_everything() -> None:
    err = invalid({})
    assert [e.text for e in err.errors] == [
        "REJECT MISSING MKE",
        "REJECT MISSING MID",
        "REJECT MISSING ORI",
    ]
    assert (err.mid, err.ori, err.mke) == (None, None, None)


def test_unknown_mke_checks_common_fields_only() -> None:
    err = invalid({"mid": "m", "mke": "EIX", "ori": "IL016", "lno": 5})
    assert [e.text for e in err.errors] == [
        "REJECT INVALID MKE: EIX IS NOT EIM, MII, XIM OR QIM",
        "REJECT INVALID ORI: IL016 IS NOT A 2-LETTER STATE CODE + 7 LETTERS/DIGITS",
    ]
    assert err.mke == "EIX"
    err = invalid({"mid": "m", "mke": ["EIM"], "ori": "IL0160000"})
    assert err.errors[0].text == "REJECT INVALID MKE: MUST BE TEXT, NOT A LIST"
    assert err.mke is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("not base64!", "REJECT MKE/EIM INVALID IMAGE: NOT BASE64"),
        ("QUJD\n", "REJECT MKE/EIM INVALID IMAGE: NOT BASE64"),
        ("QQ", "REJECT MKE/EIM INVALID IMAGE: NOT BASE64"),
        ("", "REJECT MKE/EIM INVALID IMAGE: EMPTY"),
        (True, "REJECT MKE/EIM INVALID IMAGE: MUST BE TEXT, NOT TRUE/FALSE"),
        ({"a": 1}, "REJECT MKE/EIM INVALID IMAGE: MUST BE TEXT, NOT AN OBJECT"),
    ],
)
def test_image_invalid(value: Any, text: str) -> None:
    err = invalid({**EIM, "image": value})
    assert [(e.field, e.code, e.text) for e in err.errors] == [("image", Codes.IMAGE_INVALID, text)]


def test_mii_needs_one_of_image_doi_mis() -> None:
    err = invalid({"mid": "m", "mke": "MII", "ori": "IL0160000", "imn": "I000012345"})
    assert [(e.field, e.code, e.text) for e in err.errors] == [
        ("image|doi|mis", Codes.MISSING_FIELD, "REJECT MKE/MII MISSING IMAGE, DOI OR MIS")
    ]
    # An empty MIS counts as given (it asks to clear the text).
    mii = parse({"mid": "m", "mke": "MII", "ori": "IL0160000", "imn": "I000012345", "mis": ""})
    assert mii.mis == ""


QIM = {"mid": "m", "mke": "QIM", "ori": "IL0160000"}


def test_qim_needs_exactly_one_selector() -> None:
    err = invalid(QIM)
    assert [(e.field, e.code) for e in err.errors] == [("imn|lno|nic|nam+sex+dob", Codes.MISSING_FIELD)]
    err = invalid({**QIM, "imn": "I000012345", "nic": "X123456782"})
    assert [(e.field, e.code, e.text) for e in err.errors] == [
        (
            "imn|lno|nic|nam+sex+dob",
            Codes.INVALID_FIELD,
            "REJECT MKE/QIM INVALID QUERY: ONE OF IMN, LNO, NIC OR NAM/SEX/DOB, NOT IMN AND NIC",
        )
    ]


def test_qim_person_triple_goes_together() -> None:
    err = invalid({**QIM, "nam": "SMITH, JOHN"})
    assert [(e.field, e.code) for e in err.errors] == [
        ("sex", Codes.MISSING_FIELD),
        ("dob", Codes.MISSING_FIELD),
    ]
    assert err.errors[0].text == "REJECT MKE/QIM MISSING SEX: NAM, SEX AND DOB GO TOGETHER"


def test_qim_fields_checked() -> None:
    err = invalid({**QIM, "nam": "SMITH JOHN", "sex": "X", "dob": "20990101"})
    assert [e.text for e in err.errors] == [
        "REJECT MKE/QIM INVALID NAM: SMITH JOHN IS NOT LAST, FIRST MIDDLE",
        "REJECT MKE/QIM INVALID SEX: X IS NOT M, F OR U",
        "REJECT MKE/QIM INVALID DOB: 20990101 IS IN THE FUTURE",
    ]
    err = invalid({**QIM, "nic": "X123456789"})
    assert [e.text for e in err.errors] == ["REJECT MKE/QIM INVALID NIC: X123456789 FAILS THE CHECK DIGIT"]


def test_xim_doc_required_and_not_in_the_future() -> None:
    xim = {"mid": "m", "mke": "XIM", "ori": "IL0160000", "imn": "X17A4394M0"}
    assert invalid(xim).errors[0].text == "REJECT MKE/XIM MISSING DOC"
    err = invalid({**xim, "doc": "20250701"})
    assert err.errors[0].text == "REJECT MKE/XIM INVALID DOC: 20250701 IS IN THE FUTURE"


def test_invalid_ids_echoed_cut_and_masked() -> None:
    err = invalid({**EIM, "mid": "x" * 300, "ori": "IL\u0000"})
    assert err.mid == "x" * 100
    assert err.ori == "IL?"
    assert err.errors[0].text.startswith("REJECT MKE/EIM INVALID MID: " + "x" * 37 + "...")


def test_out_of_range_number_is_an_invalid_field() -> None:
    data = (
        b'{"mid":"m","mke":"EIM","ori":"IL0160000","lno":"X17A4394","imt":"M",'
        b'"doi":1e999,"image":[1e999],"x":-1e999}'
    )
    with pytest.raises(RequestInvalid) as info:
        parse_request(data, today=TODAY)
    assert [(e.field, e.code) for e in info.value.errors] == [
        ("doi", Codes.INVALID_FIELD),
        ("image", Codes.IMAGE_INVALID),
    ]


def test_check_doi_against_dob() -> None:
    assert check_doi_against_dob("EIM", "20230216", "19800101", today=TODAY) is None
    assert check_doi_against_dob("EIM", "20230216", None, today=TODAY) is None
    error = check_doi_against_dob("MII", "19700101", "19800101", today=TODAY)
    assert error is not None
    assert (error.field, error.code) == ("doi", Codes.INVALID_FIELD)
    assert error.text == "REJECT MKE/MII INVALID DOI: 19700101 IS BEFORE DOB 19800101"


# --------------------------------------------------------------------------- unreadable


def test_too_large_carries_mid_and_ori() -> None:
    big = raw({**EIM, "image": "QUJD" * 1000})
    err = unreadable(big, max_bytes=1024)
    assert err.code == Codes.TOO_LARGE
    assert err.reason.startswith("TOO_LARGE:")
    assert (err.mid, err.ori) == ("m-1", "IL0160000")
    assert err.echo == big.decode()[:100]


def test_too_large_garbage_has_no_ids() -> None:
    err = unreadable(b"\xff" * 3000, max_bytes=1024)
    assert err.code == Codes.TOO_LARGE
    assert (err.mid, err.ori) == (None, None)


@pytest.mark.parametrize(
    ("data", "start"),
    [
        (b"", "NOT JSON"),
        (b"EIM.IL0160000.LNO/X17A4394.", "NOT JSON"),
        (b'{"mid": "m"', "NOT JSON"),
        (b'{"mid": "\\ud800"}', "NOT JSON"),
        (b"\xef\xbb\xbf{}", "NOT JSON"),
        (b'{"mid": "\xff"}', "NOT UTF-8"),
        (b'{"x": "\xc3", "mid": "m"}', "NOT UTF-8"),
        (b"[1, 2]", "NOT A JSON OBJECT: AN ARRAY"),
        (b'"EIM"', "NOT A JSON OBJECT: A STRING"),
        (b"12", "NOT A JSON OBJECT: A NUMBER"),
        (b"null", "NOT A JSON OBJECT: NULL"),
        (b"[1e999]", "NOT A JSON OBJECT"),
        (b'{"mis":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "NOT JSON: NESTED TOO DEEPLY"),
        (None, "EMPTY"),
    ],
)
def test_unreadable(data: Any, start: str) -> None:
    err = unreadable(data)
    assert err.reason.startswith(start), err.reason
    assert err.code == Codes.UNREADABLE


def test_unreadable_salvages_valid_mid_and_ori() -> None:
    err = unreadable(b'{"mid": "m-7", "ori": "IL0160000", "mke": "EIM", garbage')
    assert (err.mid, err.ori) == ("m-7", "IL0160000")
    err = unreadable(b'{"mid": "m-7", "ori": "IL0160000", "mis": "\xff"}')
    assert err.reason.startswith("NOT UTF-8")
    assert (err.mid, err.ori) == ("m-7", "IL0160000")
    err = unreadable(b'{"mid": "has space", "ori": "il0160000", garbage')
    assert (err.mid, err.ori) == (None, None)


def test_echo_is_first_100_characters() -> None:
    text = '{"mid": "é' + "é" * 200
    err = unreadable(text.encode())
    assert err.echo == text[:100]
